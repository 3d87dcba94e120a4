"""Alerts proven under load (``pytest load --inventory X``): each scenario that names ``alerts:`` drives its service
past what it can serve; each alert must fire within the budget computed from the live Prometheus and Alertmanager
configuration, be delivered, and resolve within ``resolve_within`` once the load stops. The alert-lifecycle probes
are the chaos suite's (``opsproof.chaos.alerts``); the evidence is the load's record plus the alert timeline.

Runs in the xdist group ``load`` (one load at a time). The sandbox's own webhook is used when
``OPSPROOF_SANDBOX_DIR`` names the sandbox, else Alertmanager's notification counters."""

from __future__ import annotations

import os
import time

import pytest

from opsproof.chaos.context import ChaosError
from opsproof.inventory import Inventory
from opsproof.load import overload as lifecycle
from opsproof.load import runner
from opsproof.plugin import output_root, record_result
from opsproof.result import Result

pytestmark = pytest.mark.xdist_group("load")


def _allowed() -> bool:
    return os.environ.get("OPSPROOF_ALLOW_DESTRUCTIVE", "").strip().lower() in ("1", "true", "yes", "on")


@pytest.mark.severity("high")
def test_alerts_fire_and_resolve_under_overload(overload: str, inventory: Inventory,
                                                request: pytest.FixtureRequest) -> None:
    __tracebackhide__ = True
    target = f"load[{overload}]"
    names = ", ".join(inventory.load[overload].alerts)
    configuration = {"opsproof_inventory": str(inventory.source),
                     "opsproof_sandbox_dir": os.environ.get("OPSPROOF_SANDBOX_DIR", "")}
    started = time.monotonic()
    try:
        found = overload_run(inventory, overload, request, configuration)
    except (ChaosError, runner.LoadError) as e:
        problem = str(e)
    else:
        problem = ""
    if problem:
        record_result(request.node, Result(target, "load.overload_alerts", False, problem,
                                           f"{names} fired within budget, delivered, resolved"))
        pytest.fail(f"{target}: {problem}", pytrace=False)
    fired = "; ".join(f"{a} fired {f['truth_s']:.1f} s after the load began (budget {f['budget_s']:g} s), "
                      f"resolved {found.evidence()['resolved_after_load_s'].get(a, 0):.1f} s after it stopped"
                      for a, f in found.fired.items())
    print(fired)
    record_result(request.node, Result(target, "load.overload_alerts", True, fired,
                                       f"{names} fired within budget, delivered, resolved",
                                       evidence=found.evidence(), duration_s=time.monotonic() - started))


def overload_run(inventory: Inventory, name: str, request: pytest.FixtureRequest,
                 configuration: dict[str, str]) -> lifecycle.Overload:
    return lifecycle.prove(inventory, name, output_root(request.config), configuration,
                          allow_destructive=_allowed())
