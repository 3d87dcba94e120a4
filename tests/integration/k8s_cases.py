"""What the emulator tests of the Kubernetes checks beyond Deployments share (test_kubernetes_kinds.py,
test_kubernetes_presence.py): a case (one namespace, one thing broken), one emulator holding every case's namespace,
and the verdict that exactly the case's checks fail, each with its whole finding. The emulator itself and the object
builders are test_kubernetes.py's; its store learns the kinds a test file adds (``kinds``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import test_kubernetes as kt
from test_kubernetes import Emulator

from opsproof.inventory import Kubernetes
from opsproof.probes import Connections, ProbeSpec, Target
from opsproof.result import Result

Obj = dict[str, Any]


@dataclass
class Case:
    name: str
    breaks: Callable[[dict[str, Obj]], object]
    fails: dict[str, str] = field(default_factory=dict)  # check -> its whole finding, after "kubernetes[NAME]: "
    config: dict[str, Any] = field(default_factory=dict)
    regex: bool = False  # the findings are regular expressions (where a time moves), else literal text


def emulated(kubeconfig: Path, cases: Iterable[Case], healthy: Callable[[str], dict[str, Obj]],
             kinds: dict[str, str]) -> Iterator[Emulator]:
    """One emulator with every case's namespace: the healthy objects, the case's breakage applied."""
    kt.RESOURCES.update(kinds)
    with Emulator(kubeconfig) as emulator:
        for case in cases:
            objs = healthy(case.name)
            case.breaks(objs)
            emulator.put(objs.values())
        yield emulator


def run_all(probes: Iterable[ProbeSpec], cfg: Kubernetes, conns: Connections, name: str) -> dict[str, Result]:
    return {spec.check: spec(Target("kubernetes", name, cfg), conns) for spec in probes}


def assert_fails_exactly(case: Case, results: dict[str, Result]) -> None:
    failed = {check for check, r in results.items() if r.ok is not True}
    assert failed == set(case.fails), {c: results[c].explain() for c in failed}
    for check, finding in case.fails.items():
        pattern = re.escape(f"kubernetes[{case.name}]: ") + (finding if case.regex else re.escape(finding))
        assert re.fullmatch(pattern, results[check].explain()), results[check].explain()


def module_tests(cases: list[Case], probes: Iterable[ProbeSpec], config: Callable[..., Kubernetes],
                 healthy: Callable[[str], dict[str, Obj]], kinds: dict[str, str]) -> tuple[Any, Any, Any]:
    """A test file's module-scoped ``emu`` and ``conns`` fixtures and its test that each case fails exactly its
    checks; the file binds them to those names (``emu, conns, test_each_… = module_tests(…)``)."""
    probes = tuple(probes)

    @pytest.fixture(scope="module")
    def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
        yield from emulated(tmp_path_factory.mktemp("k8s") / "kubeconfig", cases, healthy, kinds)

    @pytest.fixture(scope="module")
    def conns() -> Iterator[Connections]:
        with Connections() as c:
            yield c

    @pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])
    def test_each_state_fails_exactly_its_check(case: Case, emu: Emulator, conns: Connections) -> None:
        assert_fails_exactly(case, run_all(probes, config(case.name, emu.kubeconfig, **case.config), conns,
                                           case.name))

    return emu, conns, test_each_state_fails_exactly_its_check
