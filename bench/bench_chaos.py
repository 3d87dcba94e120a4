"""Chaos harness figures, on a sandbox of its own.

1. Detection: every experiment in chaos/experiments, ``--rounds`` times: the detection time opsproof measures (the
   moment its poll saw the alert active in Alertmanager, minus the moment the fault was injected) against the
   truth, Alertmanager's ``startsAt`` (the evaluation at which Prometheus turned the alert firing) minus the same
   injection moment. Target: |measured − truth| ≤ 1 s.
2. Overhead: an experiment whose only waits are known (three actions that sleep 0.2 s each), run through
   ``opsproof.chaos.runner.run`` — loading, validation, Chaos Toolkit, the opsproof control, the audit after the
   rollbacks and the evidence file included — ``--repeat`` times. Overhead = wall time − the waits it was told to
   do. Target: < 100 ms per experiment.

Writes bench/chaos_results.json. Run: .venv/bin/python bench/bench_chaos.py [--rounds 3] [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from support import SandboxHelper  # noqa: E402

from opsproof.chaos import runner  # noqa: E402
from opsproof.sandbox.control import Sandbox  # noqa: E402

WAITS = [0.2, 0.2, 0.2]


def overhead_experiment() -> dict[str, Any]:
    return {
        "version": "1.0.0", "title": "harness overhead", "description": "only known waits",
        "controls": [runner.CONTROL],
        "method": [{"type": "action", "name": f"wait-{i}", "provider": {
            "type": "python", "module": "chaos_waits", "func": "wait", "arguments": {"seconds": s}}}
            for i, s in enumerate(WAITS)],
        "rollbacks": [{"type": "action", "name": "wait-rollback", "provider": {
            "type": "python", "module": "chaos_waits", "func": "wait", "arguments": {"seconds": 0.0}}}],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "chaos_results.json")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="opsproof-bench-chaos-", dir="/tmp"))
    state.chmod(0o755)  # the postgres user must reach the sandbox inside
    evidence = state / "evidence"
    box = Sandbox(state / "sandbox", ephemeral=True)
    helper = SandboxHelper(box)
    load_before = os.getloadavg()
    detections: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    overhead: list[dict[str, float]] = []
    try:
        box.up()
        experiment_file = state / "overhead.json"
        experiment_file.write_text(json.dumps(overhead_experiment()))
        for _ in range(args.repeat):
            helper.wait_healthy()
            outcome = runner.run(experiment_file, sandbox_dir=box.dir, out=evidence)
            assert outcome.ok, outcome.summary()
            overhead.append({"wall_s": outcome.wall_s, "told_s": sum(WAITS),
                             "overhead_ms": (outcome.wall_s - sum(WAITS)) * 1000})
        for rnd in range(args.rounds):
            for path in sorted((REPO / "chaos" / "experiments").glob("*.yaml")):
                helper.wait_healthy()
                outcome = runner.run(path, sandbox_dir=box.dir, out=evidence)
                print(outcome.summary(), flush=True)
                runs.append({"round": rnd, "experiment": path.stem, "ok": outcome.ok, "wall_s": outcome.wall_s,
                             "failures": outcome.failures, "recovery": outcome.evidence.get("recovery")})
                for d in outcome.evidence["detections"]:
                    detections.append({"round": rnd, "experiment": path.stem, "alert": d["alert"],
                                       "measured_s": d["detected_s"], "truth_s": d["truth_s"],
                                       "budget_s": d["budget_s"], "diff_s": round(d["detected_s"] - d["truth_s"], 3)})
    finally:
        box.down()
        shutil.rmtree(state, ignore_errors=True)
    diffs = [abs(d["diff_s"]) for d in detections]
    over = [o["overhead_ms"] for o in overhead]
    summary = {
        "detection_max_abs_diff_s": max(diffs) if diffs else None,
        "detection_median_abs_diff_s": statistics.median(diffs) if diffs else None,
        "detection_within_1s": bool(diffs) and max(diffs) <= 1.0,
        "overhead_median_ms": round(statistics.median(over), 1),
        "overhead_max_ms": round(max(over), 1),
        "overhead_under_100ms": statistics.median(over) < 100,
        "experiments_passed": sum(r["ok"] for r in runs), "experiments_run": len(runs),
    }
    result = {"summary": summary, "detections": detections, "runs": runs, "overhead": overhead,
              "nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
              "load_before": load_before, "load_after": os.getloadavg(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))
    print("PASS" if summary["detection_within_1s"] and summary["overhead_under_100ms"] else "FAIL")
    return 0 if summary["detection_within_1s"] and summary["overhead_under_100ms"] else 1


if __name__ == "__main__":
    sys.exit(main())
