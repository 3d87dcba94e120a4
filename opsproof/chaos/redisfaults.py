"""Redis faults: ``CLIENT PAUSE`` (clients block, the server looks hung) and memory fill (up to maxmemory).

The runbook lines they replace: ``redis-cli CLIENT PAUSE 10000 ALL`` and a bulk ``SET`` loop. Filled keys are
named ``opsproof:chaos:fill:*``, so the rollback and the audit find them from any process.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from opsproof.chaos import faultjournal, run, timeline
from opsproof.chaos.context import Configuration, Context, fail

FILL_PREFIX = "opsproof:chaos:fill:"
FILL_CHUNK = "x" * 100_000
FILL_TIMEOUT_S = 30.0
PAUSE_MODES = ("WRITE", "ALL")
UNPAUSE_TIMEOUT_S = 3.0


def _client(ctx: Context, target: str | None, timeout: float = 3) -> tuple[str, redis.Redis]:
    """One client (and connection pool) per URL and timeout in this run (closed when it ends): a new redis-py client
    reads its package metadata (~20 ms)."""
    name, entry = ctx.entry("redis", target)
    key = (entry.url, timeout)
    clients = run.current().redis_clients
    if key not in clients:
        clients[key] = redis.Redis.from_url(entry.url, socket_timeout=timeout, socket_connect_timeout=timeout)
    client: redis.Redis = clients[key]
    return name, client


def pause_clients(seconds: float = 10, mode: str = "WRITE", target: str | None = None,
                  configuration: Configuration = None) -> dict[str, Any]:
    """``CLIENT PAUSE ms WRITE|ALL``: every write (the default) or every command blocks until the pause ends.

    WRITE is the default because it can be rolled back at once. Under ALL, Redis blocks every command of every
    client until the pause ends — ``AUTH`` and ``CLIENT UNPAUSE`` too, even on the connection that paused (seen on
    Redis 7.0.15) — so its rollback can only wait for that end (:func:`unpause_clients` does, bounded by it).
    """
    mode = mode.upper()
    if mode not in PAUSE_MODES:
        raise fail(f"redis[{target}]", f"pause mode {mode!r}", f"one of {', '.join(PAUSE_MODES)}")
    ctx = Context.of(configuration)
    ctx.destructive("pause Redis clients")
    name, r = _client(ctx, target)
    until = time.time() + seconds
    fault = f"CLIENT PAUSE {seconds:g} s {mode} on {name}"
    faultjournal.record(configuration, f"{name} pause", fault, unpause_clients, target=target, until=until)
    try:
        r.execute_command("CLIENT", "PAUSE", int(seconds * 1000), mode)  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError) as e:
        raise fail(name, f"CLIENT PAUSE failed ({ctx.redact(str(e))})",
                   f"clients paused for {seconds:g} s") from None
    run.current().pause_ends[name] = until
    at = timeline.mark("fault_injected", fault=fault)
    return {"target": name, "seconds": seconds, "mode": mode, "injected_at": at}


def unpause_clients(target: str | None = None, until: float | None = None,
                    configuration: Configuration = None) -> dict[str, Any]:
    """``CLIENT UNPAUSE``: the rollback (harmless if nothing is paused).

    On its own connection, whose wait is bounded by the pause's end (``until``; the process that paused knows it):
    a pause of mode ALL blocks the command too, which then returns when the pause ends.
    """
    ctx = Context.of(configuration)
    name, entry = ctx.entry("redis", target)
    end = until or run.current().pause_ends.get(name)
    wait = max(end - time.time(), 0.0) + UNPAUSE_TIMEOUT_S if end else UNPAUSE_TIMEOUT_S
    r = redis.Redis.from_url(entry.url, socket_timeout=wait, socket_connect_timeout=UNPAUSE_TIMEOUT_S,
                             retry=Retry(NoBackoff(), 0))
    try:
        r.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError) as e:
        raise fail(name, f"CLIENT UNPAUSE failed after {wait:.1f} s ({ctx.redact(str(e))})",
                   "clients unpaused (a pause of mode ALL blocks CLIENT UNPAUSE as well until it ends)") from None
    finally:
        r.close()
    run.current().pause_ends.pop(name, None)
    faultjournal.undone(configuration, f"{name} pause")
    return {"target": name, "unpaused": True}


def paused(target: str | None = None, configuration: Configuration = None) -> bool:
    """Whether writes block: a ``SET`` with a short timeout does not answer (what an audit asks)."""
    ctx = Context.of(configuration)
    _, r = _client(ctx, target, timeout=0.5)
    try:
        r.set("opsproof:chaos:audit", "1", px=1000)
    except redis.TimeoutError:
        return True
    return False


def fill_memory(ratio: float = 0.95, target: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Write 100 kB values until ``used_memory / maxmemory`` reaches ``ratio``."""
    ctx = Context.of(configuration)
    ctx.destructive("fill Redis memory")
    name, r = _client(ctx, target)
    deadline = time.monotonic() + FILL_TIMEOUT_S
    limit = int(r.info("memory")["maxmemory"])
    if not limit:
        raise fail(name, "maxmemory is 0 (unlimited)", "a maxmemory to fill up to")
    used = int(r.info("memory")["used_memory"])
    faultjournal.record(configuration, f"{name} fill", f"fill {name} to {ratio:.0%} of maxmemory", release_memory,
                        target=target)
    i = 0
    while used / limit < ratio:
        if time.monotonic() > deadline:
            raise fail(name, f"used_memory at {used / limit:.0%} after {FILL_TIMEOUT_S:g} s of filling",
                       f"≥ {ratio:.0%} of maxmemory")
        with r.pipeline(transaction=False) as pipe:
            for _ in range(20):
                pipe.set(f"{FILL_PREFIX}{i}", FILL_CHUNK)
                i += 1
            pipe.execute()
        used = int(r.info("memory")["used_memory"])
    at = timeline.mark("fault_injected", fault=f"filled {name} to {used / limit:.0%} of maxmemory")
    return {"target": name, "ratio": round(used / limit, 3), "used_memory": used, "maxmemory": limit,
            "injected_at": at}


def release_memory(target: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """The rollback: delete every filled key."""
    ctx = Context.of(configuration)
    name, r = _client(ctx, target)
    keys = list(r.scan_iter(f"{FILL_PREFIX}*", count=1000))
    for start in range(0, len(keys), 500):
        r.unlink(*keys[start : start + 500])
    faultjournal.undone(configuration, f"{name} fill")
    if keys:
        timeline.mark("remediated", action=f"deleted {len(keys)} filled keys on {name}")
    return {"target": name, "deleted": len(keys)}


def filled_keys(target: str | None = None, configuration: Configuration = None) -> int:
    ctx = Context.of(configuration)
    _, r = _client(ctx, target)
    return sum(1 for _ in r.scan_iter(f"{FILL_PREFIX}*", count=1000))
