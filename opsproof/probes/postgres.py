"""PostgreSQL: `pg_isready`, `SELECT count(*) FROM pg_stat_activity`, and the rest of the DBA's checklist.

Every session is read-only (``default_transaction_read_only = on``) with a statement timeout, and one
session per target is reused (see :mod:`opsproof.probes.connections`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import Connection

from opsproof.inventory import Postgres
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Finding
from opsproof.result import Severity
from opsproof.util.errors import typed_reason


def _query(target: Target[Postgres], conns: Connections, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    cfg = target.config
    with conns.postgres(target.id, cfg.dsn, cfg.connect_timeout_s, remember=cfg.retry is None) as conn:
        return conn.execute(sql, params).fetchall()


@probe("postgres.ready", "postgres", Severity.CRITICAL, "pg_isready -h $HOST -p $PORT",
       expected=lambda cfg: "accepting connections", root=True)
def ready(target: Target[Postgres], conns: Connections) -> Outcome:
    """The server accepts connections and answers a query."""
    [(version, in_recovery)] = _query(target, conns, "SELECT current_setting('server_version'), pg_is_in_recovery()")
    role = "standby" if in_recovery else "primary"
    return Outcome(True, f"accepting connections (PostgreSQL {version}, {role})",
                   {"server_version": version, "in_recovery": in_recovery})


@probe("postgres.connections", "postgres", Severity.HIGH, "SELECT count(*) FROM pg_stat_activity",
       expected=lambda cfg: f"≤ {cfg.max_connection_ratio:.0%}")
def connections(target: Target[Postgres], conns: Connections) -> Outcome:
    """Connections in use stay below a ceiling of max_connections."""
    [(used, limit)] = _query(
        target, conns,
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
        " current_setting('max_connections')::int",
    )
    ratio = used / limit
    return Outcome(ratio <= target.config.max_connection_ratio,
                   f"{used} of max_connections {limit} in use ({ratio:.0%})",
                   {"connections": used, "max_connections": limit, "ratio": round(ratio, 4)})


@probe("postgres.long_queries", "postgres", Severity.HIGH,
       "SELECT pid, now() - query_start, query FROM pg_stat_activity WHERE state = 'active'",
       expected=lambda cfg: f"no query running longer than {cfg.max_query_s:g} s")
def long_queries(target: Target[Postgres], conns: Connections) -> Outcome:
    """No query has been running longer than the ceiling."""
    ceiling = target.config.max_query_s
    rows = _query(
        target, conns,
        "SELECT pid, usename, extract(epoch FROM now() - query_start)::float8 AS seconds, left(query, 200)"
        " FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'"
        " AND pid <> pg_backend_pid() AND now() - query_start > make_interval(secs => %s)"
        " ORDER BY seconds DESC",
        (ceiling,),
    )
    if not rows:
        return Outcome(True, f"no active query older than {ceiling:g} s")
    pid, user, seconds, query = rows[0]
    return Outcome(
        False,
        f"{len(rows)} query(ies) running too long; longest pid {pid} ({user}) for {seconds:.0f} s: {query!r}",
        {"queries": [{"pid": p, "user": u, "seconds": round(s, 1), "query": q} for p, u, s, q in rows[:10]]},
    )


@probe("postgres.cache_hit", "postgres", Severity.MEDIUM,
       "SELECT blks_hit::float / (blks_hit + blks_read) FROM pg_stat_database WHERE datname = current_database()",
       expected=lambda cfg: f"≥ {cfg.min_cache_hit_ratio:.0%}")
def cache_hit(target: Target[Postgres], conns: Connections) -> Outcome:
    """The buffer cache hit ratio of the database is above the floor."""
    [(hit, read)] = _query(
        target, conns,
        "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()",
    )
    if hit + read == 0:
        return Outcome(None, "no block reads recorded yet", {"blks_hit": hit, "blks_read": read})
    ratio = hit / (hit + read)
    return Outcome(ratio >= target.config.min_cache_hit_ratio,
                   f"cache hit ratio {ratio:.1%} ({hit} hits, {read} reads)",
                   {"blks_hit": hit, "blks_read": read, "ratio": round(ratio, 4)})


@probe("postgres.rls", "postgres", Severity.CRITICAL,
       "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN (…)",
       applies=lambda cfg: bool(cfg.rls_tables),
       expected=lambda cfg: f"row-level security enabled on {', '.join(cfg.rls_tables)}")
def rls(target: Target[Postgres], conns: Connections) -> Outcome:
    """Every listed table exists and has row-level security enabled."""
    wanted = target.config.rls_tables
    rows = _query(
        target, conns,
        "SELECT t.name, c.relrowsecurity FROM unnest(%s::text[]) AS t(name)"
        " LEFT JOIN pg_class c ON c.oid = to_regclass(t.name)",
        (wanted,),
    )
    missing = [name for name, enabled in rows if enabled is None]
    disabled = [name for name, enabled in rows if enabled is False]
    problems = [f"{n}: RLS disabled" for n in disabled] + [f"{n}: table not found" for n in missing]
    observed = "; ".join(problems) if problems else f"RLS enabled on {', '.join(wanted)}"
    return Outcome(not problems, observed, {"tables": {name: enabled for name, enabled in rows}})


@probe("postgres.extensions", "postgres", Severity.HIGH, "SELECT extname FROM pg_extension",
       applies=lambda cfg: bool(cfg.extensions), expected=lambda cfg: f"installed: {', '.join(cfg.extensions)}")
def extensions(target: Target[Postgres], conns: Connections) -> Outcome:
    """The extensions the application needs are installed in the database."""
    installed = {name: version for name, version in _query(target, conns,
                                                           "SELECT extname, extversion FROM pg_extension")}
    wanted = target.config.extensions
    missing = [e for e in wanted if e not in installed]
    observed = (f"missing: {', '.join(missing)}" if missing
                else "installed: " + ", ".join(f"{e} {installed[e]}" for e in wanted))
    return Outcome(not missing, observed, {"installed": installed})


REPLICA_LAG_SQL = (
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0"
    " ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END,"
    " pg_is_wal_replay_paused(), pg_last_wal_receive_lsn()::text"
)
CATCH_UP_S = 1.0


def _replica_lag(conn: Connection[Any]) -> tuple[bool, float | None, bool, str | None]:
    row = conn.execute(REPLICA_LAG_SQL).fetchone()
    assert row is not None
    return bool(row[0]), row[1], bool(row[2]), row[3]


def _catches_up(conn: Connection[Any], received: str, within: float) -> float | None:
    """Seconds until the replica has replayed what it had received (``received``), or None after ``within``.
    The replay-timestamp lag is that of the last *commit* replayed: WAL that has just arrived after an idle
    spell makes it look like the whole idle time; a replica that replays it at once is not lagging."""
    started = time.monotonic()
    while True:
        row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (received,)).fetchone()
        if row is not None and row[0]:
            return time.monotonic() - started
        if time.monotonic() - started >= within:
            return None
        time.sleep(0.05)


@probe("postgres.replica_lag", "postgres", Severity.HIGH,
       "SELECT now() - pg_last_xact_replay_timestamp() -- on each replica",
       applies=lambda cfg: bool(cfg.replicas),
       expected=lambda cfg: "each replica within its lag ceiling")
def replica_lag(target: Target[Postgres], conns: Connections) -> Outcome:
    """Each listed replica is in recovery and replays within its lag ceiling."""
    problems: list[str] = []
    seen: list[str] = []
    evidence: dict[str, Any] = {}
    for name, replica in target.config.replicas.items():
        try:
            with conns.postgres(f"{target.id}/replica[{name}]", replica.dsn, target.config.connect_timeout_s,
                                remember=target.config.retry is None) as c:
                in_recovery, lag, paused, received = _replica_lag(c)
                if in_recovery and lag is not None and lag > replica.max_lag_s and not paused and received:
                    took = _catches_up(c, received, min(CATCH_UP_S, replica.max_lag_s))
                    lag = took if took is not None else lag
        except Exception as e:
            problems.append(f"replica {name}: {e}" if isinstance(e, Finding) else
                            f"replica {name} unreachable ({typed_reason(e)})")
            continue
        evidence[name] = {"in_recovery": in_recovery, "lag_s": lag, "replay_paused": paused}
        if not in_recovery:
            problems.append(f"replica {name} is not in recovery (promoted?)")
        elif lag is None:
            problems.append(f"replica {name} has replayed no transaction yet")
        elif lag > replica.max_lag_s:
            problems.append(f"replica {name} lags {lag:.1f} s (ceiling {replica.max_lag_s:g} s)"
                            + (", replay paused" if paused else ""))
        else:
            seen.append(f"{name} lag {lag:.1f} s")
    return Outcome(not problems, "; ".join(problems or seen), evidence)


# Row-level security applies to the counting role unless it is a superuser, has BYPASSRLS, or owns the table
# (and the table does not FORCE it): then count(*) is what the policies let the role see, not the table's rows.
_RLS = """SELECT c.relrowsecurity AND NOT (r.rolsuper OR r.rolbypassrls)
                 AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE')),
                 coalesce((SELECT string_agg(p.policyname::text, ', ' ORDER BY p.policyname) FROM pg_policies p
                           WHERE p.schemaname = n.nspname AND p.tablename = c.relname), 'none: every row hidden'),
                 current_user
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.rolname = current_user
          WHERE c.oid = %s"""


@probe("postgres.tables", "postgres", Severity.HIGH, "SELECT count(*) FROM <table>  -- for each listed table",
       applies=lambda cfg: bool(cfg.count_tables),
       expected=lambda cfg: f"tables {', '.join(cfg.count_tables)} readable")
def tables(target: Target[Postgres], conns: Connections) -> Outcome:
    """Every listed table exists and is readable; its row count is recorded (baselines compare it). The count is
    taken as ``count_dsn``'s role when given (one that bypasses row-level security); a table whose rows RLS hides
    from the counting role has no count (None, the policies named) — never the 0 the policies let it see."""
    cfg = target.config
    rows: dict[str, int | None] = {}
    hidden: dict[str, str] = {}
    problems: list[str] = []
    with conns.postgres(f"{target.id}#count" if cfg.count_dsn else target.id, cfg.count_dsn or cfg.dsn,
                        cfg.connect_timeout_s, remember=cfg.retry is None) as conn:
        for name in cfg.count_tables:
            [(oid,)] = conn.execute("SELECT to_regclass(%s)::oid", (name,)).fetchall()
            if oid is None:
                rows[name] = None
                problems.append(f"{name}: table not found")
                continue
            [(under_rls, policies, role)] = conn.execute(_RLS, (oid,)).fetchall()
            if under_rls:
                rows[name] = None
                hidden[name] = (f"{name}: rows hidden from role {role} by row-level security (policies: {policies}); "
                                "set count_dsn to a role with BYPASSRLS to count them")
                continue
            [(count,)] = conn.execute("SELECT count(*) FROM " + _quoted(name)).fetchall()
            rows[name] = count
    counted = ", ".join(f"{n}: {c} rows" for n, c in rows.items() if c is not None)
    observed = "; ".join(problems) if problems else "; ".join(filter(None, [counted, *hidden.values()]))
    return Outcome(not problems, observed, {"rows": rows, "hidden_by_rls": hidden})


def _quoted(name: str) -> str:
    """schema.table → "schema"."table" (identifiers quoted; the name was resolved by to_regclass first)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
