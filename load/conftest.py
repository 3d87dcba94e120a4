"""The load suite: one test per scenario of the inventory's ``load:`` section (``load[NAME]``)."""

from __future__ import annotations

import pytest

from opsproof.plugin import inventory_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        inventory = inventory_of(metafunc.config)
        names = sorted(inventory.load)
        if not names:  # said, rather than pytest's "got empty parameter set"
            skip = pytest.mark.skip(reason=f"{inventory.source} has no load: scenarios (see the README's load section)")
            metafunc.parametrize("scenario", [pytest.param("", marks=skip)], ids=["load"])
            return
        metafunc.parametrize("scenario", names, ids=[f"load[{n}]" for n in names])
