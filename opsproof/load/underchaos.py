"""Chaos under load: a chaos experiment run while a load scenario of the inventory drives the service, so its
evidence shows what users felt during the fault — failed requests, error ratio and p95 per second from the fault
to the recovery, and the error budget the fault burned — beside the alert timeline.

Replaces the game-day line "keep the load test running while you kill it, then read the dashboards". The load
starts first (Locust starting its users); the experiment runs in this thread (Chaos Toolkit's signal handlers);
when the experiment ends, Locust is told to stop (SIGTERM to its master: it stops its users and writes its record)
and its thresholds are judged over the whole run — they are the gate of what users may feel during this fault.
A load that ended before the experiment did measured only part of it: that fails, naming the fix.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsproof.chaos import runner as chaos_runner
from opsproof.inventory import Inventory, load
from opsproof.load import runner
from opsproof.load.thresholds import parse
from opsproof.shape import default_dir


@dataclass
class UnderLoad:
    outcome: chaos_runner.Outcome
    load: runner.LoadRun
    felt: dict[str, Any]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """The experiment passed, no threshold of the load failed, and the load lasted the whole experiment."""
        return self.outcome.ok and self.load.ok is not False and not self.problems

    def summary(self) -> str:
        f = self.felt
        lines = [self.outcome.summary(), f"  under load[{self.load.scenario}]:"]
        lines.append(f"    during the fault ({f['window_s']:g} s, fault → {f['until']}): {f['failures']:,} of "
                     f"{f['requests']:,} requests failed (error ratio {f['error_ratio']:.2%}), failing for "
                     f"{f['failing_s']} s, p95 up to {_ms(f['p95_max_ms'])}")
        if f["budget"]:
            b = f["budget"]
            lines.append(f"    error budget ({b['threshold']} of {b['run_requests']:,} requests = {b['allowed']:g} "
                         f"failed): {b['burned_percent']:g} % burned")
        lines += [f"    {line}" for line in self.load.summary().splitlines()]
        lines += [f"  failure: {p}" for p in self.problems]
        return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g} ms"


def run(path: Path | str, scenario: str, *, inventory: Path | str | None = None,
        sandbox_dir: Path | str | None = None, allow_destructive: bool = False,
        out: Path | str | None = None) -> UnderLoad:
    """Run experiment ``path`` with load scenario ``scenario`` of the same inventory in the background; raise
    LoadError when the load cannot start or measured nothing (the experiment then does not run)."""
    inv_path = Path(inventory) if inventory else Path(sandbox_dir or default_dir()) / "inventory.yaml"
    inv = load(inv_path)
    if scenario not in inv.load:
        raise runner.LoadError(f"load[{scenario}]: no such scenario in {inv_path} (its load: section has "
                               f"{', '.join(sorted(inv.load)) or 'none'}). Fix: name one of them, or add it")
    runner.refuse_production(inv, scenario, allow_destructive)
    from opsproof import output

    state: dict[str, Any] = {}
    started = threading.Event()

    def begun(at: float, process: subprocess.Popen[bytes]) -> None:
        state.update(started_at=at, process=process)
        started.set()

    def drive() -> None:
        try:
            state["run"] = runner.run(inv, scenario, output.root(out), allow_destructive=allow_destructive,
                                      on_started=begun)
        except BaseException as exc:
            state["error"] = exc
        finally:
            state["ended_at"] = time.time()
            started.set()

    thread = threading.Thread(target=drive, name=f"load-{scenario}", daemon=True)
    thread.start()
    started.wait(runner.STARTUP_GRACE_S + 5)
    if "process" not in state:
        _finish(state, thread, inv, scenario)
        raise state.get("error") or runner.LoadError(f"load[{scenario}]: Locust did not start its users")
    try:
        outcome = chaos_runner.run(path, inventory=inventory, sandbox_dir=sandbox_dir,
                                   allow_destructive=allow_destructive, out=out)
    except BaseException:  # interrupted (rolled back): no Locust process is left behind either
        runner.stop(state["process"])
        thread.join(runner.STARTUP_GRACE_S)
        raise
    experiment_ended = time.time()
    outlived = "ended_at" not in state
    load_run = _finish(state, thread, inv, scenario)
    problems = [] if outlived else [
        f"load[{scenario}]: the load ended {experiment_ended - state['ended_at']:.1f} s before the experiment did, "
        f"so users' view of the rest is missing. Fix: make its duration longer than the experiment "
        f"({experiment_ended - state['started_at']:.0f} s here)"]
    felt = users_felt(outcome.evidence.get("timeline", []), load_run.figures.get("series", []),
                      inv.load[scenario].scenario_thresholds, load_run.figures.get("total", {}))
    result = UnderLoad(outcome, load_run, felt, problems)
    _save(result, experiment_ended)
    return result


def _finish(state: dict[str, Any], thread: threading.Thread, inv: Inventory, scenario: str) -> runner.LoadRun:
    """Tell Locust's master to stop (it ends its users and workers and writes its record), wait for the run."""
    process = state.get("process")
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    thread.join(runner.STARTUP_GRACE_S + runner.STOP_TIMEOUT_S)
    if thread.is_alive() and process is not None:
        runner.stop(process)
        thread.join(10)
    if "error" in state:
        raise state["error"]
    if "run" not in state:
        raise runner.LoadError(f"load[{scenario}]: Locust did not stop within its bound; stopped it")
    load_run: runner.LoadRun = state["run"]
    return load_run


def users_felt(timeline: list[dict[str, Any]], series: list[dict[str, Any]], thresholds: list[str],
               total: dict[str, Any]) -> dict[str, Any]:
    """What the load's users felt from the fault to the recovery, at the series' one-second resolution: the
    window is every second from the one the fault was injected in to the one the service was seen recovered in
    (the experiment's end when it never was)."""
    fault = next((m["at"] for m in timeline if m["event"] == "fault_injected"), None)
    recovered = next((m["at"] for m in timeline if m["event"] == "recovered" and fault and m["at"] >= fault), None)
    end = recovered or max((m["at"] for m in timeline), default=fault)
    first, last = (int(fault), int(end)) if fault is not None and end is not None else (0, -1)
    rows = [r for r in series if first <= r["at"] <= last]
    requests, failures = sum(r["requests"] for r in rows), sum(r["failures"] for r in rows)
    failing = [r["at"] for r in rows if r["failures"]]
    p95s = [r["p95_ms"] for r in rows if r["p95_ms"] is not None]
    return {
        "fault_at": fault, "recovered_at": recovered, "until": "recovered" if recovered else "experiment end",
        "window_s": last - first + 1 if rows else 0, "requests": requests, "failures": failures,
        "error_ratio": failures / requests if requests else 0.0,
        "failing_s": failing[-1] - failing[0] + 1 if failing else 0,
        "p95_max_ms": max(p95s, default=None), "seconds": rows,
        "budget": _budget(thresholds, total),
    }


def _budget(thresholds: list[str], total: dict[str, Any]) -> dict[str, Any] | None:
    """The run's error budget by the scenario's own ``error_rate <`` threshold: that share of the run's requests
    may fail; how much of it the run's failures used (100 % = the threshold is breached)."""
    limit = next((t for t in map(parse, thresholds) if t.metric == "error_rate" and t.op in ("<", "<=")), None)
    requests = int(total.get("requests", 0))
    if limit is None or not requests:
        return None
    allowed = limit.bound * requests
    failures = int(total.get("failures", 0))
    burned = math.inf if allowed == 0 and failures else (failures / allowed * 100 if allowed else 0.0)
    return {"threshold": limit.text, "run_requests": requests, "run_failures": failures,
            "allowed": round(allowed, 1), "burned_percent": round(burned, 1) if math.isfinite(burned) else "all"}


def _save(result: UnderLoad, ended: float) -> None:
    """The users' view goes into the experiment's evidence file, beside its timeline."""
    path = result.outcome.evidence_path
    doc = dict(result.outcome.evidence)
    doc["under_load"] = {"scenario": result.load.scenario, "record": str(result.load.record_path),
                         "stopped_by": "the experiment's end", "experiment_ended_at": ended,
                         "verdicts": [v.to_record() for v in result.load.verdicts], "felt": result.felt,
                         "problems": result.problems}
    breached = [v.message() for v in result.load.failed()]  # the load's thresholds gate what users may feel
    if result.problems or breached:
        doc["ok"], doc["failures"] = False, [*doc.get("failures", []), *breached, *result.problems]
    result.outcome.evidence.clear()
    result.outcome.evidence.update(doc)
    if path is not None:
        path.write_text(json.dumps(doc, indent=1))
