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
from opsproof.result import Result, Verdict


@dataclass(frozen=True)
class Judgement:
    """A check's verdict before its test runs (a blocked check is skipped); the report pipeline's judge
    (:mod:`opsproof.report.pipeline`) then makes it its record's, or waived once the test failed under a waiver."""

    result: Result
    verdict: Verdict  # pass, fail, no-data, flaky, blocked, timed-out
    blocked: Blocked | None = None


def judge(spec: ProbeSpec, target: Target[Any], fetch: Fetch, inventory: Inventory, budget: Budget,
          reported: Container[str] = frozenset()) -> Judgement:
    """The verdict of one check: its result, then timed-out, blocked or flaky where they apply."""
    try:
        result = fetch(spec, target)
    except TimedOut as e:
        return Judgement(timed_out(spec, target, budget, e.waiting), Verdict.TIMED_OUT)
    if result.ok is False:
        blocker = find_blocker(spec, target, result, inventory, fetch, reported)
        return Judgement(result, Verdict.BLOCKED, blocker) if blocker else Judgement(result, Verdict.FAIL)
    if is_flaky(result, getattr(target.config, "retry", None)):
        return Judgement(result, Verdict.FLAKY)
    return Judgement(result, result.verdict)
