"""One DR drill per `backups:` entry that names its datastore; the tests in this folder are its phases."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import pytest

from opsproof import output, verify
from opsproof.drill import Drill, drillable, interruptible, open_drill
from opsproof.inventory import Inventory
from opsproof.plugin import inventory_of, output_root, record_result
from opsproof.report import allure_steps
from opsproof.result import Result

DRILLS = pytest.StashKey[list[Drill]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "drill" in metafunc.fixturenames:
        names = drillable(inventory_of(metafunc.config))
        metafunc.parametrize("drill_name", names, ids=[f"backups[{n}]" for n in names], scope="session")


@pytest.fixture(scope="session")
def drill(request: pytest.FixtureRequest, drill_name: str, inventory: Inventory) -> Iterator[Drill]:
    """The drill of one backups entry; torn down after its last phase, or on any failure, Ctrl-C or SIGTERM."""
    evidence = output.drills(output_root(request.config))
    with interruptible():
        allow = os.environ.get("OPSPROOF_ALLOW_DESTRUCTIVE", "").strip().lower() in ("1", "true", "yes", "on")
        the_drill = open_drill(inventory, drill_name, evidence, allow_destructive=allow)
        request.config.stash.setdefault(DRILLS, []).append(the_drill)
        try:
            yield the_drill
        finally:
            the_drill.close()


@pytest.fixture
def phase(request: pytest.FixtureRequest, drill: Drill) -> Callable[[str], Result]:
    """Run one phase of the drill, record it like any check, and pass or fail with its finding. With
    ``--alluredir``: the phase as an Allure step with its times; the last phase also the whole drill, and its
    evidence document as an attachment (opsproof.report.allure_steps)."""

    def run(name: str) -> Result:
        __tracebackhide__ = True
        result = drill.phase(name)
        record_result(request.node, result)
        if allure_steps.active(request.config):
            _steps(drill, name)
        verify(result)
        return result

    return run


def _steps(the_drill: Drill, name: str) -> None:
    evidence = json.loads(the_drill.redact(json.dumps(the_drill.evidence(), default=str)))  # secrets masked
    allure_steps.write([allure_steps.phase_step(p) for p in evidence["phases"] if p["phase"] == name])
    if name == "teardown":  # the last phase: the drill as a whole, and what its evidence file holds
        allure_steps.write([allure_steps.drill_step(evidence)])
        allure_steps.attach_json(evidence, f"drill evidence {the_drill.target}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for the_drill in config.stash.get(DRILLS, []):
        terminalreporter.write_line("")
        for line in the_drill.summary().splitlines():
            terminalreporter.write_line(line)
