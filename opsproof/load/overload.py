"""Alerts proven under load: a scenario drives the service past what it can serve, and the alerts it names must
fire within the budget opsproof computes from the live configuration, be delivered, and resolve once the load
stops — the chaos suite's alert-lifecycle probes (``opsproof.chaos.alerts``), with load as the fault.

Runbook lines it replaces: "run the load test, watch the pager, check it clears". The load's start (Locust starting
its users) is the fault's moment on the timeline; its end is marked ``load_stopped``. The load's own thresholds are
recorded as evidence, not judged: an overload is meant to breach them.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsproof.chaos import alerts, timeline
from opsproof.chaos.context import Configuration, Context, fail
from opsproof.inventory import Inventory
from opsproof.load import runner

JOIN_GRACE_S = 60.0  # beyond the scenario's duration: Locust's start-up and stop (the runner's own bound is tighter)


@dataclass
class Overload:
    scenario: str
    fired: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_started: float | None = None
    load_stopped: float | None = None
    run: runner.LoadRun | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "load_started": self.load_started, "load_stopped": self.load_stopped,
                "fired": self.fired, "delivered": self.delivered, "resolved": self.resolved,
                "resolved_after_load_s": {a: round(r["resolved_at"] - self.load_stopped, 3)
                                          for a, r in self.resolved.items() if self.load_stopped},
                "record": str(self.run.record_path) if self.run else None,
                "verdicts": [v.to_record() for v in self.run.verdicts] if self.run else [],
                "timeline": self.timeline}


def check_rules(inv: Inventory, name: str, configuration: Configuration) -> None:
    """Before any load: every alert the scenario names has a rule loaded in Prometheus (else it never could fire)."""
    with alerts.Apis(Context.of(configuration)) as apis:
        for alert in inv.load[name].alerts:
            budget = alerts.detection_budget(apis, alert)
            missing = [n for n in budget.notes if n.startswith("rule ")]
            if missing:
                raise fail(f"alert[{alert}]", f"{missing[0]} (load[{name}] did not start)",
                           "a loaded alert rule for the overload to fire")


def prove(inv: Inventory, name: str, out: Path, configuration: Configuration, *,
          allow_destructive: bool = False) -> Overload:
    """Run the overload scenario ``name`` in the background and follow each of its alerts through its lifecycle;
    raise ChaosError (alert late, undelivered, unresolved) or LoadError (the load could not run)."""
    scenario = inv.load[name]
    runner.refuse_production(inv, name, allow_destructive)
    check_rules(inv, name, configuration)
    found = Overload(name)
    timeline.reset()
    started = threading.Event()
    outcome: dict[str, Any] = {}

    def load() -> None:
        try:
            outcome["run"] = runner.run(inv, name, out, allow_destructive=allow_destructive, on_started=begun)
        except BaseException as e:
            outcome["error"] = e
        finally:
            outcome["stopped"] = time.time()
            started.set()

    def begun(at: float, process: subprocess.Popen[bytes]) -> None:
        outcome["process"] = process
        found.load_started = timeline.mark("fault_injected", at=at, fault=f"load[{name}]")
        started.set()

    thread = threading.Thread(target=load, name=f"load-{name}", daemon=True)
    thread.start()
    try:
        started.wait(runner.STARTUP_GRACE_S + 5)
        if "error" in outcome:
            raise outcome["error"]
        for alert in scenario.alerts:
            found.fired[alert] = alerts.alert_fires(alert, allowance_s=scenario.alert_allowance,
                                                    configuration=configuration)
            found.delivered[alert] = alerts.alert_delivered(alert, configuration=configuration)
    except KeyboardInterrupt:  # the load runs in another thread: stop its Locust processes from here
        if "process" in outcome:
            runner.stop(outcome["process"])
        raise
    finally:
        thread.join(scenario.duration + JOIN_GRACE_S)
    if "error" in outcome:
        raise outcome["error"]
    found.run = outcome.get("run")
    found.load_stopped = timeline.mark("load_stopped", at=outcome["stopped"], load=name)
    for alert in scenario.alerts:
        found.resolved[alert] = alerts.alert_resolves(alert, within=scenario.resolve_within,
                                                      configuration=configuration)
    found.timeline = timeline.marks()
    return found
