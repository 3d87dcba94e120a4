"""The opsproof control marks the fault when a method action of another provider ends (a Chaos Toolkit `process`
action, an HTTP call): such an action marks nothing itself, and timings would start at the first probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opsproof.chaos import control, timeline

PROCESS = {"type": "action", "name": "stop-db",
           "provider": {"type": "process", "path": "docker", "arguments": "stop db"}}
OURS = {"type": "action", "name": "kill-redis",
        "provider": {"type": "python", "module": "opsproof.chaos.faults", "func": "kill_service"}}
OK, FAILED = {"status": "succeeded"}, {"status": "failed"}


@pytest.fixture(autouse=True)
def fresh_run() -> Iterator[None]:
    timeline.reset()
    control.after_method_control({})
    yield
    timeline.reset()
    control.after_method_control({})


def faults() -> list[dict[str, Any]]:
    return [m for m in timeline.marks() if m["event"] == "fault_injected"]


def test_the_end_of_another_providers_method_action_is_the_fault() -> None:
    control.before_method_control({})
    control.after_activity_control(PROCESS, OK)
    [mark] = faults()
    assert mark["fault"] == "stop-db (a process action)"
    assert mark["by"] == "the opsproof control, when the action ended"
    control.after_activity_control({**PROCESS, "name": "restart-db"}, OK)  # a later action is no second fault
    assert len(faults()) == 1


@pytest.mark.parametrize(("activity", "state", "in_method"), [
    (PROCESS, OK, False),  # the steady-state hypothesis, the rollbacks
    (PROCESS, FAILED, True),  # it did nothing, or not all of it
    ({**PROCESS, "background": True}, OK, True),  # it ends after, not with, its fault
    ({**PROCESS, "type": "probe"}, OK, True),  # probes look; they inject nothing
    (OURS, OK, True),  # opsproof's faults mark themselves (their traffic and warm-ups are no fault)
], ids=["outside the method", "failed", "background", "a probe", "opsproof's own"])
def test_what_is_not_marked(activity: dict[str, Any], state: dict[str, Any], in_method: bool) -> None:
    if in_method:
        control.before_method_control({})
    control.after_activity_control(activity, state)
    assert faults() == []
