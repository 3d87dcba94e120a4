"""Blocked-by: when a target (or an entry it ``depends_on``) is down, its other failing checks are reported as
blocked by it: one root cause, not twenty failures. The root cause itself still fails."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from opsproof.governance.budget import TimedOut
from opsproof.inventory import KINDS, Inventory, Kind
from opsproof.probes import ALL, ProbeSpec, Target
from opsproof.result import Result

# the check that says whether a target is reachable at all, per kind
REACHABILITY: dict[Kind, str] = {spec.kind: spec.check for spec in ALL if spec.root}  # declared: @probe(root=True)
_SPECS = {spec.check: spec for spec in ALL}


def root_spec(kind: Kind) -> ProbeSpec | None:
    """The reachability probe of a kind (None for kinds without one yet)."""
    check = REACHABILITY.get(kind)
    return _SPECS.get(check) if check else None


@dataclass(frozen=True)
class Blocked:
    by: str  # the target that is down: "postgres[main]"
    root: str  # its failed reachability check: "postgres.ready@postgres[main]"
    observed: str  # what that check saw: "unreachable (OperationalError: …)"

    @property
    def reason(self) -> str:
        return f"blocked by {self.by}: {self.observed}"


Fetch = Callable[[ProbeSpec, Target[Any]], Result]  # a probe's result (raises TimedOut when the budget is spent)


def _dependency(inventory: Inventory, ref: str) -> Target[Any] | None:
    kind = next((k for k in KINDS if k == ref.partition(".")[0]), None)
    name = ref.partition(".")[2]
    return Target(kind, name, inventory.targets(kind)[name]) if kind and name in inventory.targets(kind) else None


def _dependencies(target: Target[Any]) -> list[str]:
    """``depends_on``, and for an SLO the Prometheus it is read from."""
    refs = list(getattr(target.config, "depends_on", []))
    if target.kind == "slo":
        refs.append(f"prometheus.{target.config.prometheus}")
    return refs


def _root_result(target: Target[Any], fetch: Fetch, reported: Container[str]) -> tuple[ProbeSpec, Result] | None:
    """The target's reachability check and its result — only when this run reports that check: a root cause
    the run does not show as failed (deselected, say) must not turn the checks it would block into skips."""
    spec = root_spec(target.kind)
    if spec is None or not spec.applies(target.config) or f"{spec.check}@{target.id}" not in reported:
        return None
    try:
        return spec, fetch(spec, target)
    except TimedOut:
        return None


def _down(target: Target[Any], fetch: Fetch, reported: Container[str]) -> tuple[ProbeSpec, Result] | None:
    """The target's reachability check and its result when that check failed in this run."""
    found = _root_result(target, fetch, reported)
    return found if found is not None and found[1].ok is False else None


def _down_dependencies(target: Target[Any], inventory: Inventory, fetch: Fetch,
                       reported: Container[str]) -> list[tuple[Target[Any], tuple[ProbeSpec, Result]]]:
    out = []
    for ref in _dependencies(target):
        dep = _dependency(inventory, ref)
        down = _down(dep, fetch, reported) if dep is not None and dep.id != target.id else None
        if dep is not None and down is not None:
            out.append((dep, down))
    return out


def _real_failure(target: Target[Any], inventory: Inventory, fetch: Fetch, reported: Container[str],
                  ) -> Blocked | None:
    """The failed reachability check that a down ``target``'s chain of down dependencies ends in: the first
    *sink* it leads to — a down target none of whose dependencies is down. A sink's reachability check always
    fails (nothing can block it); so does that of a down target that leads to no sink (a ``depends_on`` cycle
    that slipped past the inventory), which is why blocking never goes round in a circle."""
    stack = list(reversed(_down_dependencies(target, inventory, fetch, reported)))
    seen = {target.id, *(dep.id for dep, _ in stack)}
    while stack:
        current, (spec, result) = stack.pop()
        deps = _down_dependencies(current, inventory, fetch, reported)
        if not deps:
            return Blocked(current.id, f"{spec.check}@{current.id}", result.observed)
        stack.extend(dep for dep in reversed(deps) if dep[0].id not in seen)
        seen.update(dep.id for dep, _ in deps)
    return None


def _blocked_by_down(target: Target[Any], down: tuple[ProbeSpec, Result], inventory: Inventory, fetch: Fetch,
                     reported: Container[str]) -> Blocked:
    """A check blocked by the down ``target``: by the real failure its chain ends in, or by ``target`` itself
    when it leads to none (then its reachability check is not blocked: it fails)."""
    spec, result = down
    return (_real_failure(target, inventory, fetch, reported)
            or Blocked(target.id, f"{spec.check}@{target.id}", result.observed))


def find_blocker(spec: ProbeSpec, target: Target[Any], result: Result, inventory: Inventory, fetch: Fetch,
                 reported: Container[str]) -> Blocked | None:
    """What a failed check is blocked by, if anything: always a reachability check that fails in this run.

    (a) the same target: the check failed as unreachable and so did the target's reachability check;
    (b) ``depends_on``: the reachability check of an entry this one depends on failed.
    The reachability check itself is blocked only by a sink its dependencies lead to (:func:`_real_failure`),
    so the root cause of every blocked check fails, whatever the order the checks are judged in.
    ``reported`` holds the ``check@target`` of every check this run reports: only those can be root causes.
    """
    if result.ok is not False:
        return None
    target = target.entry  # a named query is blocked as its entry is
    root = root_spec(target.kind)
    if root is not None and root.check == spec.check:
        return _real_failure(target, inventory, fetch, reported)
    if result.error and root is not None:
        found = _down(target, fetch, reported)
        if found is not None and found[1].error:
            return _blocked_by_down(target, found, inventory, fetch, reported)
    deps = _down_dependencies(target, inventory, fetch, reported)
    return _blocked_by_down(*deps[0], inventory, fetch, reported) if deps else None
