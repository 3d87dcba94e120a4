"""The gate: ``--fail-on=SEVERITY`` decides the run's exit status; failed checks below it are listed, and do not
fail the run. It also writes the run's summary (waived, expired, blocked, flaky, timed out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opsproof.governance.budget import Budget
from opsproof.governance.waivers import Waiver
from opsproof.report.records import CheckRecord
from opsproof.result import Severity, Verdict


@dataclass
class _Failed:
    severity: Severity
    target: str
    check: str

    @property
    def key(self) -> str:
        return f"{self.check}@{self.target}"


@dataclass
class Gate:
    """Reads every test report of the run; decides the exit status under ``--fail-on`` and writes the summary.

    Only a failed opsproof check (call phase, with a severity) below the gate is tolerated: a test that is not
    a check, a setup or teardown error, a collection error always counts.
    """

    fail_on: Severity = Severity.LOW
    budget: Budget = field(default_factory=lambda: Budget(None))
    waivers: Sequence[Waiver] = ()
    counting: list[str] = field(default_factory=list)
    below: list[_Failed] = field(default_factory=list)
    waived: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    expired: list[tuple[str, str, str]] = field(default_factory=list)  # (check, message, waiver pattern)
    flaky: list[tuple[str, int]] = field(default_factory=list)
    blocked: dict[str, list[str]] = field(default_factory=dict)  # blocker target -> checks it blocked
    escalated: dict[str, Severity] = field(default_factory=dict)  # root check@target -> highest it blocked
    timed_out: list[str] = field(default_factory=list)
    waited_for: dict[str, None] = field(default_factory=dict)  # targets of the timed-out checks, in order
    checks: int = 0  # check reports seen; a run without checks (the engine's own tests) gets no summary
    stopped: bool = False  # the run stopped early (-x, --maxfail): nothing is forgiven

    def observe(self, nodeid: str, when: str, outcome: str, record: CheckRecord | None) -> None:
        """One test report: ``record`` is its check's (None for a test that is not a check, or a teardown)."""
        if record is not None:
            self._tally(record)
        if outcome != "failed":
            return
        if when == "call" and record is not None and record.has_result:
            failed = _Failed(record.severity, record.target, record.check)
            if failed.severity.rank < self.fail_on.rank:
                self.below.append(failed)
                return
        self.counting.append(nodeid)

    def _tally(self, record: CheckRecord) -> None:
        """What the summary lists: waived, flaky, blocked (and what each root cause blocks), timed out, expired."""
        self.checks += 1
        if not record.has_result:
            return
        label, verdict = f"{record.target} {record.check}", record.verdict
        if verdict is Verdict.WAIVED and record.waiver is not None:
            self.waived.append((label, dict(record.waiver)))
        elif verdict is Verdict.FLAKY:
            self.flaky.append((label, record.attempts))
        elif verdict is Verdict.BLOCKED and record.blocked_by is not None:
            self.blocked.setdefault(record.blocked_by, []).append(label)
            root = str(record.root_cause)
            if root not in self.escalated or record.severity.rank > self.escalated[root].rank:
                self.escalated[root] = record.severity
        elif verdict is Verdict.TIMED_OUT:
            self.timed_out.append(label)
            self.waited_for[record.target] = None
        if record.waiver_expired is not None:
            self.expired.append((label, str(record.message), str(record.waiver_expired["check"])))

    def failed_collection(self, nodeid: str) -> None:
        self.counting.append(nodeid or "<collection>")

    def _tolerated(self) -> tuple[list[_Failed], list[_Failed]]:
        """Failures below the gate, split into tolerated and those that block checks at or above it."""
        kept: list[_Failed] = []
        escalated: list[_Failed] = []
        for f in self.below:
            blocks = self.escalated.get(f.key)
            (escalated if blocks is not None and blocks.rank >= self.fail_on.rank else kept).append(f)
        return kept, escalated

    def exit_status(self, status: int, *, stopped: bool = False) -> int:
        """``status`` with failures below the gate forgiven: 1 (tests failed) becomes 0 when only they failed.

        Not when the run stopped early (``-x``, ``--maxfail``): the checks after the failure never ran.
        """
        self.stopped = stopped
        kept, escalated = self._tolerated()
        return 0 if status == 1 and kept and not escalated and not self.counting and not stopped else status

    def summary(self) -> list[tuple[str, bool]]:
        """Lines for the terminal summary, each with whether it must stand out (red)."""
        lines: list[tuple[str, bool]] = []
        if not self.checks:
            return lines
        sev = self.fail_on.value
        higher = [s.value for s in Severity if s.rank >= self.fail_on.rank]
        gate = ("any failed check fails the run" if self.fail_on is Severity.LOW
                else f"failed checks of severity {' or '.join(higher)} fail the run")
        lines.append((f"opsproof: gate --fail-on={sev}: {gate}", False))
        kept, escalated = self._tolerated()
        if kept:
            groups = []
            for s in Severity:
                names = [f"{f.target} {f.check}" for f in kept if f.severity is s]
                if names:
                    groups.append(f"{s.value}: {_some(names)}")
            if self.stopped:
                lines.append((f"opsproof: {len(kept)} failed check(s) below --fail-on={sev} ({'; '.join(groups)}) "
                              "still fail this run: it stopped early (-x/--maxfail), later checks did not run", True))
            else:
                lines.append((f"opsproof: {len(kept)} failed check(s) below --fail-on={sev} ({'; '.join(groups)}) "
                              "do not fail the run", False))
        for f in escalated:
            lines.append((f"opsproof: {f.target} {f.check} ({f.severity.value}) fails the run despite "
                          f"--fail-on={sev}: it blocks checks of severity {self.escalated[f.key].value}", True))
        for blocker, checks in self.blocked.items():
            lines.append((f"opsproof: {len(checks)} check(s) blocked by {blocker}: {_some(checks)}", False))
        for label, w in self.waived:
            lines.append((f"opsproof: waived: {label} — {w['reason']} (owner {w['owner']}, ticket {w['ticket']}, "
                          f"until {w['expires']})", False))
        for label, message, _ in self.expired:
            lines.append((f"opsproof: EXPIRED WAIVER: {message} — {label} fails", True))
        used = {w["check"] for _, w in self.waived} | {pattern for _, _, pattern in self.expired}
        unused = [w for w in self.waivers if w.check not in used]
        if unused:
            lines.append((f"opsproof: {len(unused)} waiver(s) matched no failed check in this run: "
                          + _some([f"{w.check} ({w.owner}, {w.ticket})" for w in unused]), False))
        if self.flaky:
            lines.append((f"opsproof: {len(self.flaky)} flaky check(s) passed only after failing: "
                          + _some([f"{label} ({n} attempts)" for label, n in self.flaky]), False))
        if self.timed_out:
            lines.append((f"opsproof: {self.budget.message.removeprefix('timed out: ')}: "
                          f"{len(self.timed_out)} check(s) timed out, on {_some(list(self.waited_for))}", True))
        return lines


def _some(names: Sequence[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")
