"""The opsproof Chaos Toolkit control: declared in every experiment, so plain ``chaos run`` gets the same safety.

* before the experiment: SIGINT/SIGTERM noted (:mod:`opsproof.chaos.signals`), a new timeline, the production
  refusal (a refused run plays no rollback and no audit: it touches nothing), then the recovery of whatever an
  earlier run killed outright left in the fault journal (:mod:`opsproof.chaos.faultjournal`);
* after each activity: an activity that failed because SIGTERM arrived while it ran (Chaos Toolkit turns the
  signal into an exception that its python provider reports as a mere activity failure) interrupts the run, so
  the next activity is not played and the rollbacks run at once;
* after the experiment (after the rollbacks): the audit, and the timeline evidence written to
  ``OUT/chaos/<slug of the title>-<UTC time>.json`` (OUT: ``opsproof_out``, see :mod:`opsproof.output`) and kept
  in the journal under ``opsproof``.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import InterruptExecution

from opsproof.chaos import evidence, faultjournal, signals, timeline
from opsproof.chaos.context import ChaosRefused, Configuration, Context

log = logging.getLogger("chaostoolkit")
REFUSED = "opsproof_refused"  # set in the experiment when the control refused it


def before_experiment_control(context: dict[str, Any], configuration: Configuration = None, **_: Any) -> None:
    signals.watch()
    timeline.reset()
    try:
        Context.of(configuration).destructive(f"run the experiment {context.get('title')!r}")
    except ChaosRefused as e:
        context["rollbacks"] = []  # a refused run touches nothing: not even the rollbacks (nor the audit) run
        context[REFUSED] = str(e)
        raise InterruptExecution(str(e)) from None
    recovery = faultjournal.recover(faultjournal.of(configuration))  # what a run killed outright left set
    for problem in recovery.problems:
        log.error("opsproof: could not roll back a fault an earlier run left: %s", problem)


def after_activity_control(context: dict[str, Any], state: dict[str, Any], **_: Any) -> None:
    if state and state.get("status") == "failed" and "InterruptExecution" in "".join(state.get("exception") or []):
        raise InterruptExecution(f"interrupted during {context.get('name')!r}: rolling back")


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
