"""PostgreSQL faults: connection-pool exhaustion (connections held until the rollback) and backend termination.

The runbook lines they replace: ``pgbench -c N -T …`` left idle to eat ``max_connections``, and
``SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = …``. Held connections carry
``application_name = opsproof-chaos``, so an audit finds any left behind; they belong to this process and close
with it even if it is killed.
"""

from __future__ import annotations

from typing import Any

import psycopg

from opsproof.chaos import run, timeline
from opsproof.chaos.context import CHAOS_APPLICATION, ChaosError, Configuration, Context, fail
from opsproof.result import reason
from opsproof.util.process import ProcessError, wait_for

CONNECT_TIMEOUT_S = 3
MAX_HELD = 500
CLOSE_TIMEOUT_S = 5.0
_USAGE = ("SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL),"
          " current_setting('max_connections')::int")


def _connect(dsn: str, application: str = CHAOS_APPLICATION) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, application_name=application)


def exhaust_connections(target: str | None = None, ratio: float = 0.85,
                        configuration: Configuration = None) -> dict[str, Any]:
    """Open and hold connections until ``ratio`` of ``max_connections`` is in use (client backends)."""
    ctx = Context.of(configuration)
    ctx.destructive("exhaust PostgreSQL connections")
    name, dsn = ctx.pg_dsn(target)
    current = run.current()  # the connections a fault holds belong to its run
    with current.lock:  # registered as they open: an interrupt midway leaves them to the rollback
        held = current.held.setdefault(name, [])
    try:
        with _connect(dsn) as probe:
            used, limit = probe.execute(_USAGE).fetchone() or (0, 0)
            while used / limit < ratio and len(held) < MAX_HELD:
                conn = _connect(dsn)
                with current.lock:
                    held.append(conn)
                used, limit = probe.execute(_USAGE).fetchone() or (0, 0)
    except psycopg.Error as e:
        count = _drop(name, dsn)
        raise fail(name, f"could hold only {count} connection(s) ({ctx.redact(reason(e))})",
                   f"{ratio:.0%} of max_connections in use") from None
    if used / limit < ratio:
        count = _drop(name, dsn)
        raise fail(name, f"{used} of {limit} connections in use after holding {count} (the limit of {MAX_HELD})",
                   f"{ratio:.0%} of max_connections in use")
    at = timeline.mark("fault_injected", fault=f"hold {len(held)} connections on {name}")
    return {"target": name, "held": len(held), "in_use": used, "max_connections": limit,
            "ratio": round(used / limit, 3), "injected_at": at}


def release_connections(target: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """The rollback: close every connection this process holds on the target."""
    name, dsn = Context.of(configuration).pg_dsn(target)
    released = _drop(name, dsn)
    if released:
        timeline.mark("remediated", action=f"released {released} connections on {name}")
    return {"target": name, "released": released}


def _drop(name: str, dsn: str) -> int:
    current = run.current()
    with current.lock:
        held = current.held.pop(name, [])
    _close(held, dsn)
    return len(held)


def _close(conns: list[psycopg.Connection[Any]], dsn: str) -> None:
    """Close, then wait (bounded) until the server has let the backends go: a backend exits a moment after its
    client closes, and an audit right after must not count it."""
    pids = [c.info.backend_pid for c in conns if not c.closed]
    for conn in conns:
        conn.close()
    if not pids:
        return
    with _connect(dsn, "opsproof-audit") as probe:
        try:
            wait_for(lambda: (probe.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                                            (pids,)).fetchone() or (0,))[0] == 0, CLOSE_TIMEOUT_S,
                     "released backends still listed")
        except ProcessError as e:
            raise ChaosError(f"postgres: {len(pids)} released connection(s) still listed by the server after "
                             f"{CLOSE_TIMEOUT_S:g} s, expected them gone") from e


def terminate_backends(application_name: str, target: str | None = None,
                       configuration: Configuration = None) -> dict[str, Any]:
    """``pg_terminate_backend`` on every backend of ``application_name``; fails if none or not all could be."""
    ctx = Context.of(configuration)
    ctx.destructive(f"terminate the PostgreSQL backends of {application_name}")
    name, dsn = ctx.pg_dsn(target)
    try:
        with _connect(dsn) as conn:
            rows = conn.execute("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                                (application_name,)).fetchall()
    except psycopg.Error as e:
        raise fail(name, f"could not terminate backends of {application_name!r} ({ctx.redact(reason(e))})",
                   "every backend terminated") from None
    done = [pid for pid, ok in rows if ok]
    if not rows or len(done) < len(rows):
        raise fail(name, f"terminated {len(done)} of {len(rows)} backend(s) of {application_name!r}",
                   "at least one backend, all of them terminated")
    at = timeline.mark("fault_injected", fault=f"terminated {len(done)} backends of {application_name}")
    return {"target": name, "terminated": done, "injected_at": at}


def chaos_connections(target: str | None = None, configuration: Configuration = None) -> int:
    """How many connections a chaos fault holds on the target (from any process): an audit wants 0."""
    ctx = Context.of(configuration)
    _, dsn = ctx.pg_dsn(target)
    with _connect(dsn, "opsproof-audit") as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                           (CHAOS_APPLICATION,)).fetchone()
    return int(row[0]) if row else 0
