"""The whole post-deploy gate on the sandbox, timed (run by hand: `.venv/bin/python bench/bench_gate.py`).

Starts a sandbox of its own, sends real traffic through the reference app around a simulated deploy, then times
`pytest checks/post_deploy` (rollout step deselected: there is no cluster in the sandbox) as a subprocess, median
of 3. The SLO window's own length (the traffic before and after the deploy) is not part of the figure.
Target (issue #3): under 30 s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from support import traffic  # noqa: E402  (the same traffic generator the tests use)

from opsproof.sandbox.control import Sandbox  # noqa: E402

TARGET_S = 30.0


def main() -> int:
    state = Path(tempfile.mkdtemp(prefix="opsproof-bench-gate-", dir="/tmp"))
    state.chmod(0o755)
    box = Sandbox(state / "sandbox", ephemeral=True)
    try:
        box.up()
        app = box.url("app")
        traffic(app, 6)
        time.sleep(1.2)
        deployed_at = dt.datetime.now(dt.UTC).isoformat()
        httpx.post(app + "/admin/release", json={"version": "v2", "error_rate": 0, "latency_ms": 0}, timeout=5)
        traffic(app, 6)
        time.sleep(2.5)
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "checks/post_deploy", "--inventory", str(box.inventory_path),
                 "-p", "no:cacheprovider", "-q", "--opsproof-record", str(state / "results.jsonl")],
                cwd=REPO, capture_output=True, text=True, timeout=300,
                env={**os.environ, "OPSPROOF_DEPLOYED_AT": deployed_at})
            samples.append(time.perf_counter() - start)
            if done.returncode != 0:
                print(done.stdout[-3000:])
                return 1
        median = statistics.median(samples)
        print(f"post-deploy gate on the sandbox: median {median:.2f} s of {[round(s, 2) for s in samples]} "
              f"({done.stdout.strip().splitlines()[-1]})")
        print(f"{'PASS' if median < TARGET_S else 'FAIL'}  whole post-deploy gate: {median:.2f} s (target < 30 s)")
        (REPO / "bench" / "gate_results.json").write_text(json.dumps(
            {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "samples_s": samples,
             "median_s": median, "target_s": TARGET_S}, indent=2) + "\n")
        return 0 if median < TARGET_S else 1
    finally:
        box.down()


if __name__ == "__main__":
    sys.exit(main())
