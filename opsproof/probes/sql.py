"""Read-only SQL assertions — the runbooks' `psql -c "SELECT …"` lines as checks: `SHOW max_connections`, an index
exists, `age(datfrozenxid)`, the latest migration, slow statements in `pg_stat_statements`.

Each query runs alone in a transaction of its own that cannot change anything and is always rolled back::

    BEGIN; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = N; <the query>; ROLLBACK

on the entry's one session (itself ``default_transaction_read_only = on``). The query is sent as a prepared
statement (the extended protocol), so it is exactly one statement: ``SELECT 1; DELETE …`` is refused by the
server. A query that writes fails ("cannot execute … in a read-only transaction"); one that ends or changes the
transaction (``COMMIT``, ``SET TRANSACTION READ WRITE``) fails too, and nothing after it runs. A query over its
timeout fails with "statement timeout after N ms". Any other server error (a missing table, a missing extension)
is a failed check naming the server's reason, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsproof.inventory import PgQuery
from opsproof.inventory.queries import MAX_ROWS, compare, fmt
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity

if TYPE_CHECKING:
    from psycopg import Connection

SAMPLE = 5  # rows kept in the evidence
WRITES = "25006"  # read_only_sql_transaction
CANCELED = "57014"  # query_canceled: the statement timeout, or a cancel request


@dataclass(frozen=True)
class Answer:
    """What the query returned (up to MAX_ROWS + 1 rows), or why the server refused it (``refused``)."""

    columns: tuple[str, ...] = ()
    rows: Sequence[tuple[Any, ...]] = ()
    refused: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def expected(cfg: PgQuery) -> str:
    bound = cfg.row_bound
    if bound is not None:
        return f"rows {bound[0]} {bound[1]}"
    assert cfg.op is not None
    assert cfg.value is not None
    return f"{cfg.op} {fmt(cfg.value)}"


@probe("postgres.query", "postgres", Severity.HIGH,
       "psql -c 'SQL'  -- in a READ ONLY transaction with a statement timeout, rolled back",
       applies=lambda cfg: isinstance(cfg, PgQuery), expected=expected, each=("query", lambda cfg: cfg.queries))
def query(target: Target[PgQuery], conns: Connections) -> Outcome:
    """A named read-only query's result — its one value, or its number of rows — is what the entry says."""
    cfg = target.config
    entry = cfg.entry
    with conns.postgres(target.entry.id, entry.dsn, entry.connect_timeout_s, remember=entry.retry is None) as conn:
        answer = read_only(conn, cfg.sql, cfg.timeout)
    return judge(cfg, answer)


def read_only(conn: Connection[Any], sql: str, timeout_s: float) -> Answer:
    """Run ``sql`` alone in a READ ONLY transaction with a statement timeout, then roll it back. A refusal by the
    server (an SQL error) is the answer's ``refused``; a lost connection raises, for the session to be replaced."""
    import psycopg
    from psycopg.pq import TransactionStatus

    ms = max(1, round(timeout_s * 1000))
    notes = {"statement_timeout_ms": ms, "transaction": "READ ONLY, rolled back"}
    conn.execute("BEGIN")
    try:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f"SET LOCAL statement_timeout = {ms}")
        try:
            cursor = conn.execute(sql, prepare=True)  # extended protocol: one statement, never several
            columns = tuple(c.name for c in cursor.description or ())
            rows = cursor.fetchmany(MAX_ROWS + 1) if cursor.description else []
        except psycopg.Error as e:
            if e.sqlstate is None:  # not the server's answer: the connection broke
                raise
            return Answer(refused=refusal(e, ms), evidence={**notes, "sqlstate": e.sqlstate})
        if conn.info.transaction_status != TransactionStatus.INTRANS:
            return Answer(refused="the query ended the read-only transaction (COMMIT/ROLLBACK are not assertions)",
                          evidence=notes)
        [(read_only_now,)] = conn.execute("SELECT current_setting('transaction_read_only')").fetchall()
        if read_only_now != "on":
            return Answer(refused="the query made the transaction read-write; nothing else ran, and it was rolled "
                                  "back", evidence=notes)
        return Answer(columns, rows, evidence=notes)
    finally:
        if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            conn.execute("ROLLBACK")


def refusal(e: Any, ms: int) -> str:
    """What the server said, as a finding."""
    primary = (e.diag.message_primary or str(e)).strip()
    if e.sqlstate == CANCELED and "statement timeout" in primary:
        return f"statement timeout after {ms} ms"
    if e.sqlstate == WRITES:
        return f"refused: {primary} — the query writes; postgres.query runs it read-only"
    hint = ""
    if "pg_stat_statements" in primary:
        hint = (" — the extension pg_stat_statements is not usable here: CREATE EXTENSION pg_stat_statements, with "
                "it in shared_preload_libraries")
    return f"refused by the server: {primary} (SQLSTATE {e.sqlstate}){hint}"


def judge(cfg: PgQuery, answer: Answer) -> Outcome:
    """The answer against the entry: its number of rows (``rows:``), or its one value (``op``/``value``)."""
    evidence = {**answer.evidence, "sql": cfg.sql, "columns": list(answer.columns),
                "rows": [[_short(v) for v in row] for row in answer.rows[:SAMPLE]],
                "row_count": len(answer.rows) if len(answer.rows) <= MAX_ROWS else f"more than {MAX_ROWS}"}
    if answer.refused is not None:
        return Outcome(False, answer.refused, evidence)
    count = len(answer.rows)
    bound = cfg.row_bound
    if bound is not None:
        shown = f"more than {MAX_ROWS} rows" if count > MAX_ROWS else f"{count} row{'' if count == 1 else 's'}"
        first = f" (first: {', '.join(_short(v) for v in answer.rows[0])})" if answer.rows else ""
        return Outcome(compare(float(count), bound[0], float(bound[1])), shown + first, evidence)
    if count == 0:
        return Outcome(False, "no data: the query returned no rows", evidence)
    if count > 1 or len(answer.columns) != 1:
        return Outcome(False, f"{'more than ' + str(MAX_ROWS) if count > MAX_ROWS else count} row(s) of "
                              f"{len(answer.columns)} column(s), not one value (judge rows:, or return one value)",
                       evidence)
    value = answer.rows[0][0]
    if value is None:
        return Outcome(False, "no data: the query returned NULL", evidence)
    assert cfg.op is not None
    assert cfg.value is not None
    wanted = _number(cfg.value)
    if wanted is None:  # text, compared as text (== / !=)
        return Outcome(compare(str(value), cfg.op, str(cfg.value)), fmt(str(value)), evidence)
    got = _number(value)
    if got is None:
        return Outcome(False, f"{fmt(str(value))}, not a number", evidence)
    return Outcome(compare(got, cfg.op, wanted), fmt(got), evidence)


def _number(value: Any) -> float | None:
    """A value as a number: numbers, numeric text (SHOW answers text), an interval in seconds, a boolean as 0/1."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    try:
        return float(str(value))
    except ValueError:
        return None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"
