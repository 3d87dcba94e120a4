"""Benchmark: a DR drill's restore into a PostgreSQL 17 container against a bare `pg_restore` into the same kind
of container, of the same PostgreSQL 15 dump (the cross-version drill of tests/integration/test_drill_container.py).

Run by hand from the repository root (needs dockerd and the two images; `make docker`):
    .venv/bin/python bench/bench_drill_container.py  [--rounds 3] [--orders 1500000]

1. A source cluster (a local `ScratchPostgres` of the host's PostgreSQL 15) is filled server-side with `customers`
   and `orders` (a jsonb payload of hashes, so the dump does not compress away), plus a PK, an FK and an index.
   `opsproof.drill.backup.take_postgres` takes the custom-format dump and its manifest; the source is stopped.
2. Rounds alternate (bare then drill, then drill then bare, …):
   bare   a fresh `ScratchContainer(workdir(), 17, None, dump, jobs=2)` (started untimed), then exactly
          `docker exec -i -u root CID /usr/lib/postgresql/17/bin/pg_restore --jobs=2 --no-owner --no-privileges
          --exit-on-error --dbname 'host=/tmp port=5432 user=postgres dbname=opsproof_restore' DUMP`, timed;
   drill  `open_drill(inventory, "bench", evidence_dir).run()` with `scratch: {kind: container, major: 17}`; the
          figure is its restore phase's own duration (`drill.records["restore"].duration_s`).
   Throughput = dump bytes / restore seconds. Target (issue 11): drill ≥ 90 % of the bare throughput (medians).

Results go to bench/drill_container_results.json. Every container it started carries `org.opsproof.bench=drill-
container` and is removed by that label at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsproof.containers.images import POSTGRES_17, docker_client, ensure_image  # noqa: E402
from opsproof.drill import open_drill  # noqa: E402
from opsproof.drill.backup import take_postgres  # noqa: E402
from opsproof.drill.container import ScratchContainer, remove_labelled  # noqa: E402
from opsproof.drill.scratch import ScratchPostgres, workdir  # noqa: E402
from opsproof.inventory import loads  # noqa: E402

LABEL = ("org.opsproof.bench", "drill-container")
JOBS = 2
FILL = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'user' || g || '@example.com', now() - g * interval '1 minute'
  FROM generate_series(1, 100000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  amount numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL, payload jsonb NOT NULL);
INSERT INTO orders SELECT g, 1 + g % 100000, (g * 7.31)::numeric % 1000, now() - g * interval '1 second',
  jsonb_build_object('h1', md5(g::text), 'h2', md5((g * 31)::text), 'h3', md5((g * 17)::text))
  FROM generate_series(1, %(orders)s) g;
CREATE INDEX orders_customer ON orders (customer_id);
ANALYZE;
"""


def bare(dump: Path, size: int) -> dict[str, Any]:
    folder = workdir()
    scratch = ScratchContainer(folder, 17, None, dump, jobs=JOBS)
    try:
        scratch.start()  # untimed: only the restore is compared
        tool, conninfo, env = scratch.tool("pg_restore", 15)
        argv = [*tool, f"--jobs={JOBS}", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname", conninfo,
                str(dump)]
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, timeout=3600, env={**os.environ, **env})
        elapsed = time.perf_counter() - t0
    finally:
        scratch.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return {"restore_s": round(elapsed, 3), "mb_per_s": round(size / 1e6 / elapsed, 2)}


def drill(inventory: str, evidence: Path, size: int) -> dict[str, Any]:
    the_drill = open_drill(loads(inventory), "bench", evidence)
    the_drill.run()
    verdicts = {name: r.result.verdict for name, r in the_drill.records.items()}
    if set(verdicts.values()) != {"pass"}:
        raise SystemExit(f"the drill did not pass:\n{the_drill.summary()}")
    restore = the_drill.records["restore"].duration_s
    return {"restore_s": round(restore, 3), "mb_per_s": round(size / 1e6 / restore, 2),
            "phases_s": {n: round(r.duration_s, 3) for n, r in the_drill.records.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=1_500_000)
    args = parser.parse_args()
    os.environ["OPSPROOF_CONTAINER_LABELS"] = "=".join(LABEL)
    client = docker_client()
    ensure_image(POSTGRES_17, client)
    work = workdir()
    source = ScratchPostgres(work, 15, JOBS)
    samples: dict[str, list[dict[str, Any]]] = {"bare": [], "drill": []}
    try:
        source.start()
        t0 = time.perf_counter()
        with source.connect() as conn:
            conn.execute(FILL.replace("%(orders)s", str(args.orders)))
        fill_s = time.perf_counter() - t0
        (work / "backups").mkdir(mode=0o700)
        dump, manifest = take_postgres(source.conninfo, work / "backups", "bench_*.dump", JOBS, "postgres[bench]")
        source.stop()
        size = dump.stat().st_size
        print(f"dump {size / 1e6:.0f} MB ({manifest['tables']['public.orders']['rows']:,} orders; fill {fill_s:.0f} s)")
        inventory = yaml.safe_dump({
            "environment": "bench", "postgres": {"bench": {"dsn": "postgresql://postgres@127.0.0.1:1/postgres"}},
            "backups": {"bench": {"postgres": "bench", "directory": str(dump.parent), "pattern": "bench_*.dump",
                                  "rpo": "1d", "rto": "1h", "scratch": {"kind": "container", "major": 17,
                                                                        "jobs": JOBS}}}})
        for i in range(args.rounds):
            order = ("bare", "drill") if i % 2 == 0 else ("drill", "bare")
            for who in order:
                figure = bare(dump, size) if who == "bare" else drill(inventory, work / "evidence", size)
                samples[who].append(figure)
                print(f"round {i + 1} {who:<5} restore {figure['restore_s']:7.2f} s  {figure['mb_per_s']:6.1f} MB/s")
    finally:
        source.stop()
        remove_labelled(dict([LABEL]), client)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(s["mb_per_s"] for s in v) for k, v in samples.items()}
    ratio = med["drill"] / med["bare"]
    verdict = "PASS" if ratio >= 0.9 else "FAIL"
    print(f"median throughput: bare {med['bare']:.1f} MB/s, drill {med['drill']:.1f} MB/s → {ratio:.1%} "
          f"(target ≥ 90 %) {verdict}")
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
              "python": platform.python_version(), "load_before_after": os.getloadavg(),
              "dump_bytes": size, "orders": args.orders, "rounds": args.rounds, "samples": samples,
              "median_mb_per_s": med, "ratio": round(ratio, 4), "verdict": verdict}
    (ROOT / "bench" / "drill_container_results.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
