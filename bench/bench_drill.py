"""Benchmark: a PostgreSQL DR drill (restore + verify) against a bare `pg_restore -j 2` of the same ≥ 500 MB dump.

Run by hand from the repository root:  .venv/bin/python bench/bench_drill.py  [--rounds 2] [--orders 5500000]

1. A source cluster (a `ScratchPostgres`, the same throwaway local PostgreSQL the drill restores into) is filled
   server-side (`INSERT … SELECT … FROM generate_series`, two sessions at once) with `customers`, `orders` (jsonb
   payload carrying hashes, so the dump does not compress away) and `order_events`, then PKs, FKs and secondary
   indexes are built.
2. `opsproof.drill.backup.take_postgres` takes the custom-format dump (default compression) and its manifest.
   The source is stopped afterwards, so both contenders have the machine to themselves.
3. Rounds alternate (bare then drill, then drill then bare, …):
   bare   a fresh `ScratchPostgres(workdir(), major, jobs=2)` (started untimed), then exactly
          `pg_restore --jobs=2 --no-owner --no-privileges --exit-on-error --dbname CONNINFO DUMP`, timed;
   drill  `open_drill(inventory, name, evidence_dir).run()`; the figures are the phases' own durations
          (`drill.records[phase].duration_s`).
   Throughput = dump bytes / restore seconds. Targets: drill restore ≥ 90 % of the bare throughput (medians), and
   verify ≤ 50 % of the drill's restore time.
4. `--diagnose` (default on) restores once more into a bare cluster and times, table by table, the checksum query
   the verify phase runs (first scan after the restore, then a second one), its EXPLAIN, and pg_amcheck.

Results go to bench/drill_results.json. Everything it made (clusters, /tmp/opsproof-drill-* folders, the dump) is
removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import opsproof.drill.postgres  # noqa: E402, F401  (imported now: the whole run measures one version of the code)
from opsproof.drill import open_drill, pgdata  # noqa: E402
from opsproof.drill.backup import take_postgres  # noqa: E402
from opsproof.drill.scratch import ScratchPostgres, workdir  # noqa: E402
from opsproof.drill.tools import pg_tool  # noqa: E402
from opsproof.inventory import loads  # noqa: E402

MAJOR = 15
JOBS = 2
MIN_DUMP_BYTES = 500 * 1000 * 1000
TARGET_RATIO = 0.90  # drill restore throughput / bare restore throughput, at least
TARGET_VERIFY = 0.50  # verify seconds / drill restore seconds, at most

SCHEMA = """
CREATE TABLE customers (
    id bigint NOT NULL, name text NOT NULL, email text NOT NULL, country text NOT NULL,
    created_at timestamptz NOT NULL);
CREATE TABLE orders (
    id bigint NOT NULL, customer_id bigint NOT NULL, status text NOT NULL, amount numeric(12, 2) NOT NULL,
    created_at timestamptz NOT NULL, payload jsonb NOT NULL);
CREATE TABLE order_events (
    id bigint NOT NULL, order_id bigint NOT NULL, kind text NOT NULL, at timestamptz NOT NULL, detail text);
"""

CUSTOMERS = """
INSERT INTO customers
SELECT i, 'Customer ' || i, 'user' || i || '@example.' || (ARRAY['com', 'org', 'net'])[1 + i %% 3],
       (ARRAY['FR', 'DE', 'US', 'GB', 'ES', 'IT', 'NL', 'PL'])[1 + i %% 8],
       timestamptz '2020-01-01 00:00:00+00' + (i %% 1000000) * interval '97 seconds'
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
"""

ORDERS = """
INSERT INTO orders
SELECT i, 1 + abs(hashint8(i)::bigint) %% %(customers)s,
       (ARRAY['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'])[1 + abs(hashint8(i + 1)::bigint) %% 6],
       (abs(hashint8(i + 2)::bigint) %% 10000000) / 100.0,
       timestamptz '2021-01-01 00:00:00+00' + i * interval '3 seconds',
       jsonb_build_object('sku', 'SKU-' || abs(hashint8(i + 3)::bigint) %% 50000,
                          'qty', 1 + abs(hashint8(i + 4)::bigint) %% 9,
                          'channel', (ARRAY['web', 'app', 'pos', 'api'])[1 + i %% 4],
                          'token', encode(sha256(int8send(i)), 'base64'), 'ref', md5(i::text))
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
"""

EVENTS = """
INSERT INTO order_events
SELECT i, 1 + abs(hashint8(-i)::bigint) %% %(orders)s,
       (ARRAY['created', 'paid', 'picked', 'shipped', 'delivered', 'note'])[1 + i %% 6],
       timestamptz '2021-01-01 00:00:00+00' + i * interval '2 seconds',
       CASE WHEN i %% 3 = 0 THEN NULL ELSE encode(sha256(int8send(-i)), 'base64') END
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
"""

CONSTRAINTS = (
    "ALTER TABLE customers ADD PRIMARY KEY (id)",
    "ALTER TABLE orders ADD PRIMARY KEY (id)",
    "ALTER TABLE order_events ADD PRIMARY KEY (id)",
    "CREATE UNIQUE INDEX customers_email_key ON customers (email)",
    "CREATE INDEX orders_customer_id_idx ON orders (customer_id)",
    "CREATE INDEX orders_created_at_idx ON orders (created_at)",
    "CREATE INDEX order_events_order_id_idx ON order_events (order_id)",
    "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id)",
    "ALTER TABLE order_events ADD CONSTRAINT order_events_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id)",
)


def _parallel(conninfo: str, statement: str, total: int, params: dict[str, Any], sessions: int = JOBS) -> None:
    """Run an INSERT … generate_series(lo, hi) over ``sessions`` connections, each with a slice of 1..total."""
    errors: list[BaseException] = []
    step = (total + sessions - 1) // sessions

    def work(lo: int, hi: int) -> None:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(statement, {**params, "lo": lo, "hi": hi})
        except BaseException as e:  # re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(lo, min(total, lo + step - 1)))
               for lo in range(1, total + 1, step)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def generate(conninfo: str, orders: int) -> dict[str, Any]:
    customers, events = max(1000, orders // 20), orders // 2
    t0 = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _parallel(conninfo, CUSTOMERS, customers, {})
    _parallel(conninfo, ORDERS, orders, {"customers": customers})
    _parallel(conninfo, EVENTS, events, {"orders": orders})
    loaded = time.perf_counter() - t0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        for statement in CONSTRAINTS:
            conn.execute(statement)
        conn.execute("VACUUM (ANALYZE, FREEZE)")
        size = int((conn.execute("SELECT pg_database_size(current_database())").fetchone() or [0])[0])
    return {"rows": {"customers": customers, "orders": orders, "order_events": events},
            "total_rows": customers + orders + events, "database_bytes": size,
            "load_s": round(loaded, 2), "total_s": round(time.perf_counter() - t0, 2)}


def pg_restore_argv(conninfo: str, dump: Path) -> list[str]:
    return [pg_tool("pg_restore", MAJOR, at_least=True), f"--jobs={JOBS}", "--no-owner", "--no-privileges",
            "--exit-on-error", "--dbname", conninfo, str(dump)]


def bare_restore(dump: Path, made: list[Path], keep: bool = False) -> tuple[dict[str, Any], ScratchPostgres | None]:
    folder = workdir()
    made.append(folder)
    scratch = ScratchPostgres(folder, MAJOR, jobs=JOBS)
    try:
        t0 = time.perf_counter()
        scratch.start()
        provision = time.perf_counter() - t0
        t0 = time.perf_counter()
        done = subprocess.run(pg_restore_argv(scratch.conninfo, dump), capture_output=True, text=True, timeout=7200)
        restore = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"bare pg_restore failed (exit {done.returncode}): {done.stderr[-800:]}")
    except BaseException:
        scratch.stop()
        raise
    if not keep:
        scratch.stop()
        shutil.rmtree(folder, ignore_errors=True)
    size = dump.stat().st_size
    return ({"provision_s": round(provision, 3), "restore_s": round(restore, 3),
             "mb_per_s": round(size / 1e6 / restore, 1), "loadavg_1m_after": round(os.getloadavg()[0], 2)},
            scratch if keep else None)


def drill_restore(inventory_text: str, evidence: Path) -> dict[str, Any]:
    inventory = loads(inventory_text)
    drill = open_drill(inventory, "big", evidence)
    results = drill.run()
    failed = [f"{r.check}: {r.observed}" for r in results if r.ok is False]
    if failed:
        raise RuntimeError("the drill failed: " + "; ".join(failed))
    rec = drill.records
    size = int(rec["found"].result.evidence["size_bytes"])
    restore = rec["restore"].duration_s
    verify = rec["verify"].duration_s
    return {"phases_s": {p: round(r.duration_s, 3) for p, r in rec.items()},
            "provision_s": round(rec["provision"].duration_s, 3), "restore_s": round(restore, 3),
            "pg_restore_s": rec["restore"].result.evidence.get("duration_s"),
            "verify_s": round(verify, 3), "mb_per_s": round(size / 1e6 / restore, 1),
            "verify_over_restore": round(verify / restore, 3),
            "verify_timings_s": rec["verify"].result.evidence.get("timings_s"),
            "table_rows": {t: d["rows"] for t, d in rec["verify"].result.evidence.get("tables", {}).items()},
            "loadavg_1m_after": round(os.getloadavg()[0], 2)}


def diagnose(scratch: ScratchPostgres, tables: list[str]) -> dict[str, Any]:
    """Where verify's time goes, on a cluster fresh from a bare restore (like the drill's at its verify phase)."""
    out: dict[str, Any] = {"checksum_first_scan_s": {}, "checksum_second_scan_s": {}, "checksum_serial_s": {},
                           "count_only_s": {}, "explain": {}}
    query = "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM ONLY {} AS t"
    with scratch.connect() as conn:
        pgdata.pin_session(conn)
        sizes = conn.execute("SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
                             [[t.split(".")[1] for t in tables]]).fetchall()
        out["heap_bytes"] = {name: int(b) for name, b in sizes}
        for table in tables:
            ident = sql.Identifier(*table.split("."))
            q = sql.SQL(query).format(ident)
            for key in ("checksum_first_scan_s", "checksum_second_scan_s"):
                t0 = time.perf_counter()
                conn.execute(q).fetchone()
                out[key][table] = round(time.perf_counter() - t0, 3)
            plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + q).fetchall()
            out["explain"][table] = [r[0] for r in plan]
            conn.execute("SET max_parallel_workers_per_gather = 0")
            t0 = time.perf_counter()
            conn.execute(q).fetchone()
            out["checksum_serial_s"][table] = round(time.perf_counter() - t0, 3)
            conn.execute("RESET max_parallel_workers_per_gather")
            t0 = time.perf_counter()
            conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(ident)).fetchone()
            out["count_only_s"][table] = round(time.perf_counter() - t0, 3)
        workers = conn.execute("SELECT name, setting FROM pg_settings WHERE name IN ('max_parallel_workers_per_gather',"
                               " 'max_parallel_workers', 'max_worker_processes', 'min_parallel_table_scan_size',"
                               " 'parallel_setup_cost', 'parallel_tuple_cost')").fetchall()
        out["settings"] = dict(workers)
    params = conninfo_to_dict(scratch.conninfo)
    base = [pg_tool("pg_amcheck", MAJOR, at_least=True), "--install-missing", f"--jobs={JOBS}", "--index=*.*",
            "--no-strict-names", "-h", str(params["host"]), "-p", str(params["port"]), "-U", "postgres",
            str(params["dbname"])]
    t0 = time.perf_counter()
    done = subprocess.run(base, capture_output=True, text=True, timeout=3600)
    out["pg_amcheck_s"] = round(time.perf_counter() - t0, 3)
    out["pg_amcheck_exit"] = done.returncode
    with scratch.connect() as conn:
        t0 = time.perf_counter()
        conn.execute("SELECT bt_index_check(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                     "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' "
                     "AND c.relnamespace = 'public'::regnamespace").fetchall()
        out["bt_index_check_serial_s"] = round(time.perf_counter() - t0, 3)
    return out


def machine() -> dict[str, Any]:
    version = subprocess.run([pg_tool("postgres", MAJOR), "--version"], capture_output=True, text=True).stdout
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "postgres": version.strip(), "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                                         / 2**30, 1),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def code_version() -> str:
    """A digest of opsproof/drill/*.py (the code under test), to tell whether it changed during the run."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "opsproof" / "drill").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def med(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in runs), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="bare and drill restores each (default 2)")
    parser.add_argument("--orders", type=int, default=5_500_000, help="rows in orders (customers: /20, events: /2)")
    parser.add_argument("--min-dump-mb", type=float, default=MIN_DUMP_BYTES / 1e6)
    parser.add_argument("--no-diagnose", action="store_true", help="skip the verify breakdown on a bare restore")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "drill_results.json")
    args = parser.parse_args()

    began = time.perf_counter()
    info = machine()
    info["opsproof_drill_sha256_start"] = code_version()
    made: list[Path] = []
    base = Path(tempfile.mkdtemp(prefix="opsproof-bench-drill-", dir="/tmp"))
    base.chmod(0o755)
    source: ScratchPostgres | None = None
    kept: ScratchPostgres | None = None
    try:
        # 1. the source and its data
        folder = workdir()
        made.append(folder)
        source = ScratchPostgres(folder, MAJOR, jobs=JOBS)
        source.start()
        print(f"source: {source.where}; generating {args.orders:,} orders …", flush=True)
        data = generate(source.conninfo, args.orders)
        print(f"  generated {data['total_rows']:,} rows ({data['database_bytes'] / 1e6:,.0f} MB on disk) in "
              f"{data['total_s']:.1f} s (load {data['load_s']:.1f} s)", flush=True)

        # 2. the backup, through opsproof
        dumps = base / "dumps"
        t0 = time.perf_counter()
        dump, manifest = take_postgres(source.conninfo, dumps, "big_*.dump", JOBS, "postgres[main]", 10)
        backup_s = time.perf_counter() - t0
        size = dump.stat().st_size
        print(f"  take_postgres: {dump.name} {size / 1e6:,.1f} MB in {backup_s:.1f} s", flush=True)
        source_dsn = source.conninfo
        source.stop()
        shutil.rmtree(source.folder, ignore_errors=True)
        source = None
        if size < args.min_dump_mb * 1e6:
            print(f"FAIL  the dump is {size / 1e6:.1f} MB, below {args.min_dump_mb:g} MB: raise --orders")
            return 2

        inventory_text = json.dumps({
            "environment": "bench",
            "postgres": {"main": {"dsn": source_dsn}},  # stopped by now: the drill restores the dump on disk
            "backups": {"big": {"postgres": "main", "directory": str(dumps), "pattern": "big_*.dump",
                                "rpo": "24h", "rto": "1h", "scratch": {"jobs": JOBS}}}})

        # 3. alternating rounds
        bare: list[dict[str, Any]] = []
        drill: list[dict[str, Any]] = []
        for i in range(args.rounds):
            for kind in (("bare", "drill") if i % 2 == 0 else ("drill", "bare")):
                if kind == "bare":
                    run, _ = bare_restore(dump, made)
                    bare.append(run)
                    print(f"  round {i + 1} bare : pg_restore {run['restore_s']:7.2f} s  {run['mb_per_s']:6.1f} MB/s",
                          flush=True)
                else:
                    run = drill_restore(inventory_text, base / "evidence")
                    drill.append(run)
                    print(f"  round {i + 1} drill: restore {run['restore_s']:7.2f} s  {run['mb_per_s']:6.1f} MB/s  "
                          f"verify {run['verify_s']:6.2f} s ({run['verify_over_restore']:.0%})  "
                          f"{run['verify_timings_s']}", flush=True)

        # 4. where verify's time goes
        diagnostics = None
        if not args.no_diagnose:
            run, kept = bare_restore(dump, made, keep=True)
            assert kept is not None
            print(f"  diagnose: bare restore {run['restore_s']:.2f} s; timing the checksum queries and pg_amcheck …",
                  flush=True)
            diagnostics = {"restore": run, **diagnose(kept, list(manifest["tables"]))}
            kept.stop()
            kept = None

        bare_s, drill_s = med(bare, "restore_s"), med(drill, "restore_s")
        verify_s = med(drill, "verify_s")
        bare_mb, drill_mb = round(size / 1e6 / bare_s, 1), round(size / 1e6 / drill_s, 1)
        ratio = round(drill_mb / bare_mb, 3)
        verify_ratio = round(verify_s / drill_s, 3)
        checks = {"dump_at_least_500MB": size >= MIN_DUMP_BYTES, "restore_ratio": ratio >= TARGET_RATIO,
                  "verify_ratio": verify_ratio <= TARGET_VERIFY}
        verdict = "PASS" if all(checks.values()) else "FAIL"
        wall = time.perf_counter() - began

        print()
        print(f"dump {dump.name}: {size / 1e6:,.1f} MB custom format, {data['total_rows']:,} rows "
              f"({', '.join(f'{t} {n:,}' for t, n in data['rows'].items())})")
        print(f"{'run':<10} {'restore s':>10} {'MB/s':>8} {'verify s':>9} {'verify/restore':>15} "
              f"{'provision s':>12}  verify breakdown (s)")
        for n, r in enumerate(bare, 1):
            print(f"{'bare ' + str(n):<10} {r['restore_s']:>10.2f} {r['mb_per_s']:>8.1f} {'':>9} {'':>15} "
                  f"{r['provision_s']:>12.2f}")
        for n, r in enumerate(drill, 1):
            print(f"{'drill ' + str(n):<10} {r['restore_s']:>10.2f} {r['mb_per_s']:>8.1f} {r['verify_s']:>9.2f} "
                  f"{r['verify_over_restore']:>15.1%} {r['provision_s']:>12.2f}  {r['verify_timings_s']}")
        print(f"{'median':<10} bare {bare_s:.2f} s ({bare_mb} MB/s), drill {drill_s:.2f} s ({drill_mb} MB/s), "
              f"verify {verify_s:.2f} s")
        if diagnostics:
            print(f"diagnose: checksum 1st scan {diagnostics['checksum_first_scan_s']}, "
                  f"2nd {diagnostics['checksum_second_scan_s']}, serial {diagnostics['checksum_serial_s']}, "
                  f"pg_amcheck {diagnostics['pg_amcheck_s']} s")
        print(f"{'PASS' if checks['dump_at_least_500MB'] else 'FAIL'}  dump {size / 1e6:,.1f} MB (target ≥ 500 MB)")
        print(f"{'PASS' if checks['restore_ratio'] else 'FAIL'}  drill restore throughput {ratio:.1%} of bare "
              f"pg_restore -j {JOBS} (target ≥ {TARGET_RATIO:.0%})")
        print(f"{'PASS' if checks['verify_ratio'] else 'FAIL'}  verify {verify_ratio:.1%} of the restore time "
              f"(target ≤ {TARGET_VERIFY:.0%})")
        print(f"total wall time {wall / 60:.1f} min")

        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        info["opsproof_drill_sha256_end"] = code_version()
        if info["opsproof_drill_sha256_end"] != info["opsproof_drill_sha256_start"]:
            print("note: opsproof/drill/*.py changed on disk during the run (the run used the version at its start)")
        args.out.write_text(json.dumps({
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": info,
            "config": {"rounds": args.rounds, "jobs": JOBS, "orders": args.orders,
                       "bare_command": "pg_restore --jobs=2 --no-owner --no-privileges --exit-on-error "
                                       "--dbname CONNINFO DUMP"},
            "data": data,
            "dump": {"file": dump.name, "size_bytes": size, "format": "custom (default compression)",
                     "take_postgres_s": round(backup_s, 2), "manifest_tables": manifest["tables"]},
            "bare": bare, "drill": drill,
            "median": {"bare_restore_s": bare_s, "bare_mb_per_s": bare_mb, "drill_restore_s": drill_s,
                       "drill_mb_per_s": drill_mb, "drill_verify_s": verify_s,
                       "drill_provision_s": med(drill, "provision_s"), "bare_provision_s": med(bare, "provision_s")},
            "restore_ratio": ratio, "verify_over_restore": verify_ratio,
            "targets": {"restore_ratio_min": TARGET_RATIO, "verify_over_restore_max": TARGET_VERIFY},
            "checks": checks, "verdict": verdict, "diagnostics": diagnostics, "wall_s": round(wall, 1),
        }, indent=2) + "\n")
        print(f"results: {args.out}")
        return 0 if verdict == "PASS" else 1
    finally:
        for cluster in (source, kept):
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.stop()
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
