"""One DR drill per `backups:` entry that names its datastore; the tests in this folder are its phases."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from opsproof import output, verify
from opsproof.drill import Drill, drillable, interruptible, open_drill
from opsproof.inventory import Inventory
from opsproof.plugin import inventory_of, output_root, record_result
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
    """Run one phase of the drill, record it like any check, and pass or fail with its finding."""

    def run(name: str) -> Result:
        __tracebackhide__ = True
        result = drill.phase(name)
        record_result(request.node, result)
        verify(result)
        return result

    return run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for the_drill in config.stash.get(DRILLS, []):
        terminalreporter.write_line("")
        for line in the_drill.summary().splitlines():
            terminalreporter.write_line(line)
