"""The time budget: once the gate's time (``--time-budget``) is spent, every unfinished check fails as timed out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opsproof.probes import ProbeSpec, Target
from opsproof.result import Result


class TimedOut(Exception):
    """The gate's time budget ran out before the check finished."""


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


def timed_out(spec: ProbeSpec, target: Target[Any], budget: Budget) -> Result:
    return Result(target=target.id, check=spec.check, ok=False, observed=budget.message,
                  expected=spec.expected(target.config), evidence={"time_budget_s": budget.seconds})
