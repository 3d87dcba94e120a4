"""Which part may know which (DESIGN.md), read from the imports in the source; and the neutral helpers in util/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from opsproof.util import durations
from opsproof.util.errors import reason, typed_reason
from opsproof.util.poll import Expired, wait_until

PACKAGE = Path(__file__).resolve().parents[2] / "opsproof"  # tests/unit/ → the repository


def imports(folder: str) -> set[tuple[str, str]]:
    """(file, module) of every opsproof import in a folder of the package, at any depth of the code."""
    found = set()
    for path in sorted((PACKAGE / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found |= {(str(path.relative_to(PACKAGE)), n) for n in names if n.startswith("opsproof")}
    return found


def test_util_imports_nothing_of_opsproof() -> None:
    assert {(f, m) for f, m in imports("util") if not m.startswith("opsproof.util")} == set()


def test_drill_never_imports_the_sandbox() -> None:
    assert {(f, m) for f, m in imports("drill") if m.startswith("opsproof.sandbox")} == set()


def test_chaos_never_imports_the_sandbox() -> None:
    assert {(f, m) for f, m in imports("chaos") if m.startswith("opsproof.sandbox")} == set()


@pytest.mark.parametrize(("provider", "cls"), [("process", "Sandbox"), ("docker", "DockerSandbox")])
def test_the_sandbox_is_a_chaos_process_backend(tmp_path: Path, provider: str, cls: str) -> None:
    from opsproof.chaos.backend import ProcessBackend, open_backend

    backend = open_backend(tmp_path, provider)  # by name: opsproof.sandbox.control:Sandbox, …docker_provider:…
    wanted = [n for n in dir(ProcessBackend) if not n.startswith("_")] + list(ProcessBackend.__annotations__)
    assert type(backend).__name__ == cls
    assert [n for n in wanted if not hasattr(backend, n)] == []


def test_the_report_reaches_no_target() -> None:
    """The report builder reads recorded results only: report/ imports nothing that probes or acts, and the pipeline
    the plugin calls knows governance and the recorder by their types only (imported under TYPE_CHECKING)."""
    acting = ("opsproof.probes", "opsproof.probing", "opsproof.sandbox", "opsproof.chaos", "opsproof.drill",
              "opsproof.load", "opsproof.plugin", "opsproof.session", "opsproof.baseline")
    assert {(f, m) for f, m in imports("report") if m.startswith(acting)} == set()
    at_run_time = set()
    for path in sorted((PACKAGE / "report").glob("*.py")):
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        at_run_time |= {(path.name, node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                        and (node.module or "").startswith(("opsproof.governance", "opsproof.records"))
                        and id(node) not in typing_only}
    assert at_run_time == set()


def test_probes_know_neither_the_sandbox_nor_the_plugin() -> None:
    assert {(f, m) for f, m in imports("probes") if m.startswith(("opsproof.sandbox", "opsproof.plugin"))} == set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_until_returns_when_true_and_says_what_is_still_wrong() -> None:
    clock = FakeClock()
    wait_until(lambda: clock.now >= 1.0, 5, "ready", interval=0.5, clock=clock, sleep=clock.sleep)
    assert clock.now == 1.0
    with pytest.raises(Expired, match=r"^redis not ready within 2 s$"):
        wait_until(lambda: False, 2, "redis not ready", interval=0.5, clock=clock, sleep=clock.sleep)


def test_wait_until_ends_at_once_on_a_fail_fast_error() -> None:
    def broken() -> bool:
        raise KeyError("gone")

    with pytest.raises(KeyError):
        wait_until(broken, 60, "x", fail_fast=KeyError, clock=FakeClock(), sleep=lambda s: None)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("15min", 900), ("4h", 14400), ("1d", 86400),
                                               ("500ms", 0.5), ("1m30s", 90), ("2", 2), (" 1.5 h ", 5400)])
def test_one_duration_grammar(text: str, seconds: float) -> None:
    assert durations.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5 parsecs", "1x", "m", "-5s"])
def test_a_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration \(write it like 90s, 15m, 4h or 1d\)$"):
        durations.seconds(text)


def test_the_reason_of_an_exception_with_an_empty_message() -> None:
    assert reason(OSError("")) == "OSError"  # the copy in probes/postgres.py raised IndexError here
    assert typed_reason(OSError("")) == "OSError"
    assert typed_reason(OSError("  refused\nDETAIL: more")) == "OSError: refused"


def test_load_knows_neither_the_sandbox_nor_the_plugin() -> None:
    assert {(f, m) for f, m in imports("load") if m.startswith(("opsproof.sandbox", "opsproof.plugin"))} == set()


def test_only_what_locust_loads_imports_locust() -> None:
    """``import locust`` monkey-patches the process with gevent: opsproof's own process must never do it."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "locust" or n.startswith("locust.") for n in names):
                found.add(str(path.relative_to(PACKAGE)))
    assert found == {"load/locust_plugin.py", "load/users.py"}


def test_containers_know_only_the_neutral_helpers() -> None:
    allowed = ("opsproof.util", "opsproof.containers")
    assert {(f, m) for f, m in imports("containers") if not m.startswith(allowed)} == set()
