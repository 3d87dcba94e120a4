"""The opsproof Chaos Toolkit control: declared in every experiment, so plain ``chaos run`` gets the same safety.

* before the experiment: SIGINT/SIGTERM noted (:mod:`opsproof.chaos.signals`), a new run
  (:mod:`opsproof.chaos.run`: its timeline, faults, clients), the production
  refusal (a refused run plays no rollback and no audit: it touches nothing), then the recovery of whatever an
  earlier run killed outright left in the fault journal (:mod:`opsproof.chaos.faultjournal`);
* during the method: the first action of another provider than opsproof's (a ``process`` action ``docker stop db``,
  an HTTP call) marks the fault at the moment it ends — opsproof's own faults mark themselves — so the budgets and
  recovery times count from the fault, not from the first probe that looks;
* after each activity: an activity that failed because SIGTERM arrived while it ran (Chaos Toolkit turns the
  signal into an exception that its python provider reports as a mere activity failure) interrupts the run, so
  the next activity is not played and the rollbacks run at once;
* after the experiment (after the rollbacks): the audit, and the timeline evidence written to
  ``OUT/chaos/<slug of the title>-<UTC time>.json`` (OUT: ``opsproof_out``, see :mod:`opsproof.output`) and kept
  in the journal under ``opsproof``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from chaoslib.exceptions import InterruptExecution

from opsproof.chaos import evidence, faultjournal, notifications, run, signals, timeline
from opsproof.chaos.context import ChaosRefused, Configuration, Context

log = logging.getLogger("chaostoolkit")
REFUSED = "opsproof_refused"  # set in the experiment when the control refused it


def before_experiment_control(context: dict[str, Any], configuration: Configuration = None, **_: Any) -> None:
    signals.watch()
    run.begin()  # a new run: its own timeline, faults, clients and contexts
    try:
        Context.of(configuration).destructive(f"run the experiment {context.get('title')!r}")
    except ChaosRefused as e:
        context["rollbacks"] = []  # a refused run touches nothing: not even the rollbacks (nor the audit) run
        context[REFUSED] = str(e)
        raise InterruptExecution(str(e)) from None
    recovery = faultjournal.recover(faultjournal.of(configuration))  # what a run killed outright left set
    for problem in recovery.problems:
        log.error("opsproof: could not roll back a fault an earlier run left: %s", problem)


def before_method_control(context: dict[str, Any], configuration: Configuration = None, **_: Any) -> None:
    run.current().in_method.set()
    notifications.remember(configuration)  # Alertmanager's notification counts, for a delivery opsproof cannot see


def after_method_control(context: dict[str, Any], **_: Any) -> None:
    run.current().in_method.clear()


def after_activity_control(context: dict[str, Any], state: dict[str, Any], **_: Any) -> None:
    if state and state.get("status") == "failed" and "InterruptExecution" in "".join(state.get("exception") or []):
        raise InterruptExecution(f"interrupted during {context.get('name')!r}: rolling back")
    stamp_fault(context, state)


def stamp_fault(activity: dict[str, Any], state: dict[str, Any] | None) -> None:
    """Mark ``fault_injected`` now, when a method action of another provider than opsproof's has just succeeded and
    nothing marked a fault yet: such an action marks nothing itself, and without the mark timings started when the
    first probe did ("recovered in 0.27 s" for a 5 s outage). A background action does not end with its fault."""
    provider = activity.get("provider") or {}
    if (not run.current().in_method.is_set() or activity.get("type") != "action" or activity.get("background")
            or str(provider.get("module", "")).startswith("opsproof.") or (state or {}).get("status") != "succeeded"
            or timeline.first("fault_injected") is not None):
        return
    timeline.mark("fault_injected", at=_ended(state), fault=f"{activity.get('name')} (a {provider.get('type', '?')} "
                  "action)", by="the opsproof control, when the action ended")


def _ended(state: dict[str, Any] | None) -> float | None:
    """When the activity ended, before any pause after it (Chaos Toolkit's run ``end``: naive UTC ISO time)."""
    try:
        end = dt.datetime.fromisoformat(str((state or {})["end"]))
    except (KeyError, ValueError):
        return None  # now, then
    return (end if end.tzinfo else end.replace(tzinfo=dt.UTC)).timestamp()


def after_experiment_control(context: dict[str, Any], state: dict[str, Any], configuration: Configuration = None,
                             **_: Any) -> None:
    if context.get(REFUSED):
        log.error("opsproof: refused, nothing was touched: %s", context[REFUSED])
        return
    doc, report = evidence.save(state, configuration, str(context.get("title") or "experiment"))
    state["opsproof"] = doc
    path = doc["evidence"]
    log.info("opsproof: %s; audit %s; evidence %s", "PASS" if doc["ok"] else "FAIL: " + "; ".join(doc["failures"]),
             "clean" if report.clean else "found " + "; ".join(report.problems), path)
