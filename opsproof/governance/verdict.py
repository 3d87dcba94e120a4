"""One check's verdict: its result, then timed-out, blocked or flaky where they apply."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from opsproof.governance.blocking import Blocked, Fetch, find_blocker
from opsproof.governance.budget import Budget, TimedOut, timed_out
from opsproof.governance.retry import is_flaky
from opsproof.inventory import Inventory
from opsproof.probes import ProbeSpec, Target
from opsproof.result import Result


@dataclass(frozen=True)
class Judgement:
    result: Result
    verdict: str  # pass, fail, no-data, flaky, blocked, timed-out (waived is decided once the test has failed)
    blocked: Blocked | None = None

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"verdict": self.verdict}
        if self.verdict == "flaky":
            record["flaky"] = True
        if self.blocked is not None:
            record.update(blocked_by=self.blocked.by, root_cause=self.blocked.root)
        return record


def judge(spec: ProbeSpec, target: Target[Any], fetch: Fetch, inventory: Inventory, budget: Budget,
          reported: Container[str] = frozenset()) -> Judgement:
    """The verdict of one check: its result, then timed-out, blocked or flaky where they apply."""
    try:
        result = fetch(spec, target)
    except TimedOut as e:
        return Judgement(timed_out(spec, target, budget, e.waiting), "timed-out")
    if result.ok is False:
        blocker = find_blocker(spec, target, result, inventory, fetch, reported)
        return Judgement(result, "blocked", blocker) if blocker else Judgement(result, "fail")
    if is_flaky(result, getattr(target.config, "retry", None)):
        return Judgement(result, "flaky")
    return Judgement(result, result.verdict)
