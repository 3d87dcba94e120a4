"""Allure steps written after the fact: a DR drill's phases and a chaos experiment's timeline stages.

A drill phase and a chaos stage are not Python blocks one could wrap in ``with allure.step(…)`` while they run: a
phase is timed inside :class:`opsproof.drill.Drill`, and a chaos run's stages are moments its probes saw (fault →
pending → firing → delivered → remediated → recovered → resolved). So the steps are built from the evidence once
it exists — each with its own start and stop time (Unix seconds; Allure's milliseconds) and status — and added to
the running test through allure-pytest's reporter. Without ``--alluredir`` nothing here runs.

- a drill phase's test gets one step: the phase, its time, passed/failed (skipped: the phase had no verdict);
- the drill's last phase (teardown) also gets the drill as a whole — one step holding a step per phase — and the
  drill's evidence document as a JSON attachment;
- a chaos experiment's test gets one step per stage (start: the stage's moment, stop: the next one's), the alert
  stages judged against the detection budget and ``recovered`` against the recovery target, a failed step for an
  expected alert that never fired, a last ``verdict`` step, and the evidence document as a JSON attachment.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
STATUS = {"pass": PASSED, "fail": FAILED, "no-verdict": SKIPPED, "no-data": SKIPPED}


@dataclass(frozen=True)
class Step:
    """One Allure step: a name, when it started and stopped (Unix seconds), its status and what it found."""

    name: str
    start: float
    stop: float
    status: str
    message: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    children: tuple[Step, ...] = ()


def active(config: Any) -> bool:
    """allure-pytest writes results in this run (``--alluredir DIR``)."""
    try:
        return bool(config.getoption("allure_report_dir", None))
    except ValueError:  # allure-pytest not installed or disabled (-p no:allure_pytest)
        return False


def _reporter() -> Any | None:
    """allure-pytest's reporter of this process (its listener registers itself with allure_commons)."""
    from allure_commons import plugin_manager

    for plugin in plugin_manager.get_plugins():
        reporter = getattr(plugin, "allure_logger", None)
        if reporter is not None and hasattr(reporter, "start_step"):
            return reporter
    return None


def write(steps: Sequence[Step]) -> int:
    """Add ``steps`` (with their children) to the running test, in order; the number written (0: no Allure)."""
    reporter = _reporter()
    return 0 if reporter is None else sum(_write(reporter, step, None) for step in steps)


def _write(reporter: Any, step: Step, parent: str | None) -> int:
    from allure_commons.model2 import Parameter, StatusDetails, TestStepResult

    key = str(uuid.uuid4())
    reporter.start_step(parent, key, TestStepResult(
        name=step.name, start=_ms(step.start), stop=_ms(step.stop), status=step.status, stage="finished",
        statusDetails=StatusDetails(message=step.message) if step.message else None,
        parameters=[Parameter(name=k, value=v) for k, v in step.parameters.items()]))
    written = 1 + sum(_write(reporter, child, key) for child in step.children)
    reporter.stop_step(key)
    return written


def attach_json(document: Mapping[str, Any], name: str, redact: Callable[[str], str] = str) -> None:
    import allure

    allure.attach(redact(json.dumps(document, indent=2, default=str, ensure_ascii=False)), name=name,
                  attachment_type=allure.attachment_type.JSON)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


# --- DR drills --------------------------------------------------------------------------------------------------

def phase_step(phase: Mapping[str, Any]) -> Step:
    """A step from one phase of a drill's evidence (``phases[i]``: phase, start, end, verdict, observed, expected)."""
    verdict = str(phase["verdict"])
    status = STATUS.get(verdict, FAILED)
    observed, expected = str(phase.get("observed", "")), str(phase.get("expected", ""))
    return Step(f"drill.{phase['phase']}", _unix(phase["start"]), _unix(phase["end"]), status,
                message=None if status == PASSED else f"{observed}, expected {expected}",
                parameters={"verdict": verdict, "duration": f"{float(phase.get('duration_s') or 0):.3f} s",
                            "observed": observed, "expected": expected})


def drill_step(evidence: Mapping[str, Any]) -> Step:
    """The whole drill as one step (its verdict), holding a step per phase in the order they ran."""
    phases = [phase_step(p) for p in evidence["phases"]]
    verdict = str(evidence.get("verdict", ""))
    status = PASSED if verdict == "PASS" else FAILED if verdict == "FAIL" else SKIPPED
    start = min((p.start for p in phases), default=0.0)
    stop = max((p.stop for p in phases), default=start)
    rto, rpo = evidence.get("rto") or {}, evidence.get("rpo") or {}
    parameters = {name: f"{doc['measured_s']:g} s (target {doc.get('target_s')} s)"
                  for name, doc in (("RTO", rto), ("RPO", rpo)) if doc.get("measured_s") is not None}
    return Step(f"DR drill {evidence['drill']} — {verdict}", start, stop, status,
                message=None if status == PASSED else "; ".join(
                    f"{p.name}: {p.message}" for p in phases if p.status != PASSED) or None,
                parameters=parameters, children=tuple(phases))


# --- chaos experiments ------------------------------------------------------------------------------------------

def chaos_steps(evidence: Mapping[str, Any]) -> list[Step]:
    """One step per timeline stage of a chaos run's evidence, judged where the evidence has a budget or a target;
    a failed step per expected alert that never fired; a last step with the experiment's verdict."""
    marks = sorted(evidence.get("timeline") or [], key=lambda m: float(m["at"]))
    detections = {str(d.get("alert")): d for d in evidence.get("detections") or []}
    recovery = evidence.get("recovery") or {}
    fault = next((float(m["at"]) for m in marks if m.get("event") == "fault_injected"), None)
    steps = []
    for i, mark in enumerate(marks):
        at = float(mark["at"])
        stop = float(marks[i + 1]["at"]) if i + 1 < len(marks) else at
        event = str(mark.get("event"))
        detail = next((str(mark[k]) for k in ("alert", "fault", "action", "target") if mark.get(k)), "")
        parameters = {"after the fault": f"{at - fault:+.2f} s"} if fault is not None else {}
        status, message = PASSED, None
        d = detections.get(str(mark.get("alert")))
        if d is not None and event in ("firing", "delivered") and d.get("budget_s") is not None:
            measured = d.get("truth_s") if event == "firing" else d.get("detected_s")
            parameters["budget"] = f"{float(d['budget_s']):g} s"
            if measured is not None:
                parameters["measured"] = f"{float(measured):.2f} s"
                if float(measured) > float(d["budget_s"]):
                    status, message = FAILED, f"{detail} {event} after {float(measured):.2f} s, over its budget " \
                                              f"of {float(d['budget_s']):g} s"
        if event == "recovered" and recovery.get("target_s") is not None and recovery.get("recovery_s") is not None:
            parameters.update({"recovery": f"{float(recovery['recovery_s']):.2f} s",
                               "target": f"{float(recovery['target_s']):g} s"})
            if float(recovery["recovery_s"]) > float(recovery["target_s"]):
                status, message = FAILED, f"{detail} recovered after {float(recovery['recovery_s']):.2f} s, over " \
                                          f"its target of {float(recovery['target_s']):g} s"
        steps.append(Step(f"{event} {detail}".strip(), at, stop, status, message, parameters))
    end = float(marks[-1]["at"]) if marks else _unix(evidence.get("written_at"))
    fired = {str(m.get("alert")) for m in marks if m.get("event") == "firing"}
    for alert, d in detections.items():
        if alert not in fired:
            budget = d.get("budget_s")
            steps.append(Step(f"firing {alert}", end, end, FAILED, f"{alert} never fired"
                              + (f" (budget {float(budget):g} s)" if budget is not None else ""),
                              {"budget": f"{float(budget):g} s"} if budget is not None else {}))
    ok = bool(evidence.get("ok"))
    failures = [str(f) for f in evidence.get("failures") or []]
    steps.append(Step(f"verdict: {'PASS' if ok else 'FAIL'} ({evidence.get('status')})", end, end,
                      PASSED if ok else FAILED, None if ok else "; ".join(failures) or str(evidence.get("status"))))
    return steps


def _unix(value: object) -> float:
    """An ISO 8601 time (a drill's phases, an evidence document's ``written_at``) or Unix seconds, as Unix seconds."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return 0.0
