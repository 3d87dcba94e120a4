"""Each load scenario of the inventory, run with Locust and gated on its thresholds (``pytest load --inventory X``).

A scenario passes when every threshold is met, fails when any is breached — a threshold that saw no request
fails too — and is skipped with "no verdict" when the load generator itself was saturated. The evidence is
``reports/load/NAME-TIME.json`` (verdicts, exact histograms, generator CPU, the Locust command) with Locust's own
``.html``, ``_stats.csv`` and log beside it. An inventory marked ``production: true`` is refused unless
``OPSPROOF_ALLOW_DESTRUCTIVE=1``. Scenarios run one at a time (xdist group ``load``): two at once would measure
each other."""

from __future__ import annotations

import os
import time

import pytest

from opsproof.inventory import Inventory
from opsproof.load import runner
from opsproof.plugin import output_root, record_result
from opsproof.result import Result

pytestmark = pytest.mark.xdist_group("load")


def _allowed() -> bool:
    return os.environ.get("OPSPROOF_ALLOW_DESTRUCTIVE", "").strip().lower() in ("1", "true", "yes", "on")


@pytest.mark.severity("high")
def test_scenario(scenario: str, inventory: Inventory, request: pytest.FixtureRequest) -> None:
    __tracebackhide__ = True
    target = f"load[{scenario}]"
    started = time.monotonic()
    try:
        run = runner.run(inventory, scenario, output_root(request.config), allow_destructive=_allowed())
    except runner.LoadError as e:
        record_result(request.node, Result(target, "load.thresholds", False, str(e), "a measured run"))
        pytest.fail(str(e), pytrace=False)
    print(run.summary())
    failed = run.failed()
    unjudged = [v for v in run.verdicts if v.ok is None]
    if failed:
        observed = f"{len(failed)} of {len(run.verdicts)} thresholds breached: " + "; ".join(
            v.message() for v in failed)
    elif unjudged:
        observed = "; ".join(v.message() for v in unjudged)
    else:
        observed = f"{len(run.verdicts)} thresholds met over {run.figures['total']['requests']:,} requests"
    record_result(request.node, Result(target, "load.thresholds", run.ok, observed, "every threshold met",
                                       evidence={"record": str(run.record_path),
                                                 "verdicts": [v.to_record() for v in run.verdicts]},
                                       duration_s=time.monotonic() - started))
    if failed:
        pytest.fail(f"{target}: {len(failed)} of {len(run.verdicts)} thresholds breached (evidence: "
                    f"{run.record_path}):\n  " + "\n  ".join(v.message() for v in failed), pytrace=False)
    if unjudged:
        pytest.skip(f"{target}: no verdict — " + "; ".join(v.message() for v in unjudged))
