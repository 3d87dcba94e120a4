"""What every probe shares: its declaration, the target it checks, and how to run it safely.

A probe is a plain function ``fn(target, conns) -> Outcome`` declared with :func:`probe`, which records the
check id, the inventory kind it applies to, its default severity, the runbook command it replaces, the expected
text and whether it is the kind's reachability check. The body says only what it saw (:class:`Outcome`);
:func:`run` times it and builds the :class:`~opsproof.result.Result` from the declaration, so the check id and the
expected text of a reached target and of an unreachable one are the same by construction.
Probes know nothing of pytest or of the environment they talk to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from opsproof.inventory import Kind
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Deadline, Finding, within
from opsproof.result import Result, Severity, unreachable

C = TypeVar("C")


@dataclass(frozen=True, repr=False)
class Target(Generic[C]):
    """One inventory entry: ``Target("redis", "cache", Redis(...))`` → id ``redis[cache]``; or one named item of an
    entry (``part``: its word and name, ``config`` the item's, bound to its entry): ``prometheus[main] query p95``.

    Its repr is its id and nothing of its configuration (DSNs, URLs, headers): a target reaches output as a pytest
    parameter — Allure's parameters, ``--setup-show``, the locals ``-l`` prints — where no redactor runs."""

    kind: Kind
    name: str
    config: C
    part: tuple[str, str] | None = None  # ("query", "p95") for a named item of the entry

    @property
    def id(self) -> str:
        return f"{self.kind}[{self.name}]" + (f" {self.part[0]} {self.part[1]}" if self.part else "")

    @property
    def entry(self) -> Target[Any]:
        """The inventory entry itself (an item's entry: the one it is reached, blocked and depends on as)."""
        return self if self.part is None else Target(self.kind, self.name, cast(Any, self.config).entry)

    def __repr__(self) -> str:
        return f"Target({self.id})"


@dataclass(frozen=True)
class Outcome:
    """What a probe body saw: pass/fail/no verdict (``None``, the reason in ``observed``) and the raw evidence.
    The check id, the expected text and the duration come from the declaration and :func:`run`."""

    ok: bool | None
    observed: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


ProbeFn = Callable[[Target[Any], Connections], Outcome]


def _always(_cfg: Any) -> bool:
    return True


@dataclass(frozen=True)
class ProbeSpec:
    check: str
    kind: Kind
    severity: Severity
    replaces: str
    fn: ProbeFn
    expected: Callable[[Any], str]  # the one expected text, from the entry's configuration
    applies: Callable[[Any], bool] = _always
    root: bool = False  # the kind's reachability check: when it fails, the target's other checks are blocked
    each: tuple[str, Callable[[Any], Mapping[str, Any]]] | None = None  # one check per named item of an entry

    def targets(self, name: str, config: Any) -> list[Target[Any]]:
        """What this check runs on for the entry ``name``: the entry, or (``each``) each of its named items."""
        if self.each is None:
            return [Target(self.kind, name, config)]
        word, items = self.each
        return [Target(self.kind, name, item, (word, key)) for key, item in items(config).items()]

    def __call__(self, target: Target[Any], conns: Connections) -> Result:
        return run(self, target, conns)


def probe(
    check: str,
    kind: Kind,
    severity: Severity,
    replaces: str,
    *,
    expected: Callable[[Any], str],
    applies: Callable[[Any], bool] | None = None,
    root: bool = False,
    each: tuple[str, Callable[[Any], Mapping[str, Any]]] | None = None,
) -> Callable[[ProbeFn], ProbeSpec]:
    """Declare a probe. ``expected(config)`` is its expected text; ``applies(config)`` says whether the entry
    configures this check; ``root`` marks the kind's reachability check; ``each=(word, items)`` makes it one check
    per named item of an entry (``items(entry config)`` → {name: item config}), whose ``config`` is the item's."""

    def wrap(fn: ProbeFn) -> ProbeSpec:
        spec = ProbeSpec(check, kind, severity, replaces, fn, expected, applies or _always, root, each)
        spec.__dict__["__doc__"] = fn.__doc__
        return spec

    return wrap


def run(spec: ProbeSpec, target: Target[Any], conns: Connections) -> Result:
    """Run a probe once, timed, within its entry's ``timeout_s`` in total (:mod:`opsproof.probes.deadline`); any
    exception becomes a failed result with a one-line reason, never a traceback."""
    start = time.perf_counter()
    with within(getattr(target.config, "timeout_s", None)) as deadline:
        try:
            outcome = spec.fn(target, conns)
        except Exception as exc:  # a probe must never raise: the reason is the finding
            return failed(target.id, spec.check, spec.expected(target.config), exc, deadline,
                          time.perf_counter() - start)
    duration = time.perf_counter() - start
    return Result(target.id, spec.check, outcome.ok, outcome.observed, spec.expected(target.config),
                  outcome.evidence, duration)


def failed(target: str, check: str, expected: str, exc: Exception, deadline: Deadline, duration_s: float) -> Result:
    """The result of a check that raised: the deadline's finding when it is what ended the check, a
    :class:`~opsproof.probes.deadline.Finding`'s own, else the exception's reason."""
    if deadline.ended_check() and not isinstance(exc, Finding):
        exc = Finding(deadline.describe(), deadline.evidence())
    if isinstance(exc, Finding):
        return Result(target, check, False, str(exc), expected, exc.evidence, duration_s, error=str(exc))
    return unreachable(target, check, expected, exc, duration_s)
