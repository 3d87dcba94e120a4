"""DR drills against the sandbox's real PostgreSQL and Redis: backups restored for real into scratch instances.

The source is a `shop` database with a realistic data set (customers, 50,000 orders with numeric, jsonb, bytea,
NULLs and non-ASCII text, a foreign key, partial and expression indexes, a view, a materialized view, a function
and a sequence). Each broken backup fails exactly the phase that should catch it, with a message saying what.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from support import REPO, SLOW_SQL, SandboxHelper, interruptible, run_suite

from opsproof.drill import Drill, open_drill
from opsproof.drill.backup import manifest_path, read_manifest, take_postgres, take_redis
from opsproof.drill.phases import PHASES
from opsproof.drill.scratch import PREFIX, ScratchPostgres, ScratchServer, pid_alive, same_server, sweep, workdir
from opsproof.drill.tools import pg_tool
from opsproof.inventory import loads
from opsproof.sandbox.process import wait_for

SHOP_SQL = """
CREATE TABLE customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE, name text, country char(2),
  created_at timestamptz NOT NULL, meta jsonb);
INSERT INTO customers (email, name, country, created_at, meta)
  SELECT 'user' || g || '@example.com', 'Zoë Ünal ' || g, (ARRAY['DE','FR','US','JP','BR'])[1 + g % 5],
         timestamptz '2024-01-01' + g * interval '17 minutes',
         jsonb_build_object('tier', g % 4, 'tags', jsonb_build_array('a' || g % 7, 'b'))
  FROM generate_series(1, 5000) g;
CREATE TABLE orders (
  id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  status text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'refunded')), amount numeric(12,2) NOT NULL,
  placed_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, note text, receipt bytea, lines jsonb);
INSERT INTO orders (customer_id, status, amount, placed_at, updated_at, note, receipt, lines)
  SELECT 1 + g % 5000, (ARRAY['new','paid','shipped','refunded'])[1 + g % 4], round((g * 7.31) % 1000, 2),
         now() - (50000 - g) * interval '1 minute', now() - (50000 - g) * interval '1 minute',
         CASE WHEN g % 10 = 0 THEN NULL ELSE 'note ' || md5(g::text) END, decode(md5(g::text), 'hex'),
         jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g % 300, 'qty', 1 + g % 3))
  FROM generate_series(1, 50000) g;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_open ON orders (placed_at) WHERE status IN ('new', 'paid');
CREATE INDEX customers_email_lower ON customers (lower(email));
CREATE VIEW revenue_by_day AS
  SELECT date_trunc('day', placed_at) AS day, sum(amount) AS revenue FROM orders WHERE status <> 'refunded' GROUP BY 1;
CREATE MATERIALIZED VIEW top_customers AS
  SELECT customer_id, sum(amount) AS total FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 100;
CREATE FUNCTION order_total(c bigint) RETURNS numeric LANGUAGE sql STABLE
  AS 'SELECT coalesce(sum(amount), 0) FROM orders WHERE customer_id = c';
CREATE SEQUENCE invoice_no START 1000;
ANALYZE;
"""


def _database(sandbox: SandboxHelper, name: str, script: str) -> str:
    """A database owned by the app role (which a scratch server does not have: ownership is not restored)."""
    with sandbox.superuser() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} OWNER app")
    with sandbox.superuser(db=name) as conn:
        conn.execute("SET ROLE app")
        conn.execute(script)
    return sandbox.box.dsn("opsproof_backup", db=name)


@pytest.fixture(scope="module")
def shop(sandbox: SandboxHelper) -> str:
    """DSN of the shop database, for a role that can read every row (pg_read_all_data, BYPASSRLS)."""
    return _database(sandbox, "shop", SHOP_SQL)


def inventory_text(sandbox: SandboxHelper, dsn: str, **entry: Any) -> str:
    data = {"environment": "drill-test",
            "postgres": {"shop": {"dsn": dsn, "connect_timeout_s": 3}},
            "redis": {"cache": {"url": sandbox.box.redis_url(), "timeout_s": 3}},
            "backups": {"shop": {"postgres": "shop", "rpo": "24h", "rto": "5m", **entry}}}
    return yaml.safe_dump(data)


def drill(sandbox: SandboxHelper, dsn: str, tmp_path: Path, **entry: Any) -> Drill:
    inv = loads(inventory_text(sandbox, dsn, **entry))
    the_drill = open_drill(inv, "shop", tmp_path / "evidence")
    the_drill.run()
    return the_drill


def finding(the_drill: Drill, phase: str) -> str:
    result = the_drill.records[phase].result
    return f"{result.verdict.upper()} {result.explain()}"


def verdicts(the_drill: Drill) -> dict[str, str]:
    return {name: record.result.verdict for name, record in the_drill.records.items()}


def nothing_left(pid: int | None = None, besides: Path | None = None) -> None:
    """No scratch folder or process of this test process's drills (``besides``: a test's own other server)."""
    pid = pid or os.getpid()
    folders = [f for f in Path("/tmp").glob(f"{PREFIX}{pid}-*") if f != besides]
    processes = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, f"{PREFIX}{pid}-")
                 and not (besides and _cmdline_has(p, str(besides)))]
    assert (folders, processes) == ([], [])


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def pg_dump(dsn: str, path: Path, *args: str) -> Path:
    """A backup made the way the runbooks make them (no opsproof, no manifest)."""
    env = {**os.environ, "PGPASSWORD": psycopg.conninfo.conninfo_to_dict(dsn)["password"]}
    params = {k: v for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items() if k != "password"}
    conninfo = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
    if path.name.endswith(".sql.gz"):
        plain = subprocess.run([pg_tool("pg_dump", 15), "--dbname", conninfo, *args], env=env, check=True,
                               capture_output=True).stdout
        path.write_bytes(gzip.compress(plain))
    else:
        subprocess.run([pg_tool("pg_dump", 15), "--dbname", conninfo, "-f", str(path), *args], env=env, check=True)
    return path


# --- the drill passes on a good backup -------------------------------------------------------------------------

def test_a_drill_on_a_fresh_backup_passes_as_a_suite(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    _, manifest = take_postgres(shop, backups, "shop_*.dump", source="postgres[shop]")
    assert manifest["tables"]["public.orders"]["rows"] == 50000
    inventory = tmp_path / "inventory.yaml"
    text = inventory_text(sandbox, shop, directory=str(backups), pattern="shop_*.dump",
                          tables=["public.orders", "public.customers"],
                          freshness_query="SELECT max(updated_at) FROM public.orders")
    data = yaml.safe_load(text)
    data["backups"]["cache"] = {"redis": "cache", "fresh": True, "rpo": "1h", "rto": "1m"}
    inventory.write_text(yaml.safe_dump(data))
    run = run_suite(inventory, tmp_path / "out", suite="checks/dr_drill")
    assert run.code == 0, run.output
    phases = [f"drill.{p}" for p in ("found", "integrity", "provision", "restore", "verify", "rpo", "rto", "teardown")]
    for target in ("backups[shop]", "backups[cache]"):
        assert [r["check"] for r in run.records if r["target"] == target] == phases
    assert "DR drill backups[shop] (postgres) — PASS" in run.output
    verify = next(r for r in run.records if r["check"] == "drill.verify" and r["target"] == "backups[shop]")
    assert "schema objects of the manifest present" in verify["observed"]
    assert "row counts and checksums = manifest (55,000 rows)" in verify["observed"]
    assert "pg_amcheck: every B-tree index consistent" in verify["observed"]
    [evidence] = (tmp_path / "out" / "drills").glob("shop-*.json")
    doc = json.loads(evidence.read_text())
    assert doc["verdict"] == "PASS"
    assert doc["backup"]["sha256"] == manifest["sha256"]
    assert [p["phase"] for p in doc["phases"]] == [p.split(".")[1] for p in phases]
    assert all({"start", "end", "duration_s"} <= set(p) for p in doc["phases"])
    assert doc["rto"]["measured_s"] == pytest.approx(sum(doc["rto"]["parts_s"].values()), abs=0.01)
    assert doc["rpo"]["basis"] == "the freshness query on the restore"
    secret = sandbox.box.meta["passwords"]["opsproof_backup"]
    assert secret not in run.output
    assert secret not in evidence.read_text()
    assert secret not in (tmp_path / "out" / "results.jsonl").read_text()
    orphans = [p for p in Path("/tmp").glob(f"{PREFIX}*") if not pid_alive(int(p.name[len(PREFIX):].split("-")[0]))]
    assert orphans == []


def test_a_drill_never_writes_to_the_source(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    """A fresh backup (pg_dump + manifest checksums) and the whole drill: no row written in the source."""
    query = ("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del), sum(n_tup_hot_upd) FROM pg_stat_user_tables; "
             "SELECT pg_stat_clear_snapshot()")
    with sandbox.superuser(db="shop") as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        before = conn.execute(query).fetchone()
        the_drill = drill(sandbox, shop, tmp_path, fresh=True, tables=["public.orders"])
        assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
        conn.execute("SELECT pg_stat_force_next_flush()")
        assert conn.execute(query).fetchone() == before


def test_plain_gzipped_dump_without_manifest_restores_through_psql(sandbox: SandboxHelper, shop: str,
                                                                    tmp_path: Path) -> None:
    pg_dump(shop, tmp_path / "shop_full_20261127.sql.gz")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_full_*.sql.gz",
                      tables=["public.orders"], freshness_query="SELECT max(updated_at) FROM orders")
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    assert "gzip -dc | psql" in finding(the_drill, "restore")
    assert "ignored 7 ownership/grant statement(s) for roles absent on scratch" in finding(the_drill, "restore")
    nothing_left()


def test_a_directory_format_dump_restores_with_jobs(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    pg_dump(shop, tmp_path / "shop_dir", "--format=directory", "--jobs=2")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_dir",
                      tables=["public.orders", "public.customers"])
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    assert "(directory, " in finding(the_drill, "found")
    assert "pg_restore --jobs=2" in finding(the_drill, "restore")
    assert "schema objects of the archive's table of contents present" in finding(the_drill, "verify")


# --- each broken backup fails the phase that catches it ------------------------------------------------------------

def test_a_corrupted_custom_archive_fails_integrity(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    path = pg_dump(shop, tmp_path / "shop_1.dump", "--format=custom")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump")
    assert finding(the_drill, "integrity").startswith("FAIL backups[shop]: damaged archive: pg_restore: error:")
    assert verdicts(the_drill)["restore"] == "no-data"  # never restored
    nothing_left()


def test_a_corrupted_gzip_dump_fails_integrity(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    path = pg_dump(shop, tmp_path / "shop_1.sql.gz")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.sql.gz")
    assert "FAIL backups[shop]: corrupt gzip stream in shop_1.sql.gz" in finding(the_drill, "integrity")


@pytest.mark.parametrize("name", ["shop_1.sql", "shop_1.sql.gz", "shop_1.dump"])
def test_a_truncated_dump_fails_integrity(sandbox: SandboxHelper, shop: str, tmp_path: Path, name: str) -> None:
    path = pg_dump(shop, tmp_path / name, *(["--format=custom"] if name.endswith(".dump") else []))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern=name)
    expected = {"shop_1.sql": "truncated: shop_1.sql ends before pg_dump's closing line",
                "shop_1.sql.gz": "truncated: the gzip stream of shop_1.sql.gz ends early",
                "shop_1.dump": "damaged archive: pg_restore: error:"}[name]
    assert expected in finding(the_drill, "integrity")
    assert finding(the_drill, "integrity").startswith("FAIL")


def test_a_table_missing_from_the_dump_fails_verification(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    pg_dump(shop, tmp_path / "shop_1.sql.gz", "--exclude-table=public.top_customers", "--exclude-table=public.orders",
            "--exclude-table=public.revenue_by_day")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.sql.gz",
                      tables=["public.orders", "public.customers"])
    assert finding(the_drill, "verify") == (
        "FAIL backups[shop]: table public.orders (listed in the inventory) is not in the restored database, "
        "expected the restored data equal to the backup's (listed tables present and non-empty: public.orders, "
        "public.customers; pg_amcheck: every B-tree index consistent)")
    assert verdicts(the_drill)["restore"] == "pass"


def test_a_manifest_table_missing_from_the_restore_fails_verification(sandbox: SandboxHelper, shop: str,
                                                                        tmp_path: Path) -> None:
    path, _ = take_postgres(shop, tmp_path, "shop_*.dump")
    manifest = read_manifest(path)
    assert manifest is not None
    # the backup job's dump is replaced by one without a table (a wrong --exclude-table in the job, say)
    pg_dump(shop, path, "--format=custom", "--exclude-table=public.customers", "--exclude-table=public.orders",
            "--exclude-table=public.revenue_by_day", "--exclude-table=public.top_customers")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump")
    text = finding(the_drill, "verify")
    assert "table public.orders missing from the restore (manifest: 50,000 rows)" in text
    assert "table public.customers missing from the restore (manifest: 5,000 rows)" in text
    assert "sha256" in finding(the_drill, "integrity")  # and the file is not the one the manifest describes


def test_a_row_changed_after_the_manifest_was_written_fails_verification(sandbox: SandboxHelper, shop: str,
                                                                          tmp_path: Path) -> None:
    path, _ = take_postgres(shop, tmp_path, "shop_*.dump")
    with sandbox.superuser(db="shop") as conn:
        conn.execute("UPDATE orders SET amount = amount + 0.01 WHERE id = 4242")
        try:  # the dump now on disk holds the changed row; the manifest describes the snapshot before it
            pg_dump(shop, path, "--format=custom")
        finally:
            conn.execute("UPDATE orders SET amount = amount - 0.01 WHERE id = 4242")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump")
    assert finding(the_drill, "verify").startswith(
        "FAIL backups[shop]: public.orders: content checksum differs from the manifest (same 50,000 rows, at least "
        "one row changed)")
    assert "differs from the manifest's" in finding(the_drill, "integrity")
    nothing_left()


def test_a_corrupt_index_in_the_restore_fails_pg_amcheck(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    take_postgres(shop, tmp_path, "shop_*.dump")
    inv = loads(inventory_text(sandbox, shop, directory=str(tmp_path), pattern="shop_*.dump"))
    the_drill = open_drill(inv, "shop", tmp_path / "evidence")
    try:
        for name in ("found", "integrity", "provision", "restore"):
            the_drill.phase(name)
        scratch = the_drill.scratch  # type: ignore[attr-defined]
        assert isinstance(scratch, ScratchPostgres)
        with scratch.connect() as conn:
            index = conn.execute("SELECT current_setting('data_directory') || '/' || "
                                 "pg_relation_filepath('public.orders_customer')").fetchone()
        scratch.stop()
        with open(str(index[0]), "r+b") as f:  # a page of the restored index zeroed on disk
            f.seek(8192)
            f.write(bytes(8192))
        scratch.launch()
        result = the_drill.phase("verify")
    finally:
        the_drill.close()
    assert result.ok is False
    assert 'pg_amcheck found problems: btree index "opsproof_restore.public.orders_customer":' in result.observed
    nothing_left()


def test_a_locked_table_fails_the_backup_within_the_lock_timeout(sandbox: SandboxHelper, shop: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An ALTER TABLE holding orders: the backup waits LOCK_TIMEOUT (60 s; 1 s here), then fails, leaving no file."""
    from opsproof.drill import pgdata
    from opsproof.drill.tools import DrillError

    # the sessions take LOCK_TIMEOUT as it is when the backup starts: an unusable value reaches the server
    monkeypatch.setattr(pgdata, "LOCK_TIMEOUT", "one fortnight")
    with pytest.raises(DrillError, match=r'invalid value for parameter "lock_timeout": "one fortnight"'):
        take_postgres(shop, tmp_path, "shop_*.dump", source="postgres[shop]")
    # so with 1 s, the lock timeout that ends the wait is that 1 s (not the default 60 s)
    monkeypatch.setattr(pgdata, "LOCK_TIMEOUT", "1s")
    with sandbox.superuser(db="shop") as conn:
        conn.autocommit = False
        conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        try:
            with pytest.raises(DrillError) as info:
                take_postgres(shop, tmp_path, "shop_*.dump", source="postgres[shop]")
        finally:
            conn.rollback()
    assert str(info.value).startswith("the manifest of postgres[shop] failed: canceling statement due to lock timeout")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_count_cancels_its_running_scans(sandbox: SandboxHelper, shop: str) -> None:
    """Ctrl-C while the checksum sessions scan (here: wait on a locked table, lock timeout 60 s): the scans are
    cancelled on the server and the interrupt goes through at once, instead of after the longest scan."""
    from opsproof.drill.pgdata import tables_data

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    server_log = sandbox.box.sup.log_dir / "postgres.log"
    seen = server_log.stat().st_size
    previous = signal.signal(signal.SIGALRM, interrupt)
    with sandbox.superuser(db="shop") as conn:
        conn.autocommit = False
        conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        try:
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            with pytest.raises(KeyboardInterrupt):
                tables_data(lambda: psycopg.connect(shop, autocommit=True), ["public.orders", "public.customers"], 2)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            waiting = conn.execute("SELECT count(*) FROM pg_locks WHERE relation = 'orders'::regclass "
                                   "AND NOT granted").fetchone()
            conn.rollback()
    assert waiting == (0,), "a checksum scan was still waiting on the server"

    # the server says how the scan of orders ended: cancelled on request, not by the lock timeout (60 s) it would
    # otherwise have waited out
    def logged() -> str:
        with server_log.open("rb") as f:
            f.seek(seen)
            return f.read().decode(errors="replace")

    cancelled = re.compile(r'ERROR:  canceling statement due to user request\n.*STATEMENT:  SELECT count\(\*\).* '
                           r'FROM ONLY "public"\."orders"')
    wait_for(lambda: cancelled.search(logged()) is not None, 10, f"no cancelled scan of orders in {server_log}")


def test_a_backup_older_than_the_rpo_fails(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    path = pg_dump(shop, tmp_path / "shop_1.dump", "--format=custom")
    stale = time.time() - 30 * 3600
    os.utime(path, (stale, stale))
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump")
    assert finding(the_drill, "found") == (
        "FAIL backups[shop]: newest backup shop_1.dump is 30.0 h old, expected a backup younger than 1d (rpo)")
    assert finding(the_drill, "rpo").startswith("FAIL backups[shop]: measured RPO 30.0 h")
    assert verdicts(the_drill)["verify"] == "pass", finding(the_drill, "verify")  # stale: still restored, verified


def test_a_restore_slower_than_a_tiny_rto_fails(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    take_postgres(shop, tmp_path, "shop_*.dump")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump", rto="50ms")
    text = finding(the_drill, "rto")
    assert text.startswith("FAIL backups[shop]: measured RTO ")
    assert text.endswith(", expected ≤ 0.05s (rto)")
    assert verdicts(the_drill)["verify"] == "pass"


def test_a_scratch_target_equal_to_the_source_is_refused(sandbox: SandboxHelper, shop: str, tmp_path: Path) -> None:
    take_postgres(shop, tmp_path, "shop_*.dump")
    alias = shop.replace("127.0.0.1", "localhost")  # the same server under another name
    with sandbox.superuser() as conn:
        before = conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall()
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump",
                      scratch={"dsn": alias})
    port = sandbox.box.port("postgres")
    assert finding(the_drill, "provision") == (
        f"FAIL backups[shop]: refused: the scratch target localhost:{port}/shop is the source postgres[shop] "
        f"(same host (loopback), port {port} and database as the source). A drill restores into a scratch instance, "
        "never into the source. Fix: point scratch.dsn at another server, or remove it to use a throwaway local "
        "cluster, expected a scratch instance")
    assert verdicts(the_drill)["restore"] == "no-data"
    with sandbox.superuser() as conn:
        assert conn.execute("SELECT datname FROM pg_database ORDER BY 1").fetchall() == before


def test_same_server_sees_through_names() -> None:
    src = "postgresql://u:p@127.0.0.1:5432/app"
    assert same_server(src, "postgresql://u:p@localhost:5432/other") is not None
    assert same_server(src, "host=127.0.0.1 port=5432 dbname=app user=x") is not None
    assert same_server(src, "postgresql://u:p@127.0.0.1:5433/app") is None
    assert same_server("host=/var/run/postgresql port=5432 dbname=app", "postgresql://u:p@localhost:5432/x") \
        is not None  # a Unix socket is this machine


def test_a_physical_replica_of_the_source_is_refused_as_scratch(sandbox: SandboxHelper, shop: str,
                                                               tmp_path: Path) -> None:
    """Another port, but the same cluster (same system identifier): restoring there would write to the source."""
    take_postgres(shop, tmp_path, "shop_*.dump")
    replica = sandbox.box.dsn("postgres", db="postgres", service="replica")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump",
                      scratch={"dsn": replica})
    assert "own server (same system identifier)" in finding(the_drill, "provision")


def test_an_unreachable_source_is_checked_against_the_manifest(sandbox: SandboxHelper, shop: str,
                                                                tmp_path: Path, other_server: OtherServer) -> None:
    """The source does not answer (a real DR): the manifest's system identifier still refuses the source's replica,
    still allows an unrelated server; without a manifest nothing is created (the guard fails closed)."""
    take_postgres(shop, tmp_path / "with", "shop_*.dump")
    gone = "postgresql://opsproof_backup:x@127.0.0.1:1/shop"
    replica = sandbox.box.dsn("postgres", db="postgres", service="replica")
    refused = drill(sandbox, gone, tmp_path, directory=str(tmp_path / "with"), pattern="shop_*.dump",
                    scratch={"dsn": replica})
    assert "own server (same system identifier)" in finding(refused, "provision")
    allowed = drill(sandbox, gone, tmp_path, directory=str(tmp_path / "with"), pattern="shop_*.dump",
                    scratch={"dsn": other_server.dsn})
    assert allowed.records["verify"].result.ok, allowed.summary()
    (tmp_path / "without").mkdir()
    pg_dump(shop, tmp_path / "without" / "shop_1.dump", "--format=custom")
    blind = drill(sandbox, gone, tmp_path, directory=str(tmp_path / "without"), pattern="shop_*.dump",
                  scratch={"dsn": other_server.dsn})
    assert re.fullmatch(r"FAIL backups\[shop\]: refused: cannot prove that the scratch target \S+ is not the source "
                        r"postgres\[shop\]'s server: the source does not answer \(.*\) and the backup has no manifest "
                        r"with the source's identity\. Fix: .*, expected a scratch instance",
                        finding(blind, "provision")), finding(blind, "provision")
    with psycopg.connect(other_server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsproof_drill_%'").fetchall() == []
    nothing_left(besides=other_server.cluster.folder)


@dataclass
class OtherServer:
    """A second, unrelated PostgreSQL cluster: "another server" to use as ``scratch.dsn``."""

    cluster: ScratchPostgres
    dsn: str


@pytest.fixture
def other_server() -> Iterator[OtherServer]:
    cluster = ScratchPostgres(workdir(), 15)
    try:
        cluster.start()
        yield OtherServer(cluster, psycopg.conninfo.make_conninfo(host=str(cluster.run_dir), port=str(cluster.port),
                                                                  user="postgres", dbname="postgres"))
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


def test_a_scratch_server_gets_a_database_of_its_own_and_loses_it(sandbox: SandboxHelper, shop: str, tmp_path: Path,
                                                                   other_server: OtherServer) -> None:
    take_postgres(shop, tmp_path, "shop_*.dump")
    the_drill = drill(sandbox, shop, tmp_path, directory=str(tmp_path), pattern="shop_*.dump",
                      scratch={"dsn": other_server.dsn})
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    assert "a database of its own on the scratch server" in finding(the_drill, "provision")
    with psycopg.connect(other_server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'opsproof_drill_%'").fetchall() == []


def production(text: str) -> str:
    return text.replace("environment: drill-test", "environment: drill-test\nproduction: true")


def test_production_refuses_a_scratch_server_unless_allowed(sandbox: SandboxHelper, shop: str, tmp_path: Path,
                                                             other_server: OtherServer) -> None:
    """production: true — the drill still finds and checks the backup (read-only), but creates no database on a
    server the inventory names unless --allow-destructive; a local scratch cluster needs no permission."""
    take_postgres(shop, tmp_path, "shop_*.dump")
    inv = loads(production(inventory_text(sandbox, shop, directory=str(tmp_path), pattern="shop_*.dump",
                                          scratch={"dsn": other_server.dsn})))
    assert inv.production
    refused = open_drill(inv, "shop", tmp_path / "evidence")
    refused.run()
    assert verdicts(refused) == {"found": "pass", "integrity": "pass", "provision": "fail", "restore": "no-data",
                                 "verify": "no-data", "rpo": "pass", "rto": "no-data", "teardown": "pass"}
    assert finding(refused, "provision") == (
        "FAIL backups[shop]: refused: environment drill-test is marked production: true, and scratch.dsn would "
        "have the drill create and drop a database on that server, expected a scratch PostgreSQL. Fix: run with "
        "--allow-destructive (OPSPROOF_ALLOW_DESTRUCTIVE=1 under pytest), or remove scratch.dsn to restore into "
        "a local scratch cluster")
    for the_drill in (open_drill(inv, "shop", tmp_path / "evidence", allow_destructive=True),
                      open_drill(loads(production(inventory_text(sandbox, shop, directory=str(tmp_path),
                                                                 pattern="shop_*.dump"))), "shop", tmp_path / "ev")):
        try:
            for name in ("found", "integrity", "provision"):
                assert the_drill.phase(name).ok, the_drill.summary()
        finally:
            the_drill.close()
        assert the_drill.records["teardown"].result.ok
    nothing_left(besides=other_server.cluster.folder)


def test_psql_failing_early_is_reported_at_once(sandbox: SandboxHelper, shop: str, tmp_path: Path,
                                                other_server: OtherServer) -> None:
    """The scratch database vanishes between provision and restore: psql exits at once, gzip gets SIGPIPE (it used
    to block on a full pipe for 30 s), and the restore fails with psql's own message."""
    pg_dump(shop, tmp_path / "shop_full_1.sql.gz")
    inv = loads(inventory_text(sandbox, shop, directory=str(tmp_path), pattern="shop_full_*.sql.gz",
                               scratch={"dsn": other_server.dsn}))
    the_drill = open_drill(inv, "shop", tmp_path / "evidence")
    try:
        for name in ("found", "integrity", "provision"):
            assert the_drill.phase(name).ok, the_drill.summary()
        with psycopg.connect(other_server.dsn, autocommit=True) as conn:
            assert isinstance(the_drill.scratch, ScratchServer)
            conn.execute(f'DROP DATABASE "{the_drill.scratch.database}" WITH (FORCE)')
        result = the_drill.phase("restore")  # stuck gzip: 30 s, then "psql did not finish", not psql's own error
    finally:
        the_drill.close()
    assert re.fullmatch(r"FAIL backups\[shop\]: restore failed: psql exited 2: .*database \"opsproof_drill_\w+\" "
                        r"does not exist, expected the backup restored without error", finding(the_drill, "restore")), \
        finding(the_drill, "restore")
    assert result.ok is False
    nothing_left(besides=other_server.cluster.folder)


def test_a_teardown_that_cannot_clean_names_what_it_left(sandbox: SandboxHelper, shop: str, tmp_path: Path,
                                                         other_server: OtherServer) -> None:
    """The scratch server goes away before teardown: its database cannot be dropped. Teardown fails naming the
    database and the reason, and still removes the drill's working folder."""
    take_postgres(shop, tmp_path, "shop_*.dump")
    inv = loads(inventory_text(sandbox, shop, directory=str(tmp_path), pattern="shop_*.dump",
                               scratch={"dsn": other_server.dsn}))
    the_drill = open_drill(inv, "shop", tmp_path / "evidence")
    for name in PHASES[:-1]:
        the_drill.phase(name)
    assert the_drill.records["verify"].result.ok, the_drill.summary()
    other_server.cluster.stop()
    the_drill.close()
    assert re.fullmatch(r"FAIL \S+: left behind: database opsproof_drill_\w+ on the scratch server "
                        r"\(stopping the scratch: OperationalError: .+\), expected nothing left behind",
                        finding(the_drill, "teardown")), finding(the_drill, "teardown")
    assert not the_drill.folder.exists()
    nothing_left(besides=other_server.cluster.folder)


# --- Redis --------------------------------------------------------------------------------------------------------

@pytest.fixture
def cache_keys(sandbox: SandboxHelper) -> Any:
    client = sandbox.redis()
    keys = [f"drill:key:{i}" for i in range(40)]
    client.mset({k: f"value {i}" for i, k in enumerate(keys)})
    yield client, keys
    client.delete(*keys)


def test_a_redis_drill_restores_the_rdb(sandbox: SandboxHelper, cache_keys: Any, tmp_path: Path) -> None:
    client, _ = cache_keys
    total = client.dbsize()
    the_drill = drill_redis(sandbox, tmp_path, fresh=True)
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    assert f"{total:,} keys restored = the RDB's unexpired keys (file's key count = manifest)" in finding(
        the_drill, "verify")
    nothing_left()


def drill_redis(sandbox: SandboxHelper, tmp_path: Path, **entry: Any) -> Drill:
    data = {"environment": "drill-test", "redis": {"cache": {"url": sandbox.box.redis_url(), "timeout_s": 3}},
            "backups": {"cache": {"redis": "cache", "rpo": "1h", "rto": "1m", "sample": 200, **entry}}}
    the_drill = open_drill(loads(yaml.safe_dump(data)), "cache", tmp_path / "evidence")
    the_drill.run()
    return the_drill


def test_a_corrupted_rdb_fails_integrity(sandbox: SandboxHelper, cache_keys: Any, tmp_path: Path) -> None:
    path, _ = take_redis(sandbox.box.redis_url(), tmp_path, "cache_*.rdb")
    manifest_path(path).unlink()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    the_drill = drill_redis(sandbox, tmp_path, directory=str(tmp_path), pattern="cache_*.rdb")
    assert finding(the_drill, "integrity").startswith(f"FAIL backups[cache]: redis-check-rdb rejects {path.name}: ")
    assert verdicts(the_drill)["restore"] == "no-data"


def test_redis_values_changed_since_the_backup_fail_the_sample(sandbox: SandboxHelper, cache_keys: Any,
                                                               tmp_path: Path) -> None:
    client, keys = cache_keys
    take_redis(sandbox.box.redis_url(), tmp_path, "cache_*.rdb")
    client.mset({k: "changed" for k in keys})
    the_drill = drill_redis(sandbox, tmp_path, directory=str(tmp_path), pattern="cache_*.rdb")
    text = finding(the_drill, "verify")
    assert text.startswith("FAIL backups[cache]: only ")
    assert f"({len(keys)} changed, 0 gone since the backup)" in text


def test_a_redis_key_count_unlike_the_manifest_fails(sandbox: SandboxHelper, cache_keys: Any,
                                                     tmp_path: Path) -> None:
    path, manifest = take_redis(sandbox.box.redis_url(), tmp_path, "cache_*.rdb")
    manifest["keys_in_file"] += 5  # the manifest of another snapshot, or a file that lost keys
    manifest_path(path).write_text(json.dumps(manifest))
    the_drill = drill_redis(sandbox, tmp_path, directory=str(tmp_path), pattern="cache_*.rdb")
    assert finding(the_drill, "verify").startswith(
        f"FAIL backups[cache]: the RDB holds {manifest['keys_in_file'] - 5:,} keys, the manifest "
        f"{manifest['keys_in_file']:,}")


# --- interrupted drills leave nothing behind -------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupting_a_drill_mid_restore_leaves_nothing(sandbox: SandboxHelper, tmp_path: Path, sig: int) -> None:
    dsn = _database(sandbox, f"slow_{int(sig)}", SLOW_SQL)
    take_postgres(dsn, tmp_path / "backups", "slow_*.dump")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(inventory_text(sandbox, dsn, directory=str(tmp_path / "backups"), pattern="slow_*.dump"))
    out = tmp_path / "out"
    suite = subprocess.Popen(
        [sys.executable, "-m", "pytest", "checks/dr_drill", "--inventory", str(inventory), "-p", "no:cacheprovider",
         "--opsproof-out", str(out), "-q"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible)
    try:
        wait_for(lambda: _restoring(suite.pid), 60, "pg_restore never started")
        suite.send_signal(sig)
        output, _ = suite.communicate(timeout=60)
    finally:
        if suite.poll() is None:
            suite.kill()
    assert suite.returncode != 0
    nothing_left(suite.pid)
    [evidence] = (out / "drills").glob("shop-*.json")
    phases = {p["phase"]: p["verdict"] for p in json.loads(evidence.read_text())["phases"]}
    assert phases["teardown"] == "pass", output
    assert "restore" not in phases or phases["restore"] != "pass"


def _restoring(pid: int) -> bool:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _cmdline_has(proc, "pg_restore"):
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                return True
    return False


def test_a_killed_drills_leftovers_are_swept_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / f"{PREFIX}{dead.stdout.strip()}-abc"
    (folder / "pg-data").mkdir(parents=True)
    mine = tmp_path / f"{PREFIX}{os.getpid()}-abc"
    mine.mkdir()
    assert sweep(tmp_path) == [folder]
    assert not folder.exists()
    assert mine.exists()


# --- the command line and the inventory ------------------------------------------------------------------------------

def test_opsproof_drill_on_the_sandbox_inventory(sandbox: SandboxHelper, tmp_path: Path) -> None:
    """`opsproof backup` then `opsproof drill`, as cron runs them, on the sandbox's own inventory."""
    cli = [sys.executable, "-m", "opsproof.cli"]
    backup = subprocess.run([*cli, "backup", "--inventory", str(sandbox.inventory), "--target", "app"],
                            capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    assert "backups[app]: " in backup.stdout
    assert "3 tables" in backup.stdout
    done = subprocess.run([*cli, "drill", "--inventory", str(sandbox.inventory), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DR drill backups[app] (postgres) — PASS" in done.stdout
    assert "DR drill backups[cache] (redis) — PASS" in done.stdout
    assert len(list((tmp_path / "drills").glob("*.json"))) == 2
    for secret in sandbox.box.meta["passwords"].values():
        assert secret not in done.stdout + backup.stdout


def test_opsproof_drill_names_an_unknown_entry(sandbox: SandboxHelper) -> None:
    done = subprocess.run([sys.executable, "-m", "opsproof.cli", "drill", "--inventory", str(sandbox.inventory),
                           "--target", "nope"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no backups entry 'nope' with postgres: or redis: (have: app, cache). Fix: pass one of them with " \
           "--target" in done.stderr


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{directory: /b, max_age_h: 24}", "backups.db.max_age_h: unknown key 'max_age_h'. Fix: it is now 'rpo:', "
                                           "a duration — write max_age_h: 24 as rpo: 24h."),
        ("{directory: /b, rpo: 4 hours}", "backups.db.rpo: '4 hours' is not a duration (write it like 90s, 15m, 4h "
                                          "or 1d)"),
        ("{postgres: main, redis: cache, directory: /b}", "backups.db: gives both postgres: and redis:. Fix: one "
                                                          "entry per datastore; split it in two."),
        ("{postgres: main}", "backups.db: no directory (where the backups are). Fix: add directory: /var/backups/…, "
                             "s3: {bucket: …} for backups in object storage, supabase: {project_ref: …} for a "
                             "Supabase project's managed backups, or fresh: true to take a backup at the start of "
                             "each drill."),
        ("{fresh: true}", "backups.db: fresh: true without a datastore to back up. Fix: add postgres: NAME or "
                          "redis: NAME."),
        ("{postgres: other, fresh: true}", "backups.db.postgres: no postgres entry named 'other'. Fix: name an "
                                           "existing entry."),
    ],
    ids=["renamed", "duration", "both", "no-directory", "fresh-alone", "unknown-ref"],
)
def test_backups_entries_are_validated(entry: str, message: str) -> None:
    from opsproof.inventory import InventoryError

    text = f"environment: t\npostgres:\n  main: {{dsn: 'postgresql://a@b/c'}}\nbackups:\n  db: {entry}\n"
    with pytest.raises(InventoryError) as info:
        loads(text, "inv.yaml")
    assert f"inv.yaml:5: {message}" in str(info.value)


def test_durations() -> None:
    from opsproof.inventory import human_duration

    inv = loads("environment: t\nbackups:\n  a: {directory: /b, rpo: 15m, rto: 1.5h}\n  b: {directory: /b, rpo: 90}\n")
    assert (inv.backups["a"].rpo, inv.backups["a"].rto, inv.backups["b"].rpo) == (900, 5400, 90)
    assert [human_duration(s) for s in (86400, 3600 * 4, 900, 90, 0.05)] == ["1d", "4h", "15m", "90s", "0.05s"]
