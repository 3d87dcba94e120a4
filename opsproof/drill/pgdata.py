"""What a PostgreSQL backup must contain, read the same way from the source (inside the dump's snapshot) and from
the restored copy: per-table row counts and content checksums, and the names of the schema objects.

The checksum of a table is ``sum(hashtextextended(row::text, 0))`` over its rows: independent of row order
(a restore may load rows in another physical order), changed by any edited, added or missing row, computed in
one sequential scan with no sort and no memory growth, and parallel-safe (PostgreSQL may use parallel workers).
The text form of a row depends on session settings, so both sides pin them (:data:`SESSION`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

CHECKSUM_METHOD = "sum(hashtextextended(row::text, 0)) per table, TimeZone=UTC, DateStyle=ISO, extra_float_digits=1"
LOCK_TIMEOUT = "60s"  # a table held by an ALTER TABLE makes a read wait: a bounded wait, then an error naming it
SESSION = ("SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'postgres'",
           "SET extra_float_digits = 1", "SET bytea_output = 'hex'",
           # as pg_dump sets on its own sessions: a role's statement or idle timeout must not kill a scan of a big
           # table, nor the snapshot-exporting session while pg_dump runs (interrupts cancel scans; see tables_data)
           "SET statement_timeout = 0", "SET idle_in_transaction_session_timeout = 0")

USER_SCHEMAS = """n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp%'"""
NOT_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{cat}'::regclass AND d.objid = {oid}
  AND d.deptype = 'e')"""

TABLES_SQL = f"""
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {USER_SCHEMAS} AND {NOT_EXTENSION.format(cat="pg_class", oid="c.oid")}
ORDER BY 1, 2"""

RELKINDS = {"r": "table", "p": "table", "i": "index", "I": "index", "S": "sequence", "v": "view",
            "m": "materialized view", "f": "foreign table"}
OBJECTS_SQL = f"""
SELECT c.relkind::text, n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'i', 'I', 'S', 'v', 'm', 'f') AND {USER_SCHEMAS}
  AND {NOT_EXTENSION.format(cat="pg_class", oid="c.oid")}
UNION ALL
SELECT 'constraint', n.nspname || '.' || c.relname || '.' || k.conname FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {USER_SCHEMAS} AND {NOT_EXTENSION.format(cat="pg_class", oid="c.oid")}
UNION ALL
SELECT 'function', n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {USER_SCHEMAS} AND {NOT_EXTENSION.format(cat="pg_proc", oid="p.oid")}
UNION ALL
SELECT 'extension', e.extname FROM pg_extension e WHERE e.extname <> 'plpgsql'"""

Objects = dict[str, list[str]]  # kind → sorted names, e.g. {"index": ["public.items_pkey", …]}
TableData = dict[str, dict[str, Any]]  # "public.items" → {"rows": 5000, "checksum": "…"}


def pin_session(conn: psycopg.Connection[Any]) -> None:
    for statement in SESSION:
        conn.execute(statement)
    conn.execute(sql.SQL("SET lock_timeout = {}").format(LOCK_TIMEOUT))


def tables(conn: psycopg.Connection[Any]) -> list[str]:
    return [f"{schema}.{name}" for schema, name in conn.execute(TABLES_SQL).fetchall()]


def objects(conn: psycopg.Connection[Any]) -> Objects:
    found: dict[str, set[str]] = {}
    for relkind, name in conn.execute(OBJECTS_SQL).fetchall():
        found.setdefault(RELKINDS.get(relkind, relkind), set()).add(name)
    return {kind: sorted(names) for kind, names in sorted(found.items())}


def table_data(conn: psycopg.Connection[Any], table: str) -> dict[str, Any]:
    """Row count and checksum of one table (``schema.name``), in the connection's current snapshot."""
    schema, _, name = table.partition(".")
    query = sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM ONLY {} AS t")
    rows, checksum = conn.execute(query.format(sql.Identifier(schema, name))).fetchone() or (0, "0")
    return {"rows": int(rows), "checksum": str(checksum)}


def tables_data(connect: Callable[[], psycopg.Connection[Any]], names: Iterable[str], jobs: int) -> TableData:
    """Counts and checksums of many tables over ``jobs`` connections; give the names biggest first (:func:`by_size`)
    so that the longest scans start at once."""
    names = list(names)
    local = threading.local()
    opened: list[psycopg.Connection[Any]] = []
    lock = threading.Lock()

    def work(table: str) -> tuple[str, dict[str, Any]]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect()
            with lock:
                opened.append(conn)
            pin_session(conn)
        return table, table_data(conn, table)

    workers = max(1, min(jobs, len(names)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="opsproof-verify")
    try:
        return dict(sorted(pool.map(work, names)))
    except BaseException:
        # Ctrl-C, SIGTERM or one failed table: the scans still running are cancelled on the server, not awaited
        # (the biggest tables go first; waiting for them would hold the teardown for as long as a full scan)
        with lock:
            running = list(opened)
        for conn in running:
            with contextlib.suppress(Exception):
                conn.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for conn in opened:
            conn.close()


def by_size(conn: psycopg.Connection[Any], names: Iterable[str]) -> list[str]:
    """The tables, biggest heap first (missing ones last)."""
    rows = conn.execute("SELECT t, coalesce(pg_relation_size(to_regclass(quote_ident(split_part(t, '.', 1)) || '.' || "
                        "quote_ident(split_part(t, '.', 2)))), 0) FROM unnest(%s::text[]) AS t",
                        [list(names)]).fetchall()
    return [t for t, _ in sorted(rows, key=lambda r: (-int(r[1]), r[0]))]
