"""Judge: the go/no-go of a change from its evidence, with every reason.

Per area (gates, post-maintenance, DR drill, chaos, load) the latest record of each check counts: a failure that a
later run fixed is history, not a reason. A change is **no-go** when a counting failure (fail, blocked, timed out) at
or above ``fail_on`` remains, when nothing was recorded at all, or when an area the change requires has no
evidence. Waived failures do not count while their waiver holds; the report lists what each one hides. In a
required post-maintenance area, a value of the baseline diff with nothing to compare (no data) is a no-go too.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from opsproof.report.maintenance import CHECK as DIFF_CHECK
from opsproof.report.policy import AreaRule, Policy, default_policy
from opsproof.report.records import CheckRecord, Verdict
from opsproof.result import Severity

AREAS = {"gates": ("smoke", "post-deploy", "other"), "post-maintenance": ("post-maintenance",),
         "dr-drill": ("dr-drill",), "chaos": ("chaos",), "load": ("load",)}


_AREA_OF = {suite: area for area, suites in AREAS.items() for suite in suites}


def area_of(record: CheckRecord) -> str:
    return _AREA_OF.get(record.suite, "gates")


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
    """The newest record of each check of each environment (by its time; a record without one counts as oldest):
    two clusters' ``http[app]`` are two targets, and one's pass never hides the other's failure."""
    newest: dict[tuple[str, str | None, str, str], CheckRecord] = {}
    for r in records:
        key = (area_of(r), r.environment, r.check, r.target)
        kept = newest.get(key)
        if kept is None or (r.at or 0.0) >= (kept.at or 0.0):
            newest[key] = r
    return list(newest.values())


def _without_duplicated_drills(records: Sequence[CheckRecord]) -> list[CheckRecord]:
    """A drill run from pytest leaves both its records and its document: the document (with RTO/RPO) stands."""
    documented = {(r.environment, r.target) for r in records
                  if r.suite == "dr-drill" and (r.run or "").startswith("drill:")}
    def covered(r: CheckRecord) -> bool:  # a document written before drills named their environment covers any
        return (r.environment, r.target) in documented or (None, r.target) in documented

    return [r for r in records if not (r.suite == "dr-drill" and covered(r) and not (r.run or "").startswith("drill:"))]


def _latest_diffs(records: Sequence[CheckRecord]) -> list[CheckRecord]:
    """Of the post-maintenance diffs, the newest of each environment stands whole: a line an older diff had and the
    newer one has not is not a finding any more (as maintenance.latest shows them)."""
    newest: dict[str | None, CheckRecord] = {}
    for r in records:
        kept = newest.get(r.environment)
        if r.check == DIFF_CHECK and (kept is None or (r.at or 0.0) >= (kept.at or 0.0)):
            newest[r.environment] = r
    return [r for r in records if r.check != DIFF_CHECK or r.test == newest[r.environment].test]


def decide(records: Sequence[CheckRecord], policy: Policy | None = None, now: float | None = None) -> Decision:
    """The go/no-go of the records under ``policy`` (default: the gates required, ``fail_on: high``) at ``now``."""
    policy = policy or default_policy()
    now = time.time() if now is None else now
    current = latest(_latest_diffs(_without_duplicated_drills(records)))
    grouped: dict[str, list[CheckRecord]] = {name: [] for name in AREAS}
    for r in current:
        grouped[area_of(r)].append(r)
    areas = {name: Area(name, tuple(sorted(rs, key=_order))) for name, rs in grouped.items()}
    missing = [name for name, area in areas.items() if not area.records]
    reasons: list[str] = []
    if not current:
        reasons.append("no evidence: no record of any check was found")
    for name, rule in policy.rules().items():
        reasons += _area_reasons(name, rule, areas[name].records, now) if current else []
    fail_on = policy.fail_on
    failing = [r for r in current if r.verdict.counts_as_failure or _expired(r, now)]
    for r in failing:
        if r.severity.rank >= fail_on.rank:
            why = f"waived until {r.waiver.get('expires')}, which has passed" if _expired(r, now) and r.waiver \
                else r.verdict.value
            reasons.append(f"{area_of(r)}: {r.check} {why} ({r.severity.value}) — {r.explain()}")
    return Decision(go=not reasons, reasons=reasons, areas=areas, missing=missing,
                    waived=[r for r in current if r.verdict is Verdict.WAIVED and not _expired(r, now)],
                    below=[r for r in failing if r.severity.rank < fail_on.rank], fail_on=fail_on)


def _area_reasons(name: str, rule: AreaRule, records: Sequence[CheckRecord], now: float) -> list[str]:
    if not records:
        return [f"{name}: required, and no evidence of it was found"]
    reasons = []
    newest = max((r.at for r in records if r.at is not None), default=None)
    if rule.max_age is not None and (newest is None or now - newest > rule.max_age):
        seen = "with no time" if newest is None else f"{_span(now - newest)} old"
        reasons.append(f"{name}: the latest evidence is {seen} (policy: within {_span(rule.max_age)})")
    reasons += [f"{name}: nothing to compare with the baseline {r.evidence.get('label')!r} — {r.explain()}"
                for r in records if r.check == DIFF_CHECK and r.verdict is Verdict.NO_DATA]
    for alert in getattr(rule, "alerts", []):
        proofs = [r for r in records if r.check == "chaos.detection" and r.target == f"alert[{alert}]"]
        fresh = [r for r in proofs if rule.max_age is None or (r.at is not None and now - r.at <= rule.max_age)]
        if not any(r.verdict is Verdict.PASS for r in fresh):
            last = max(proofs, key=lambda r: r.at or 0.0, default=None)
            seen = "never proven" if last is None else f"last {last.verdict.value}: {last.explain()}"
            within = f" within {_span(rule.max_age)}" if rule.max_age is not None else ""
            reasons.append(f"chaos: alert {alert} not proven by an experiment{within} ({seen})")
    return reasons


def _expired(r: CheckRecord, now: float) -> bool:
    """A waived record whose waiver ran out since the run: the failure counts again."""
    if r.verdict is not Verdict.WAIVED or not r.waiver:
        return False
    try:
        expires = dt.date.fromisoformat(str(r.waiver.get("expires")))
    except ValueError:
        return True  # a waiver without a readable date holds nothing
    return dt.datetime.fromtimestamp(now, dt.UTC).date() > expires


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _order(r: CheckRecord) -> tuple[int, int, str, str]:
    """Failures first, most severe first, then by target and check."""
    return (0 if r.verdict.counts_as_failure else 1, -r.severity.rank, r.target, r.check)
