"""The pipeline a check's record goes through, from its test to the results file: collect → waive → judge → gate →
render. structlog's processor chain is the model: each processor takes the record (and the facts of its test) and
returns it, and the next one gets what it returned; the plugin (:mod:`opsproof.plugin`) only calls it.

- **collect** — one :class:`~opsproof.report.records.CheckRecord` from what the check left: its severity and the
  probe's result (or nothing, when the test errored before it had one); the probe's own verdict, pass/fail/no-data.
- **waive** — a check whose test failed (not one that timed out) and that a waiver matches gets that waiver, or,
  expired, the message that its failure counts again (:mod:`opsproof.governance.waivers`).
- **judge** — the check's verdict: waived while a waiver holds; else the judgement made before the test ran
  (:mod:`opsproof.governance.verdict`: timed-out, blocked by a root cause, flaky, or the probe's own).
- **gate** — ``--fail-on`` counts the record: the run's exit status and its summary (:mod:`opsproof.governance.gate`).
- **render** — the record, stamped with its environment, run, commit and time, as one line of ``results.jsonl``
  (secrets masked): the line the report reads back (:func:`opsproof.report.records.parse`).

The first three run where the test ran (an xdist worker, or this process) when its report is made; the record then
travels as the report's user property (JUnit XML keeps it too), and the last two run on the controller.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from opsproof.report.records import CheckRecord, suite_of, without_result
from opsproof.result import Result, Severity, Verdict

if TYPE_CHECKING:  # the governance and the recorder the plugin hands in; the report side imports none of them
    from opsproof.governance import Gate, Judgement, Waivers
    from opsproof.records import Recorder


@dataclass(frozen=True)
class Seen:
    """What pytest knows of a check's test when its record goes through: its id, the phase and outcome of the report,
    and the judgement made before it ran (None: it errored before its check had a result)."""

    nodeid: str
    when: str  # setup | call
    outcome: str  # passed | failed | skipped: the report's (where the test ran: before a waiver makes it xfailed)
    judgement: Judgement | None = None


class Processor(Protocol):
    def __call__(self, record: CheckRecord, seen: Seen) -> CheckRecord: ...


def collect(seen: Seen, severity: Severity) -> CheckRecord:
    """The record of a check from its test: the probe's result, with the probe's own verdict."""
    suite = suite_of(seen.nodeid)
    if seen.judgement is None:
        return CheckRecord(check="setup", target=seen.nodeid, suite=suite, severity=severity,
                           verdict=without_result(seen.outcome),
                           observed=f"the test's setup {seen.outcome}", expected="the check to run",
                           test=seen.nodeid, outcome=seen.outcome, has_result=False)
    res: Result = seen.judgement.result
    # the evidence as its JSON will be (default=str): the record is its JSON's, whichever process reads it
    evidence = json.loads(json.dumps(dict(res.evidence), default=str))
    return CheckRecord(check=res.check, target=res.target, suite=suite, severity=severity, verdict=res.verdict,
                       observed=res.observed, expected=res.expected, evidence=evidence, duration_s=res.duration_s,
                       attempts=res.attempts, test=seen.nodeid, error=res.error, ok=res.ok, outcome=seen.outcome)


@dataclass(frozen=True)
class Waive:
    """A failed check under a waiver: the waiver while it holds; once expired, the message that the failure counts."""

    waivers: Waivers

    def __call__(self, record: CheckRecord, seen: Seen) -> CheckRecord:
        judged = seen.judgement
        if (not record.has_result or judged is None or seen.when != "call" or seen.outcome != "failed"
                or judged.verdict is Verdict.TIMED_OUT):  # a waiver never hides that the gate ran out of time
            return record
        decision = self.waivers.decide(record.key, seen.nodeid)
        if decision is None:
            return record
        if decision.expired:
            return replace(record, waiver_expired=decision.waiver.to_record(), message=decision.expired_message)
        return replace(record, waiver=decision.waiver.to_record())


def judge(record: CheckRecord, seen: Seen) -> CheckRecord:
    """The check's verdict: waived under a waiver that holds, else its judgement's (with blocked-by and flaky)."""
    judged = seen.judgement
    if not record.has_result or judged is None:
        return record
    if record.waiver is not None:  # pytest then reports the failed test as xfailed: skipped
        return replace(record, verdict=Verdict.WAIVED, outcome="skipped", flaky=judged.verdict is Verdict.FLAKY)
    blocked = judged.blocked
    if judged.verdict is record.verdict and blocked is None:
        return record  # the probe's own verdict stands (most checks: no copy of the record)
    return replace(record, verdict=judged.verdict, flaky=judged.verdict is Verdict.FLAKY,
                   blocked_by=blocked.by if blocked else None, root_cause=blocked.root if blocked else None)


@dataclass(frozen=True)
class Gating:
    """``--fail-on``: the gate counts every report of the run (a test that is not a check too: ``record`` None)."""

    gate: Gate

    def __call__(self, record: CheckRecord | None, seen: Seen) -> CheckRecord | None:
        self.gate.observe(seen.nodeid, seen.when, seen.outcome, record)
        return record


@dataclass(frozen=True)
class Render:
    """The record as one line of the results file, stamped and with secrets masked (the record is returned as is)."""

    recorder: Recorder
    redact: Callable[[str], str]

    def __call__(self, record: CheckRecord | None, seen: Seen) -> CheckRecord | None:
        if record is not None:
            self.recorder.write(record, self.redact)
        return record


def run(record: CheckRecord, seen: Seen, processors: Iterable[Processor]) -> CheckRecord:
    for processor in processors:
        record = processor(record, seen)
    return record


@dataclass
class Pipeline:
    """The run's chain: :meth:`at_test` where the test ran (collect → waive → judge), :meth:`at_report` on the
    controller (gate → render)."""

    waivers: Waivers
    gate: Gate
    recorder: Recorder
    redact: Callable[[str], str]
    _judging: tuple[Processor, ...] = field(init=False, repr=False)
    _reporting: tuple[Gating, Render] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._judging = (Waive(self.waivers), judge)
        self._reporting = (Gating(self.gate), Render(self.recorder, self.redact))

    def at_test(self, seen: Seen, severity: Severity) -> CheckRecord:
        """collect → waive → judge: the record its test's report carries."""
        return run(collect(seen, severity), seen, self._judging)

    def at_report(self, seen: Seen, record: CheckRecord | None) -> CheckRecord | None:
        """gate → render, for every test report (``record`` None: not a check's, or a teardown's)."""
        for processor in self._reporting:
            record = processor(record, seen)
        return record


def xfail_reason(record: CheckRecord) -> str | None:
    """What pytest shows for a check a waiver hides (its xfail reason); None when no waiver holds."""
    w = record.waiver
    if w is None or record.verdict is not Verdict.WAIVED:
        return None
    return f"waived: {w['reason']} ({w['owner']}, {w['ticket']}, until {w['expires']})"
