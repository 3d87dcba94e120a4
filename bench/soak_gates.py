"""False-alarm rate of the gates on a healthy system (run by hand: `.venv/bin/python bench/soak_gates.py 20`).

Starts a sandbox of its own (or uses `--inventory` of one you started), keeps steady user traffic on the app for
the whole soak — as production has — and runs, N times in a row:

- the post-deploy gate (`pytest checks/post_deploy`, rollout step deselected: no cluster here) after a no-op
  "deploy" (the same release posted again), its SLO window the `--window` seconds since;
- the post-maintenance checklist: `opsproof baseline capture`, a window of `--window` seconds in which nothing is
  changed, then `pytest checks/post_maintenance --baseline …`.

Nothing changes, so every run must pass: any failure is a false alarm. It prints each failing check with its
message and writes `bench/soak_gates_results.json`. Exit 0 only with zero false alarms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from support import SuiteRun, run_suite, traffic  # noqa: E402  (the tests' own runner and traffic generator)

from opsproof.sandbox.control import Sandbox  # noqa: E402


def steady_traffic(app: str, stop: threading.Event, concurrency: int) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            traffic(app, 1, concurrency=concurrency)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()


def findings(suite: str, i: int, run: SuiteRun) -> list[dict[str, Any]]:
    """Every failed test of a run: its check and finding when it recorded one, else the JUnit failure message."""
    found = [{"round": i, "suite": suite, "check": f"{r['check']}@{r['target']}", "message": r["observed"]}
             for r in run.records if r["outcome"] == "failed"]
    if run.code != 0 and not found:
        root = ElementTree.fromstring(run.junit) if run.junit else None
        found = [{"round": i, "suite": suite, "check": case.get("name", "?"),
                  "message": (failure.text or failure.get("message") or "")[-1500:]}
                 for case in (root.iter("testcase") if root is not None else ())
                 for failure in case if failure.tag in ("failure", "error")]
        found = found or [{"round": i, "suite": suite, "check": f"(exit {run.code})", "message": run.output[-1500:]}]
    return found


def one_round(i: int, inventory: Path, app: str, out: Path, window_s: float) -> list[dict[str, Any]]:
    alarms: list[dict[str, Any]] = []
    deployed = time.time()
    httpx.post(app + "/admin/release", json={"version": "v1", "error_rate": 0, "latency_ms": 0},
               timeout=5).raise_for_status()
    time.sleep(window_s)  # the deploy's SLO window: steady traffic, nothing changed
    gate = run_suite(inventory, out / f"gate-{i}", "--deselect", "checks/post_deploy/test_01_rollout.py",
                     suite="checks/post_deploy", env={"OPSPROOF_DEPLOYED_AT": iso(deployed)}, timeout=300)
    alarms += findings("post_deploy", i, gate)
    since = {"OPSPROOF_DEPLOYED_AT": f"-{window_s:g}s"}  # both windows: the last window_s seconds of traffic
    env = {**os.environ, **since}
    capture = subprocess.run([sys.executable, "-m", "opsproof.cli", "baseline", "capture", "--label", f"soak-{i}",
                              "--inventory", str(inventory), "--out", str(out)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    if capture.returncode != 0:
        alarms.append({"round": i, "suite": "baseline capture", "check": "(exit)", "message": capture.stderr})
        return alarms
    time.sleep(window_s)  # the maintenance window: nothing is done
    checklist = run_suite(inventory, out / f"maint-{i}", "--baseline", str(out / "baselines" / f"soak-{i}.json"),
                          suite="checks/post_maintenance", env=since, timeout=300)
    return alarms + findings("post_maintenance", i, checklist)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", type=int, nargs="?", default=20)
    parser.add_argument("--window", type=float, default=12, help="seconds of each SLO / maintenance window")
    parser.add_argument("--concurrency", type=int, default=2, help="clients of the steady traffic")
    parser.add_argument("--inventory", type=Path, help="a sandbox you started (default: one of its own)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="opsproof-soak-", dir="/tmp"))
    state.chmod(0o755)
    box = None if args.inventory else Sandbox(state / "sandbox", ephemeral=True)
    stop = threading.Event()
    steady: threading.Thread | None = None
    alarms: list[dict[str, Any]] = []
    started = time.time()
    try:
        inventory = args.inventory or box.up()  # type: ignore[union-attr]
        app = next(iter(__import__("yaml").safe_load(Path(inventory).read_text())["http"].values()))["url"]
        steady = steady_traffic(app, stop, args.concurrency)
        time.sleep(args.window)  # the first windows hold traffic already
        for i in range(args.rounds):
            found = one_round(i, Path(inventory), app, state, args.window)
            alarms += found
            verdict = "false alarm: " + ", ".join(a["check"] for a in found) if found else "pass"
            print(f"round {i + 1}/{args.rounds}: {verdict}", flush=True)
    finally:
        stop.set()
        if steady is not None:
            steady.join(15)  # its last second of traffic ends before the sandbox goes down
        if box is not None:
            box.down()
    result = {"date": iso(started), "rounds": args.rounds, "window_s": args.window, "gate_runs": 2 * args.rounds,
              "false_alarms": len(alarms), "alarms": alarms, "minutes": round((time.time() - started) / 60, 1),
              "load_average": os.getloadavg()}
    (REPO / "bench" / "soak_gates_results.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{2 * args.rounds} gate runs ({args.rounds} post-deploy, {args.rounds} post-maintenance) on a healthy "
          f"sandbox: {len(alarms)} false alarm(s)")
    for a in alarms:
        print(f"  round {a['round']} {a['suite']}: {a['check']}: {a['message']}")
    return 0 if not alarms else 1


if __name__ == "__main__":
    sys.exit(main())
