"""Redis, more: `redis-cli info clients`, `redis-cli --latency`, `redis-cli config get save|appendonly|appendfsync`,
`redis-cli info persistence`.

Read commands only (INFO, PING, TIME, CONFIG GET), on the entry's one connection. The judging is in plain
functions of what the server answered, so it is unit-tested without a server.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

from opsproof.inventory import Redis
from opsproof.inventory.entries import human_duration
from opsproof.inventory.redis_checks import RedisClients, RedisLatency, RedisPersistence
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity


def _client(target: Target[Redis], conns: Connections) -> Any:
    return conns.redis(target.id, target.config.url, target.config.timeout_s)


def _clients_expected(cfg: Redis) -> str:
    c = cfg.clients
    assert c is not None
    blocked = f", at most {c.max_blocked} blocked" if c.max_blocked is not None else ""
    return f"at most {c.max_connected} connected clients{blocked}"


def judge_clients(cfg: RedisClients, clients: Mapping[str, Any], stats: Mapping[str, Any]) -> Outcome:
    """``INFO clients`` (and ``INFO stats`` for rejected_connections) against the ceilings."""
    connected, blocked = int(clients["connected_clients"]), int(clients.get("blocked_clients", 0))
    rejected = int(stats.get("rejected_connections", 0))
    evidence = {"connected_clients": connected, "blocked_clients": blocked, "maxclients": clients.get("maxclients"),
                "rejected_connections": rejected}
    ok = connected <= cfg.max_connected and (cfg.max_blocked is None or blocked <= cfg.max_blocked)
    observed = f"{connected} connected clients"
    if cfg.max_blocked is not None:
        observed += f", {blocked} blocked"
    if rejected:  # maxclients was reached at some point since start
        observed += f" ({rejected} connections rejected since start, maxclients {clients.get('maxclients')})"
    return Outcome(ok, observed, evidence)


@probe("redis.clients", "redis", Severity.HIGH, "redis-cli info clients  # connected_clients, blocked_clients",
       applies=lambda cfg: cfg.clients is not None, expected=_clients_expected)
def clients(target: Target[Redis], conns: Connections) -> Outcome:
    """Connected (and blocked) clients stay below their ceilings; opsproof's own connection is one of them."""
    assert target.config.clients is not None
    client = _client(target, conns)
    return judge_clients(target.config.clients, client.info("clients"), client.info("stats"))


def _latency_expected(cfg: Redis) -> str:
    lat = cfg.latency
    assert lat is not None
    slowest = f", slowest ≤ {lat.max_ms:g} ms" if lat.max_ms is not None else ""
    events = (f"; no latency event over {lat.max_event_ms:g} ms in the last {human_duration(lat.events_within)}"
              if lat.max_event_ms is not None else "")
    return f"PING round trip median ≤ {lat.max_median_ms:g} ms{slowest}{events}"


def judge_latency(cfg: RedisLatency, samples_s: list[float]) -> Outcome:
    """Round trips in seconds → median and slowest against the bounds (compared unrounded; shown in ms)."""
    median_ms, slowest_ms = statistics.median(samples_s) * 1000, max(samples_s) * 1000
    ok = median_ms <= cfg.max_median_ms and (cfg.max_ms is None or slowest_ms <= cfg.max_ms)
    evidence = {"samples": len(samples_s), "median_ms": round(median_ms, 3), "max_ms": round(slowest_ms, 3),
                "min_ms": round(min(samples_s) * 1000, 3)}
    return Outcome(ok, f"PING round trip median {median_ms:.2f} ms, slowest {slowest_ms:.2f} ms over "
                       f"{len(samples_s)} samples", evidence)


def judge_events(cfg: RedisLatency, events: list[list[Any]], now: float, threshold_ms: int | None) -> Outcome:
    """``LATENCY LATEST`` ([event, unix time of its latest spike, latest ms, worst ms], …): a spike within
    ``events_within`` above ``max_event_ms`` is a finding; so is a monitor that is off (it records nothing)."""
    assert cfg.max_event_ms is not None
    recent = [(str(name), now - int(at), int(latest), int(worst)) for name, at, latest, worst in events
              if now - int(at) <= cfg.events_within and int(latest) > cfg.max_event_ms]
    evidence = {"latency_latest": [list(e) for e in events], "latency_monitor_threshold_ms": threshold_ms}
    if threshold_ms == 0:
        return Outcome(False, "latency monitor off (latency-monitor-threshold 0): LATENCY LATEST records nothing. "
                              "Fix: CONFIG SET latency-monitor-threshold 100 on the server (and in its redis.conf), "
                              "or remove latency.max_event_ms", evidence)
    if recent:
        spikes = ", ".join(f"{name} {latest} ms {human_duration(max(1, round(ago)))} ago (worst {worst} ms)"
                           for name, ago, latest, worst in recent)
        return Outcome(False, f"LATENCY LATEST: {spikes}", evidence)
    return Outcome(True, f"no latency event over {cfg.max_event_ms:g} ms in the last "
                         f"{human_duration(cfg.events_within)} ({len(events)} event kind(s) recorded)", evidence)


@probe("redis.latency", "redis", Severity.HIGH, "redis-cli --latency  # PING round trips",
       applies=lambda cfg: cfg.latency is not None, expected=_latency_expected)
def latency(target: Target[Redis], conns: Connections) -> Outcome:
    """The round trip of PING, ``samples`` times on an open connection (its opening is not timed)."""
    assert target.config.latency is not None
    client = _client(target, conns)
    client.ping()  # the connection (AUTH, CLIENT SETNAME) is made here, untimed
    samples: list[float] = []
    for _ in range(target.config.latency.samples):
        start = time.perf_counter()
        client.ping()
        samples.append(time.perf_counter() - start)
    pings = judge_latency(target.config.latency, samples)
    if target.config.latency.max_event_ms is None:
        return pings
    import redis

    try:
        threshold: int | None = int(client.config_get("latency-monitor-threshold")["latency-monitor-threshold"])
    except redis.exceptions.ResponseError:  # CONFIG denied: the events are read all the same
        threshold = None
    seconds, micros = client.time()
    events = judge_events(target.config.latency, client.execute_command("LATENCY", "LATEST"),
                          int(seconds) + int(micros) / 1e6, threshold)
    ok = None if pings.ok is None or events.ok is None else pings.ok and events.ok
    return Outcome(ok, f"{pings.observed}; {events.observed}", {**pings.evidence, **events.evidence})


def _settings_expected(cfg: Redis) -> str:
    assert cfg.persistence is not None
    return ", ".join(_setting(k, v) for k, v in cfg.persistence.settings.items())


def _setting(name: str, value: str) -> str:
    return f'save "{value}"' if name == "save" else f"{name} {value}"


def _pairs(save: str) -> list[tuple[str, str]]:
    words = save.split()
    return sorted(zip(words[::2], words[1::2], strict=True))


def judge_settings(cfg: RedisPersistence, actual: Mapping[str, str]) -> Outcome:
    """The CONFIG values read against the expected ones (``save`` compared as its set of rules)."""
    wanted = cfg.settings
    differ = [k for k, v in wanted.items()
              if (_pairs(actual[k]) != _pairs(v) if k == "save" else actual[k] != v)]
    observed = ", ".join(_setting(k, actual[k]) for k in wanted)
    if differ:
        observed += f" (differs: {', '.join(differ)})"
    return Outcome(not differ, observed, {"config": dict(actual), "expected": wanted})


def config_unavailable(error: Exception, what: str = "the persistence settings",
                       keys: str = "persistence.save/appendonly/appendfsync") -> Outcome:
    """CONFIG renamed, disabled or denied (managed Redis, ACLs): the settings cannot be read — a finding."""
    return Outcome(False, f"CONFIG GET is not available to this client ({' '.join(str(error).split())}): {what} "
                          "cannot be read. Fix: grant +config|get to the check's user, or verify it in the provider's "
                          f"console and remove {keys}", {"error": str(error)})


@probe("redis.persistence", "redis", Severity.HIGH, "redis-cli config get save; config get appendonly; "
       "config get appendfsync", applies=lambda cfg: bool(cfg.persistence and cfg.persistence.settings),
       expected=_settings_expected)
def persistence(target: Target[Redis], conns: Connections) -> Outcome:
    """RDB snapshots and the AOF are configured as the runbook states (e.g. "AOF enabled, everysec")."""
    import redis

    assert target.config.persistence is not None
    client = _client(target, conns)
    actual: dict[str, str] = {}
    try:
        for name in target.config.persistence.settings:
            actual.update(client.config_get(name))
    except redis.exceptions.ResponseError as exc:  # unknown command (renamed), NOPERM (ACL)
        return config_unavailable(exc)
    return judge_settings(target.config.persistence, actual)


def _status_expected(cfg: Redis) -> str:
    assert cfg.persistence is not None
    age = cfg.persistence.max_save_age
    return "last RDB save and AOF write succeeded" + (f", newest RDB snapshot ≤ {human_duration(age)} old"
                                                      if age is not None else "")


def judge_status(cfg: RedisPersistence, info: Mapping[str, Any], now: float) -> Outcome:
    """``INFO persistence`` (and the server's TIME, ``now``) → failed saves and writes, and the snapshot's age."""
    aof = bool(int(info.get("aof_enabled", 0)))
    age = now - int(info["rdb_last_save_time"])
    evidence = {k: info.get(k) for k in (
        "rdb_last_bgsave_status", "rdb_last_save_time", "rdb_changes_since_last_save", "rdb_saves",
        "rdb_bgsave_in_progress", "aof_enabled", "aof_last_write_status", "aof_last_bgrewrite_status",
        "aof_rewrite_in_progress", "loading")} | {"last_save_age_s": round(age, 1)}
    problems = []
    if info.get("rdb_last_bgsave_status", "ok") != "ok":
        problems.append(f"last RDB save failed (rdb_last_bgsave_status {info['rdb_last_bgsave_status']})")
    if aof and info.get("aof_last_write_status", "ok") != "ok":
        problems.append(f"last AOF write failed (aof_last_write_status {info['aof_last_write_status']})")
    if aof and info.get("aof_last_bgrewrite_status", "ok") != "ok":
        problems.append(f"last AOF rewrite failed (aof_last_bgrewrite_status {info['aof_last_bgrewrite_status']})")
    shown = human_duration(round(age)) if age >= 1 else f"{age:.1f}s"
    if cfg.max_save_age is not None and age > cfg.max_save_age:
        problems.append(f"newest RDB snapshot is {shown} old, {info.get('rdb_changes_since_last_save')} changes "
                        "since")
    if problems:
        return Outcome(False, "; ".join(problems), evidence)
    saves = int(info.get("rdb_saves", 0))
    rdb = (f"last RDB save ok {shown} ago ({saves} since start)" if saves
           else f"no RDB save since the server started {shown} ago")
    return Outcome(True, f"{rdb}, AOF {'on, last write ok' if aof else 'off'}", evidence)


@probe("redis.persistence_status", "redis", Severity.HIGH, "redis-cli info persistence  # rdb_last_bgsave_status, "
       "aof_last_write_status, rdb_last_save_time", applies=lambda cfg: cfg.persistence is not None,
       expected=_status_expected)
def persistence_status(target: Target[Redis], conns: Connections) -> Outcome:
    """The last RDB save and AOF write succeeded, and the newest snapshot is recent enough."""
    assert target.config.persistence is not None
    client = _client(target, conns)
    info = client.info("persistence")
    seconds, micros = client.time()  # the server's clock: rdb_last_save_time is on it
    return judge_status(target.config.persistence, info, int(seconds) + int(micros) / 1e6)
