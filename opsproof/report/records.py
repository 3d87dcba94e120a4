"""The one record every suite writes and the report reads: a check's verdict with what was seen and expected.

A record is a JSON object (one line of ``results.jsonl``, written by the plugin through
:mod:`opsproof.report.pipeline`, or one built from a drill, chaos or load document by :mod:`opsproof.report.collect`).
It is versioned (``schema``) and validated when read: a record the report cannot use is an error naming the file,
the line and the key, never a silent gap in the evidence. :meth:`CheckRecord.line` writes the keys in the order the
results file has always had them, so ``parse`` then ``line`` gives back the line the plugin wrote, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from opsproof.result import Severity
from opsproof.result import Verdict as Verdict  # the enum lives beside Severity; the report imports it from here

SCHEMA = 1


class RecordError(ValueError):
    """A record the report cannot use: where it is, and what is wrong with it."""


SUITES = {"smoke": "smoke", "post_deploy": "post-deploy", "post_maintenance": "post-maintenance",
          "dr_drill": "dr-drill", "chaos": "chaos", "load": "load"}


def suite_of(test: str) -> str:
    """The suite of a test from its node id: ``checks/post_deploy/test_01.py::…`` → ``post-deploy``."""
    parts = test.split("::", 1)[0].replace("\\", "/").split("/")
    for part in parts:
        if part in SUITES:
            return SUITES[part]
    return "other"


@dataclass(frozen=True)
class CheckRecord:
    """One check's verdict, whatever suite produced it."""

    check: str  # "http.health", "drill.restore", "chaos.experiment", "load.threshold"
    target: str  # "http[app]"
    suite: str
    severity: Severity
    verdict: Verdict
    observed: str
    expected: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    attempts: int = 1
    test: str = ""  # the pytest node id, or the evidence file it came from
    environment: str | None = None
    run: str | None = None  # which run wrote it (several runs merge into one report)
    at: float | None = None  # when it was recorded (Unix time)
    commit: str | None = None  # the commit under test, where the run knew it (CI's variables, OPSPROOF_COMMIT)
    waiver: Mapping[str, Any] | None = None  # the waiver that holds (the results file's key "waived")
    blocked_by: str | None = None
    error: str | None = None
    schema: int = SCHEMA
    ok: bool | None = None  # the probe's own answer (True pass, False fail, None no verdict)
    outcome: str | None = None  # the test's outcome as pytest reported it: passed, failed, skipped
    message: str | None = None  # why a check without a result failed; why an expired waiver's check fails again
    flaky: bool = False  # passed only after failing (kept when a waiver then hides the test's own failure)
    root_cause: str | None = None  # blocked: the failed reachability check, "postgres.ready@postgres[main]"
    waiver_expired: Mapping[str, Any] | None = None  # the waiver that matched, expired: the failure counts
    has_result: bool = True  # False: the test errored (or was skipped) before its check had a result

    @property
    def key(self) -> str:
        return f"{self.check}@{self.target}"

    def explain(self) -> str:
        if self.verdict in (Verdict.PASS, Verdict.FLAKY):
            return f"{self.target}: {self.observed} (expected {self.expected})"
        return f"{self.target}: {self.observed}, expected {self.expected}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"], data["verdict"] = self.severity.value, self.verdict.value
        return data

    def carried(self) -> dict[str, Any]:
        """The check's own keys, as its test's report carries them (a user property: JUnit XML, xdist)."""
        data: dict[str, Any] = {"severity": self.severity.value}
        if self.has_result:
            data.update(target=self.target, check=self.check, ok=self.ok, observed=self.observed,
                        expected=self.expected, evidence=self.evidence, duration_s=self.duration_s,
                        attempts=self.attempts, error=self.error, verdict=self.verdict.value)
            if self.flaky:
                data["flaky"] = True
            if self.blocked_by is not None:
                data.update(blocked_by=self.blocked_by, root_cause=self.root_cause)
            if self.waiver_expired is not None:
                data["waiver_expired"] = self.waiver_expired
        if self.message is not None:
            data["message"] = self.message
        if self.waiver is not None:
            data["waived"] = self.waiver
        return data

    def line(self) -> dict[str, Any]:
        """The record as one line of ``results.jsonl`` (before JSON): the run's stamp, then the check's keys."""
        return {"schema": self.schema, "environment": self.environment, "run": self.run, "commit": self.commit,
                "suite": self.suite, "at": self.at, "test": self.test, "outcome": self.outcome, **self.carried()}


def without_result(outcome: str | None) -> Verdict:
    """The verdict of a check whose test ended before it had a result: failed (an error in its setup), or, skipped
    (``@pytest.mark.skip``, a ``skipif``), no verdict — as the gate does not count it, neither does the report."""
    return Verdict.NO_DATA if outcome in ("skipped", "passed") else Verdict.FAIL


def parse(data: object, where: str) -> CheckRecord:
    """A record from its JSON form (``results.jsonl``'s keys), or :class:`RecordError` naming ``where`` and the key."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: a record is a JSON object, found {type(data).__name__}")
    schema = data.get("schema", SCHEMA)  # results files written before records were versioned are schema 1
    if schema != SCHEMA:
        raise RecordError(f"{where}: schema {schema!r} is not one this opsproof reads (it reads schema {SCHEMA}): "
                          "report with the opsproof version that wrote it")

    def text(key: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            missing = "missing" if key not in data else f"{type(value).__name__}, not text"
            raise RecordError(f"{where}: key {key!r}: {missing}")
        return value

    def choice(key: str, kind: type[StrEnum], default: str | None = None) -> Any:
        value = text(key, default)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(v.value for v in kind)
            raise RecordError(f"{where}: key {key!r}: {value!r} is not one of {allowed}") from None

    def optional(key: str, *kinds: type) -> Any:
        value = data.get(key)
        if value is not None and not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise RecordError(f"{where}: key {key!r}: {type(value).__name__}, not {wanted}")
        return value

    test = text("test", "")
    outcome, message = optional("outcome", str), optional("message", str)
    stamp = {"environment": data.get("environment"), "run": data.get("run"), "at": data.get("at"),
             "commit": data.get("commit"), "outcome": outcome, "message": message}
    if "check" not in data:  # a check that errored (or was skipped) before it had a result
        return CheckRecord(check="setup", target=test or "?", suite=text("suite", suite_of(test)),
                           severity=choice("severity", Severity, "high"), verdict=without_result(outcome),
                           observed=message or f"the test's setup {outcome or 'failed'}",
                           expected="the check to run", test=test, has_result=False, **stamp)
    verdict = choice("verdict", Verdict)
    waiver = data.get("waived")
    evidence = data.get("evidence", {})
    if not isinstance(evidence, dict):
        raise RecordError(f"{where}: key 'evidence': {type(evidence).__name__}, not an object")
    duration, attempts = data.get("duration_s", 0.0), data.get("attempts", 1)
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        raise RecordError(f"{where}: key 'duration_s': {type(duration).__name__}, not a number of seconds")
    if not isinstance(attempts, int) or isinstance(attempts, bool):
        raise RecordError(f"{where}: key 'attempts': {type(attempts).__name__}, not a whole number")
    return CheckRecord(
        check=text("check"), target=text("target"), suite=text("suite", suite_of(test)),
        severity=choice("severity", Severity), verdict=verdict, observed=text("observed", ""),
        expected=text("expected", ""), evidence=evidence, duration_s=duration, attempts=attempts, test=test,
        waiver=waiver if isinstance(waiver, dict) else None, blocked_by=optional("blocked_by", str),
        error=optional("error", str), ok=optional("ok", bool), flaky=bool(optional("flaky", bool)),
        root_cause=optional("root_cause", str), waiver_expired=optional("waiver_expired", dict), **stamp)


def read_jsonl(path: Path) -> Iterator[CheckRecord]:
    """Every record of a results file, each validated (``RecordError`` names ``file:line``)."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                if number > 1 and not line.endswith("\n"):  # the last line of a run killed mid-write
                    raise RecordError(f"{where}: the line is cut off (the run was killed while writing it)") from None
                raise RecordError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
            yield parse(data, where)
