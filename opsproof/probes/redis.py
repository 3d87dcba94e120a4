"""Redis: `redis-cli ping`, `redis-cli info memory`, `redis-cli info stats`, `redis-cli llen QUEUE`.

Only read commands are sent (PING, INFO, CONFIG GET, LLEN), over one connection per target. Clients, latency,
persistence: :mod:`opsproof.probes.redis_health`; Sentinel: :mod:`opsproof.probes.sentinel`.
"""

from __future__ import annotations

from typing import Any

from opsproof.inventory import Redis
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.redis_health import config_unavailable
from opsproof.result import Severity


def _client(target: Target[Redis], conns: Connections) -> Any:
    return conns.redis(target.id, target.config.url, target.config.timeout_s)


@probe("redis.ping", "redis", Severity.CRITICAL, "redis-cli -u $URL ping", expected=lambda cfg: "PONG", root=True)
def ping(target: Target[Redis], conns: Connections) -> Outcome:
    """The server answers PING."""
    pong = _client(target, conns).ping()
    return Outcome(bool(pong), "PONG" if pong else f"{pong!r}")


@probe("redis.memory", "redis", Severity.HIGH, "redis-cli info memory  # used_memory / maxmemory",
       expected=lambda cfg: f"≤ {cfg.max_memory_ratio:.0%}")
def memory(target: Target[Redis], conns: Connections) -> Outcome:
    """Used memory stays below a ceiling of maxmemory."""
    info = _client(target, conns).info("memory")
    used, limit = int(info["used_memory"]), int(info.get("maxmemory", 0))
    evidence = {"used_memory": used, "maxmemory": limit, "used_memory_human": info.get("used_memory_human")}
    if limit == 0:
        return Outcome(None, f"maxmemory is 0 (no limit), used_memory {info.get('used_memory_human')}: "
                             "no ratio to judge", evidence)
    ratio = used / limit
    evidence["ratio"] = round(ratio, 4)
    return Outcome(ratio <= target.config.max_memory_ratio,
                   f"used_memory is {ratio:.0%} of maxmemory ({used} of {limit} bytes)", evidence)


@probe("redis.eviction_policy", "redis", Severity.MEDIUM, "redis-cli config get maxmemory-policy",
       applies=lambda cfg: cfg.eviction_policy is not None,
       expected=lambda cfg: f"maxmemory-policy {cfg.eviction_policy}")
def eviction_policy(target: Target[Redis], conns: Connections) -> Outcome:
    """The eviction policy is the one the application was designed for."""
    import redis

    try:
        policy = _client(target, conns).config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.exceptions.ResponseError as exc:  # CONFIG renamed (managed Redis) or denied (ACL)
        return config_unavailable(exc, "maxmemory-policy", "eviction_policy")
    return Outcome(policy == target.config.eviction_policy, f"maxmemory-policy {policy}",
                   {"maxmemory-policy": policy})


@probe("redis.hit_rate", "redis", Severity.MEDIUM, "redis-cli info stats  # keyspace_hits / (hits + misses)",
       applies=lambda cfg: cfg.min_hit_rate is not None,
       expected=lambda cfg: f"≥ {cfg.min_hit_rate or 0.0:.0%}")
def hit_rate(target: Target[Redis], conns: Connections) -> Outcome:
    """The keyspace hit rate is above the floor (judged only after ``min_lookups`` lookups)."""
    info = _client(target, conns).info("stats")
    hits, misses = int(info["keyspace_hits"]), int(info["keyspace_misses"])
    lookups = hits + misses
    evidence = {"keyspace_hits": hits, "keyspace_misses": misses}
    if lookups < max(1, target.config.min_lookups):  # none at all is no data, whatever min_lookups says
        return Outcome(None, f"only {lookups} keyspace lookups since restart (need {target.config.min_lookups})"
                       if lookups else "no keyspace lookup since restart: no hit rate to judge", evidence)
    rate = hits / lookups
    return Outcome(rate >= (target.config.min_hit_rate or 0.0),
                   f"keyspace hit rate {rate:.1%} ({hits} hits, {misses} misses)", evidence)


@probe("redis.queues", "redis", Severity.HIGH, "redis-cli llen $QUEUE",
       applies=lambda cfg: bool(cfg.queues),
       expected=lambda cfg: ", ".join(f"{n} ≤ {c}" for n, c in cfg.queues.items()))
def queues(target: Target[Redis], conns: Connections) -> Outcome:
    """Each listed queue (a Redis list, e.g. Celery's) is at or below its length ceiling."""
    client = _client(target, conns)
    lengths = {name: int(client.llen(name)) for name in target.config.queues}
    over = [f"{n} has {lengths[n]} (ceiling {c})" for n, c in target.config.queues.items() if lengths[n] > c]
    return Outcome(not over, "; ".join(over) if over else ", ".join(f"{n}={v}" for n, v in lengths.items()),
                   {"lengths": lengths, "ceilings": dict(target.config.queues)})
