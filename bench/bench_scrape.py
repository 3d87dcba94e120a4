"""Benchmark: how long the sandbox app's /metrics takes while its PostgreSQL is frozen (SIGSTOP), against
Prometheus' scrape timeout (900 ms in the sandbox). tests/integration/test_app.py asserts *that* a scrape does not
wait on the database (scrapes answer while a database request sent before them is still waiting); this measures
*how long* a scrape took, which depends on the machine's load.

Run by hand from the repository root:  .venv/bin/python bench/bench_scrape.py  [--scrapes 50] [--bound 0.9]

Starts the same stack as the test (PostgreSQL 15, Redis, the app as a subprocess, in a temporary directory; as root
PostgreSQL runs as the postgres user), takes --scrapes scrapes healthy and --scrapes with PostgreSQL frozen, and
prints the median and slowest of each. The slowest frozen scrape over --bound seconds is a FAIL (exit 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from test_app import Stack, freeze, resume, running_stack  # noqa: E402  (the stack the integration test uses)


def scrape_times(stack: Stack, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        stack.http.get("/metrics").raise_for_status()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=50, help="scrapes per phase")
    parser.add_argument("--bound", type=float, default=0.9, help="a frozen-phase scrape slower than this is a FAIL")
    args = parser.parse_args()
    with running_stack("opsproof-bench-scrape-") as stack:
        phases = {"healthy": scrape_times(stack, args.scrapes)}
        pids = freeze(stack.postgres_pids())
        try:
            phases["postgres frozen"] = scrape_times(stack, args.scrapes)
        finally:
            resume(pids)
    for phase, times in phases.items():
        print(f"{phase:16} median {statistics.median(times) * 1000:7.1f} ms   slowest {max(times) * 1000:7.1f} ms")
    slowest = max(phases["postgres frozen"])
    verdict = "PASS" if slowest <= args.bound else "FAIL"
    print(f"{verdict}: the slowest scrape with PostgreSQL frozen took {slowest:.3f} s (bound {args.bound:g} s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
