"""What every probe shares: its declaration, the target it checks, and how to run it safely.

A probe is a plain function ``fn(target, conns) -> Result`` declared with :func:`probe`, which records the
check id, the inventory kind it applies to, its default severity and the runbook command it replaces.
Probes know nothing of pytest or of the environment they talk to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opsproof.inventory import Kind
from opsproof.probes.connections import Connections
from opsproof.result import Result, Severity, unreachable

C = TypeVar("C")


@dataclass(frozen=True)
class Target(Generic[C]):
    """One inventory entry: ``Target("redis", "cache", Redis(...))`` → id ``redis[cache]``."""

    kind: Kind
    name: str
    config: C

    @property
    def id(self) -> str:
        return f"{self.kind}[{self.name}]"


ProbeFn = Callable[[Target[Any], Connections], Result]


@dataclass(frozen=True)
class ProbeSpec:
    check: str
    kind: Kind
    severity: Severity
    replaces: str
    fn: ProbeFn
    applies: Callable[[Any], bool] = field(default=lambda _cfg: True)
    expected: Callable[[Any], str] = field(default=lambda _cfg: "a healthy answer")

    def __call__(self, target: Target[Any], conns: Connections) -> Result:
        return run(self, target, conns)


def probe(
    check: str,
    kind: Kind,
    severity: Severity,
    replaces: str,
    *,
    applies: Callable[[Any], bool] | None = None,
    expected: Callable[[Any], str] | None = None,
) -> Callable[[ProbeFn], ProbeSpec]:
    """Declare a probe. ``applies(config)`` says whether the entry configures this check."""

    def wrap(fn: ProbeFn) -> ProbeSpec:
        spec = ProbeSpec(check, kind, severity, replaces, fn)
        if applies is not None:
            object.__setattr__(spec, "applies", applies)
        if expected is not None:
            object.__setattr__(spec, "expected", expected)
        spec.__dict__["__doc__"] = fn.__doc__
        return spec

    return wrap


def run(spec: ProbeSpec, target: Target[Any], conns: Connections) -> Result:
    """Run a probe; any exception becomes a failed result with a one-line reason, never a traceback."""
    start = time.perf_counter()
    try:
        return spec.fn(target, conns)
    except Exception as exc:  # a probe must never raise: the reason is the finding
        return unreachable(target.id, spec.check, spec.expected(target.config), exc, time.perf_counter() - start)
