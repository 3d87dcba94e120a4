"""The target backends without services: how an inventory names containers and processes (file:line errors),
what `opsproof chaos validate` says of a fault whose backend cannot act, and the rollbacks' idempotence on a local
process (a `sleep` started here: paused, rolled back twice; a rollback of a fault never injected; a run killed
outright, recovered from the fault journal)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from opsproof.chaos import audit, faultjournal, run, targets
from opsproof.chaos.context import ChaosError
from opsproof.chaos.validate import problems
from opsproof.inventory import InventoryError, load, loads


@pytest.mark.parametrize(("section", "message"), [
    ("containers:\n    db: {name: shop-db-1, service: db}", ":4: chaos.containers.db: name the container by exactly "
     "one of name: (its container name) or service: (its com.docker.compose.service label). Fix: keep one of them"),
    ("containers:\n    db: {name: shop-db-1, project: shop}", ":4: chaos.containers.db: project: only narrows "
     "service:"),
    ("processes:\n    w: {stop: [kill, '1']}", ":4: chaos.processes.w: stop: and start: go together"),
    ("processes:\n    w: {pidfile: /run/w.pid, unit: w.service}", ":4: chaos.processes.w: name the process by "
     "exactly one of pidfile:, unit: or a stop:/start: pair"),
    ("processes:\n    w: {unit: w.service, check: ['true']}", ":4: chaos.processes.w: check: is for a stop:/start: "
     "pair"),
    ("processes:\n    w: {stop: [], start: [x]}", ":4: chaos.processes.w.stop: "),
    ("processes:\n    w: {pidfile: /x}\n  containers:\n    w: {name: w}", ":2: chaos: w named both under "
     "containers: and processes:"),
    ("dockers:\n    db: {name: x}", ":3: chaos.dockers: "),
])
def test_the_inventory_names_chaos_targets_with_file_and_line(section: str, message: str) -> None:
    with pytest.raises(InventoryError) as e:
        loads(f"environment: e\nchaos:\n  {section}\n", "inv.yaml")
    assert f"inv.yaml{message}" in str(e.value)


def test_a_valid_chaos_section() -> None:
    inv = loads(textwrap.dedent("""\
        environment: e
        chaos:
          containers: {db: {service: db, project: shop}, cache: {name: shop-cache-1}}
          processes: {w: {pidfile: /run/w.pid, start: [w]}, api: {unit: api.service}, q: {stop: [a], start: [b]}}
        """))
    assert inv.chaos.containers["db"].describe() == "compose service db of project shop"
    assert [targets.backend_of(inv, n) for n in ("db", "w", "q", "nope")] == ["docker", "process", "process", None]
    assert [p.way for p in inv.chaos.processes.values()] == ["pidfile", "unit", "commands"]


def _experiment(tmp_path: Path, arguments: dict[str, Any]) -> Path:
    path = tmp_path / "exp.yaml"
    act = {"type": "python", "module": "opsproof.chaos.targets"}
    path.write_text(yaml.safe_dump({
        "version": "1.0.0", "title": "t", "description": "d", "runtime": {"rollbacks": {"strategy": "always"}},
        "controls": [{"name": "opsproof", "provider": {"type": "python", "module": "opsproof.chaos.control"}}],
        "method": [{"type": "action", "name": "fault", "provider": {**act, "func": "inject_fault",
                                                                    "arguments": arguments}}],
        "rollbacks": [{"type": "action", "name": "undo", "provider": {
            **act, "func": "rollback_fault", "arguments": {k: arguments[k] for k in ("target", "fault")}}}]}))
    return path


INVENTORY = textwrap.dedent("""\
    environment: e
    chaos:
      containers: {db: {service: db, docker_host: "unix:///nonexistent/docker.sock"}}
      processes:
        w: {pidfile: /run/w.pid}
        q: {stop: [no-such-command-h23], start: ['true']}
    """)


@pytest.mark.parametrize(("arguments", "wanted"), [
    ({"target": "nope", "fault": "stop"}, "method 'fault': target 'nope' is not in the inventory's chaos.containers, "
     "chaos.processes or kubernetes (db, w, q)"),
    ({"target": "db", "fault": "freeze"}, "method 'fault': the docker backend has no fault 'freeze' (it has "
     "disconnect, kill, pause, restart, stop)"),
    ({"target": "db", "fault": "pause"}, "method 'fault': the docker backend cannot act for this inventory: no "
     "Docker daemon answers at unix:///nonexistent/docker.sock"),
    ({"target": "w", "fault": "kill"}, "kill on a pid file needs start: in the entry"),
    ({"target": "w", "fault": "pause", "signal": "SIGNOPE"}, "signal 'SIGNOPE' is not a signal name"),
    ({"target": "q", "fault": "pause"}, "pause is not a fault of a process named by commands"),
    ({"target": "q", "fault": "stop"}, "the process backend cannot act for this inventory: process[q]: command "
     "'no-such-command-h23' not found on PATH"),
])
def test_validate_checks_each_faults_backend_for_the_inventory(tmp_path: Path, arguments: dict[str, Any],
                                                               wanted: str) -> None:
    found = problems(_experiment(tmp_path, arguments), loads(INVENTORY), sandbox=False)
    assert any(wanted in p for p in found), found


def test_a_fault_the_backend_can_do_is_valid(tmp_path: Path) -> None:
    inv = loads("environment: e\nchaos:\n  processes:\n    w: {pidfile: /run/w.pid, start: [sleep, '60']}\n")
    assert problems(_experiment(tmp_path, {"target": "w", "fault": "kill"}), inv, sandbox=False) == []


class Toggle:
    """A target backend with a flag for state: what the rollback machinery does, without a process. Its faults
    set ``broken``; its rollback clears it and says so only when it was set (as every real backend does)."""

    name = "process"
    faults = frozenset({"pause"})
    broken: ClassVar[dict[str, bool]] = {}
    rollbacks: ClassVar[list[str]] = []

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def available(self) -> str | None:
        return None

    def option_problems(self, target: str, fault: str, options: dict[str, Any]) -> list[str]:
        return []

    def prepare(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "before": "fine"}

    def inject(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        Toggle.broken[target] = True
        return {}

    def rollback(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        assert options == {"before": "fine"}  # what prepare read, kept in the journal
        Toggle.rollbacks.append(target)
        was = Toggle.broken.pop(target, False)
        return {"actions": ["resumed"] if was else []}

    def leftovers(self, target: str, fault: str, options: dict[str, Any]) -> str:
        return "still paused" if Toggle.broken.get(target) else ""


@pytest.fixture
def toggle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from opsproof.chaos import backend

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # this test's own fault journal
    monkeypatch.setitem(backend.TARGET_BACKENDS, "process", f"{__name__}:Toggle")
    Toggle.broken.clear()
    Toggle.rollbacks.clear()
    (tmp_path / "inv.yaml").write_text("environment: e\nchaos:\n  processes:\n    w: {pidfile: /run/w.pid}\n")
    run.begin()
    yield {"opsproof_inventory": str(tmp_path / "inv.yaml")}
    run.begin()  # the next test starts a run of its own


def test_a_rollback_twice_undoes_once(toggle: dict[str, Any]) -> None:
    targets.inject_fault("w", "pause", configuration=toggle)
    assert audit.audit(toggle).problems == ["process target w after pause: still paused"]
    assert targets.rollback_fault("w", "pause", configuration=toggle)["actions"] == ["resumed"]
    assert targets.rollback_fault("w", "pause", configuration=toggle) == {
        "target": "w", "fault": "pause", "actions": [], "pending": 0}
    assert Toggle.rollbacks == ["w"]  # the second found nothing in the journal: the backend was not even asked
    assert audit.audit(toggle).clean


def test_a_rollback_after_the_target_recovered_by_itself_does_nothing(toggle: dict[str, Any]) -> None:
    targets.inject_fault("w", "pause", configuration=toggle)
    Toggle.broken.clear()  # recovered by itself
    assert targets.rollback_fault("w", "pause", configuration=toggle)["actions"] == []
    assert targets.rollback_fault("w", "pause", configuration=toggle)["pending"] == 0  # never injected: nothing


def test_a_run_killed_outright_is_rolled_back_from_the_journal(toggle: dict[str, Any]) -> None:
    targets.inject_fault("w", "pause", configuration=toggle)
    [entry] = faultjournal.entries(faultjournal.of(toggle))
    assert (entry["undo"], entry["arguments"]) == ("opsproof.chaos.targets:rollback_fault", {
        "target": "w", "fault": "pause", "prepared": {"before": "fine"}})
    recovery = faultjournal.recover(faultjournal.of(toggle))  # the next run, or `opsproof chaos recover`
    assert recovery.rolled_back == ["pause w (process) (target[w]:pause)"]
    assert not Toggle.broken
    assert faultjournal.entries(faultjournal.of(toggle)) == []
    assert faultjournal.recover(faultjournal.of(toggle)).rolled_back == []


def test_a_fault_on_a_target_not_in_the_inventory_names_the_known_ones(
        toggle: dict[str, Any]) -> None:
    with pytest.raises(ChaosError, match=r"^target\[nope\]: not in the inventory's chaos.containers, "
                                         r"chaos.processes or kubernetes, expected one of w$"):
        targets.inject_fault("nope", "pause", configuration=toggle)


def test_the_example_inventory_loads() -> None:
    inv = load(Path(__file__).resolve().parents[2] / "examples" / "chaos" / "compose-stack.yaml")
    assert inv.chaos.containers


@pytest.mark.parametrize("name", ["docker", "process", "kubernetes"])
def test_every_target_backend_is_loaded_by_name_and_has_the_interface(name: str) -> None:
    from opsproof.chaos.backend import TargetBackend, open_target_backend
    from opsproof.chaos.context import Context

    backend = open_target_backend(name, Context(loads("environment: e\n"), None))
    wanted = [n for n in dir(TargetBackend) if not n.startswith("_")] + list(TargetBackend.__annotations__)
    assert [n for n in wanted if not hasattr(backend, n)] == []
    assert backend.name == name
    assert backend.faults
