"""Benchmark: how long each network check waits on a server that accepts connections and never answers, against
the timeout it is configured with (1 s). tests/integration/test_unreachable.py asserts *why* such a check fails
(its timeout, named); this measures *how long* that took, which depends on the machine's load.

Run by hand from the repository root:  .venv/bin/python bench/bench_unreachable.py  [--timeout 1] [--bound 6]

Each check runs once, on fresh clients, against one silent loopback listener (the kernel completes the handshake,
nothing is ever sent). Every check's wait is now its deadline — timeout_s for the whole check, PostgreSQL's
connect_timeout_s enforced by opsproof rather than psycopg's whole seconds (at least 2) — so a check over --bound
seconds (default 1.5 × the timeout; the Kubernetes client's waits are its own, per call) is a FAIL. Prints a table
and exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from test_unreachable import NETWORK, inventory_text  # noqa: E402  (the black-hole inventory the tests use)

from opsproof.inventory import loads  # noqa: E402
from opsproof.probes import Connections, Target  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=1.0, help="timeout_s of every target")
    parser.add_argument("--bound", type=float, default=None, help="a check waiting longer than this is a FAIL "
                        "(default 1.5 × --timeout)")
    args = parser.parse_args()
    args.bound = args.bound if args.bound is not None else 1.5 * args.timeout
    worst = 0.0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent, tempfile.TemporaryDirectory() as folder:
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)
        inv = loads(inventory_text(silent.getsockname()[1], args.timeout, Path(folder)), "blackhole.yaml")
        print(f"{'check':28} {'waited':>8}  finding")
        for spec in NETWORK:
            name, cfg = next(iter(inv.targets(spec.kind).items()))
            started = time.perf_counter()
            with Connections() as conns:
                result = spec(Target(spec.kind, name, cfg), conns)
            waited = time.perf_counter() - started
            worst = max(worst, waited)
            print(f"{spec.check:28} {waited:7.2f}s  {result.observed}")
    verdict = "PASS" if worst <= args.bound else "FAIL"
    print(f"{verdict}: the longest wait was {worst:.2f} s (timeout {args.timeout:g} s, bound {args.bound:g} s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
