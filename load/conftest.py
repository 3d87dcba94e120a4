"""The load suite: one test per scenario of the inventory's ``load:`` section (``load[NAME]``) — gated on its
thresholds (test_scenarios.py), or, for a scenario that names ``alerts:``, on those alerts' lifecycle under the
load (test_overload.py)."""

from __future__ import annotations

import pytest

from opsproof.plugin import inventory_of

_FIXTURES = {"scenario": False, "overload": True}  # fixture name → the scenarios that name alerts


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, overload in _FIXTURES.items():
        if fixture not in metafunc.fixturenames:
            continue
        inventory = inventory_of(metafunc.config)
        names = sorted(n for n, s in inventory.load.items() if bool(s.alerts) == overload and not s.during_chaos)
        if not names:  # said, rather than pytest's "got empty parameter set"
            what = "overload scenarios (load: with alerts:)" if overload else "load: scenarios"
            skip = pytest.mark.skip(reason=f"{inventory.source} has no {what} (see the README's load section)")
            metafunc.parametrize(fixture, [pytest.param("", marks=skip)], ids=["load"])
            return
        metafunc.parametrize(fixture, names, ids=[f"load[{n}]" for n in names])
