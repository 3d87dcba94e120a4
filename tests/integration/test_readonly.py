"""The smoke suite writes nothing to what it checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support import SandboxHelper, run_suite

from opsproof.probes import Connections

pytestmark = pytest.mark.integration

def pg_writes(helper: SandboxHelper) -> tuple[Any, ...]:
    """Rows inserted, updated and deleted in every user table (pg_stat_user_tables) and temporary files
    (pg_stat_database). pg_stat_database's own tuple counters also count the catalog rows autovacuum and
    autoanalyze update on their own schedule, so they move without anyone writing data."""
    with helper.superuser() as c:
        c.execute("SELECT pg_stat_force_next_flush()")
        tables = c.execute("SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0),"
                           " coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables").fetchone()
        files = c.execute("SELECT sum(temp_files) FROM pg_stat_database").fetchone()
        assert tables is not None
        assert files is not None
        return (*tables, *files)


def redis_write_calls(helper: SandboxHelper) -> dict[str, int]:
    """Calls of every command Redis itself flags as a write (COMMAND INFO), from INFO commandstats."""
    r = helper.redis()
    try:
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}
        writes = {}
        for name, count in calls.items():
            info = str(r.execute_command("COMMAND", "INFO", name))  # flags and ACL categories
            if "'write'" in info or "@write" in info:
                writes[name] = count
        return writes
    finally:
        r.close()


def test_smoke_suite_writes_nothing(healthy: SandboxHelper, tmp_path: Path) -> None:
    with healthy.redis() as r:
        r.flushall()  # so that the traffic below misses the cache and the app writes (SET) for real
        r.config_resetstat()  # and the smoke suite's hit rate is of that traffic alone, not of earlier tests'
    with httpx.Client(base_url=healthy.box.url("app"), timeout=5) as client:
        # a counted warm-up, not a timed one: 200 misses (the SETs), then 400 hits — a hit rate of 2/3 whatever the
        # machine's speed (1 s of traffic was 343 requests on a loaded CI machine: 41.7 %, under the check's 50 %)
        for _ in range(3):
            for item in range(1, 201):
                client.get(f"/items/{item}").raise_for_status()
    pg_before, redis_before = pg_writes(healthy), redis_write_calls(healthy)
    # the instruments work: the seed inserted rows, and the app's cache fills did SETs
    assert pg_before[0] > 0, pg_before
    assert redis_before.get("set", 0) > 0, redis_before
    run = run_suite(healthy.inventory, tmp_path)
    assert run.code == 0, run.output
    # the suite's sessions ended with its process, so their statistics are flushed
    assert pg_writes(healthy) == pg_before
    assert redis_write_calls(healthy) == redis_before


def test_probe_sessions_refuse_writes(healthy: SandboxHelper) -> None:
    """Even a probe with a bug could not write: the session is read-only (default_transaction_read_only)."""
    dsn = healthy.box.dsn("postgres")  # a superuser DSN, the worst case
    with Connections() as conns, conns.postgres("pg", dsn, 3) as conn, pytest.raises(
        psycopg.errors.ReadOnlySqlTransaction
    ):
        conn.execute("CREATE TABLE opsproof_must_not_exist (id int)")
