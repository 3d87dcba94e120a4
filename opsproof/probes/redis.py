"""Redis: `redis-cli ping`, `redis-cli info memory`, `redis-cli info stats`, `redis-cli llen QUEUE`.

Only read commands are sent (PING, INFO, CONFIG GET, LLEN), over one connection per target.
"""

from __future__ import annotations

import time
from typing import Any

from opsproof.inventory import Redis
from opsproof.probes.base import Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Result, Severity


def _client(target: Target[Redis], conns: Connections) -> Any:
    return conns.redis(target.id, target.config.url, target.config.timeout_s)


def _result(target: Target[Redis], check: str, ok: bool | None, observed: str, expected: str,
            evidence: dict[str, Any], start: float) -> Result:
    return Result(target.id, check, ok, observed, expected, evidence, time.perf_counter() - start)


@probe("redis.ping", "redis", Severity.CRITICAL, "redis-cli -u $URL ping", expected=lambda cfg: "PONG")
def ping(target: Target[Redis], conns: Connections) -> Result:
    """The server answers PING."""
    start = time.perf_counter()
    pong = _client(target, conns).ping()
    return _result(target, "redis.ping", bool(pong), "PONG" if pong else f"{pong!r}", "PONG", {}, start)


@probe("redis.memory", "redis", Severity.HIGH, "redis-cli info memory  # used_memory / maxmemory",
       expected=lambda cfg: f"≤ {cfg.max_memory_ratio:.0%} of maxmemory")
def memory(target: Target[Redis], conns: Connections) -> Result:
    """Used memory stays below a ceiling of maxmemory."""
    start = time.perf_counter()
    info = _client(target, conns).info("memory")
    used, limit = int(info["used_memory"]), int(info.get("maxmemory", 0))
    ceiling = target.config.max_memory_ratio
    evidence = {"used_memory": used, "maxmemory": limit, "used_memory_human": info.get("used_memory_human")}
    if limit == 0:
        return _result(target, "redis.memory", None,
                       f"maxmemory is 0 (no limit), used_memory {info.get('used_memory_human')}: no ratio to judge",
                       f"≤ {ceiling:.0%} of maxmemory", evidence, start)
    ratio = used / limit
    evidence["ratio"] = round(ratio, 4)
    return _result(target, "redis.memory", ratio <= ceiling,
                   f"used_memory is {ratio:.0%} of maxmemory ({used} of {limit} bytes)",
                   f"≤ {ceiling:.0%}", evidence, start)


@probe("redis.eviction_policy", "redis", Severity.MEDIUM, "redis-cli config get maxmemory-policy",
       applies=lambda cfg: cfg.eviction_policy is not None,
       expected=lambda cfg: f"maxmemory-policy {cfg.eviction_policy}")
def eviction_policy(target: Target[Redis], conns: Connections) -> Result:
    """The eviction policy is the one the application was designed for."""
    start = time.perf_counter()
    policy = _client(target, conns).config_get("maxmemory-policy").get("maxmemory-policy")
    want = target.config.eviction_policy
    return _result(target, "redis.eviction_policy", policy == want, f"maxmemory-policy {policy}",
                   f"maxmemory-policy {want}", {"maxmemory-policy": policy}, start)


@probe("redis.hit_rate", "redis", Severity.MEDIUM, "redis-cli info stats  # keyspace_hits / (hits + misses)",
       applies=lambda cfg: cfg.min_hit_rate is not None,
       expected=lambda cfg: f"keyspace hit rate ≥ {cfg.min_hit_rate:.0%}")
def hit_rate(target: Target[Redis], conns: Connections) -> Result:
    """The keyspace hit rate is above the floor (judged only after ``min_lookups`` lookups)."""
    start = time.perf_counter()
    info = _client(target, conns).info("stats")
    hits, misses = int(info["keyspace_hits"]), int(info["keyspace_misses"])
    floor = target.config.min_hit_rate or 0.0
    lookups = hits + misses
    evidence = {"keyspace_hits": hits, "keyspace_misses": misses}
    expected = f"≥ {floor:.0%}"
    if lookups < max(1, target.config.min_lookups):  # none at all is no data, whatever min_lookups says
        return _result(target, "redis.hit_rate", None,
                       f"only {lookups} keyspace lookups since restart (need {target.config.min_lookups})" if lookups
                       else "no keyspace lookup since restart: no hit rate to judge",
                       expected, evidence, start)
    rate = hits / lookups
    return _result(target, "redis.hit_rate", rate >= floor,
                   f"keyspace hit rate {rate:.1%} ({hits} hits, {misses} misses)", expected, evidence, start)


@probe("redis.queues", "redis", Severity.HIGH, "redis-cli llen $QUEUE",
       applies=lambda cfg: bool(cfg.queues), expected=lambda cfg: "every queue at or below its ceiling")
def queues(target: Target[Redis], conns: Connections) -> Result:
    """Each listed queue (a Redis list, e.g. Celery's) is at or below its length ceiling."""
    start = time.perf_counter()
    client = _client(target, conns)
    lengths = {name: int(client.llen(name)) for name in target.config.queues}
    over = [f"{n} has {lengths[n]} (ceiling {c})" for n, c in target.config.queues.items() if lengths[n] > c]
    ceilings = ", ".join(f"{n} ≤ {c}" for n, c in target.config.queues.items())
    return _result(target, "redis.queues", not over,
                   "; ".join(over) if over else ", ".join(f"{n}={v}" for n, v in lengths.items()),
                   ceilings, {"lengths": lengths, "ceilings": dict(target.config.queues)}, start)
