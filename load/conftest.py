"""The load suite: one test per scenario of the inventory's ``load:`` section (``load[NAME]``)."""

from __future__ import annotations

import pytest

from opsproof.plugin import inventory_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario" in metafunc.fixturenames:
        names = sorted(inventory_of(metafunc.config).load)
        metafunc.parametrize("scenario", names, ids=[f"load[{n}]" for n in names])
