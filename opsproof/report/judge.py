"""Judge: the go/no-go of a change from its evidence, with every reason.

Per area (gates, post-maintenance, DR drill, chaos, load) the latest record of each check counts: a failure that a
later run fixed is history, not a reason. A change is **no-go** when a counting failure (fail, blocked, timed out) at
or above ``fail_on`` remains, when nothing was recorded at all, or when an area the change requires has no
evidence. Waived failures do not count while their waiver holds; the report lists what each one hides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from opsproof.report.records import CheckRecord, Verdict
from opsproof.result import Severity

AREAS = {"gates": ("smoke", "post-deploy", "other"), "post-maintenance": ("post-maintenance",),
         "dr-drill": ("dr-drill",), "chaos": ("chaos",), "load": ("load",)}


def area_of(record: CheckRecord) -> str:
    return next((area for area, suites in AREAS.items() if record.suite in suites), "gates")


@dataclass(frozen=True)
class Area:
    name: str
    records: tuple[CheckRecord, ...]  # the latest record of each check

    def count(self, *verdicts: Verdict) -> int:
        return sum(1 for r in self.records if r.verdict in verdicts)


@dataclass
class Decision:
    go: bool
    reasons: list[str]  # why no-go (empty when go)
    areas: dict[str, Area]
    missing: list[str]  # areas without evidence
    waived: list[CheckRecord] = field(default_factory=list)
    below: list[CheckRecord] = field(default_factory=list)  # failures under fail_on: listed, not counted
    fail_on: Severity = Severity.HIGH


def latest(records: Iterable[CheckRecord]) -> list[CheckRecord]:
    """The newest record of each check (by its time; a record without one counts as oldest)."""
    newest: dict[tuple[str, str, str], CheckRecord] = {}
    for r in records:
        key = (area_of(r), r.check, r.target)
        kept = newest.get(key)
        if kept is None or (r.at or 0.0) >= (kept.at or 0.0):
            newest[key] = r
    return list(newest.values())


def _without_duplicated_drills(records: Sequence[CheckRecord]) -> list[CheckRecord]:
    """A drill run from pytest leaves both its records and its document: the document (with RTO/RPO) stands."""
    documented = {r.target for r in records if r.suite == "dr-drill" and (r.run or "").startswith("drill:")}
    return [r for r in records if not (r.suite == "dr-drill" and r.target in documented
                                       and not (r.run or "").startswith("drill:"))]


def decide(records: Sequence[CheckRecord], fail_on: Severity = Severity.HIGH,
           require: Sequence[str] = ("gates",)) -> Decision:
    current = latest(_without_duplicated_drills(records))
    areas = {name: Area(name, tuple(sorted((r for r in current if area_of(r) == name), key=_order)))
             for name in AREAS}
    missing = [name for name, area in areas.items() if not area.records]
    reasons: list[str] = []
    if not current:
        reasons.append("no evidence: no record of any check was found")
    for name in require:
        if name in missing and current:
            reasons.append(f"{name}: required, and no evidence of it was found")
    failing = [r for r in current if r.verdict.counts_as_failure]
    counted = [r for r in failing if r.severity.rank >= fail_on.rank]
    for r in counted:
        reasons.append(f"{area_of(r)}: {r.check} {r.verdict.value} ({r.severity.value}) — {r.explain()}")
    return Decision(go=not reasons, reasons=reasons, areas=areas, missing=missing,
                    waived=[r for r in current if r.verdict is Verdict.WAIVED],
                    below=[r for r in failing if r.severity.rank < fail_on.rank], fail_on=fail_on)


def _order(r: CheckRecord) -> tuple[int, int, str, str]:
    """Failures first, most severe first, then by target and check."""
    return (0 if r.verdict.counts_as_failure else 1, -r.severity.rank, r.target, r.check)
