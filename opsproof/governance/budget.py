"""The time budget: once the gate's time (``--time-budget``) is spent, every check whose result is not ready fails
as timed out, saying what it was waiting for; a check whose result is ready keeps its verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opsproof.probes import ProbeSpec, Target
from opsproof.result import Result


@dataclass(frozen=True)
class Waiting:
    """What an unfinished check was waiting for when the budget ran out: its target, where that is (secrets
    masked), and how long the probe had been running — or, never started, how many checks it was queued behind."""

    target: str  # http[api]
    address: str  # http://api:8080, redis://:***@cache:6379/0
    running_s: float | None  # None: the probe never started
    behind: int = 0  # never started: the unfinished checks ahead of it

    def describe(self) -> str:
        where = f"{self.target} ({self.address})" if self.address else self.target
        if self.running_s is None:
            return f"{where} never started (queued behind {self.behind} check{'' if self.behind == 1 else 's'})"
        return f"still waiting for {where}, running for {self.running_s:.1f} s"

    def evidence(self) -> dict[str, Any]:
        found: dict[str, Any] = {"waiting_for": self.target, "address": self.address}
        if self.running_s is None:
            return {**found, "started": False, "queued_behind": self.behind}
        return {**found, "started": True, "running_s": round(self.running_s, 3)}


class TimedOut(Exception):
    """The gate's time budget ran out before the check finished (``waiting``: what it was waiting for)."""

    def __init__(self, waiting: Waiting | None = None) -> None:
        super().__init__(waiting.describe() if waiting else "the time budget is spent")
        self.waiting = waiting


@dataclass(frozen=True)
class Budget:
    """The gate's time budget for the whole run (``--time-budget``); ``seconds=None`` is no budget."""

    seconds: float | None
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        return None if self.seconds is None else max(0.0, self.start + self.seconds - time.monotonic())

    def exhausted(self) -> bool:
        return self.seconds is not None and time.monotonic() >= self.start + self.seconds

    @property
    def message(self) -> str:
        return f"timed out: the gate's time budget of {self.seconds:g} s was exhausted"


def timed_out(spec: ProbeSpec, target: Target[Any], budget: Budget, waiting: Waiting | None = None) -> Result:
    observed = f"{budget.message}: {waiting.describe()}" if waiting else budget.message
    evidence = {"time_budget_s": budget.seconds, **(waiting.evidence() if waiting else {})}
    return Result(target=target.id, check=spec.check, ok=False, observed=observed,
                  expected=spec.expected(target.config), evidence=evidence)
