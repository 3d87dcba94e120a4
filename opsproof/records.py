"""A check's record: built when its test reports, carried on the test's user properties (into JUnit XML, and
from xdist workers to the controller), and written by the controller as one JSON line per check."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pytest

from opsproof.report.records import SCHEMA, suite_of
from opsproof.result import Result, Severity

KEY = "opsproof"  # the user property that carries a check's record
FLUSH_S = 0.1  # the results file lags at most this far behind the checks reported (see Recorder)


def check_record(severity: Severity, result: Result | None, verdict: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record of a check: its severity, and its result with the governance fields (verdict, blocked_by…)."""
    record: dict[str, Any] = {"severity": severity.value}
    if result is not None:
        record.update(result.to_record())
        record.update(verdict if verdict is not None else {"verdict": result.verdict})
    return record


@dataclass(frozen=True)
class Encoded:
    """A record as the text of its user property (secrets masked), and the record itself when masking changed
    nothing: the report hook of the same process then reads it without parsing the text back."""

    text: str
    record: Mapping[str, Any] | None


def encode(record: Mapping[str, Any], redact: Callable[[str], str]) -> Encoded:
    """The record as the text of its user property, secrets masked."""
    text = json.dumps(record, default=str)
    clean = redact(text)
    return Encoded(clean, record if clean == text else None)


def carried(report: pytest.TestReport, known: Encoded | None = None) -> dict[str, Any] | None:
    """The check's record that a test report carries (the call phase, or a setup that did not pass); else None.
    ``known``: the record as this process encoded it, if it did (not under xdist, where a worker did)."""
    props = dict(report.user_properties)
    if KEY not in props or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return None
    text = props[KEY]
    record = known.record if known is not None and known.text is text and known.record is not None else None
    return {"test": report.nodeid, "outcome": report.outcome, **(record or json.loads(str(text)))}


def with_message(record: dict[str, Any], report: pytest.TestReport) -> dict[str, Any]:
    """A failure that governance did not judge (a failing assertion of the test itself) gets its last line."""
    if report.failed and "verdict" not in record and report.longrepr:
        record["message"] = str(report.longrepr).splitlines()[-1][:500]
    return record


COMMIT_VARIABLES = ("OPSPROOF_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "GIT_COMMIT",
                    "BITBUCKET_COMMIT", "CIRCLE_SHA1")


def commit() -> str | None:
    """The commit under test, as CI systems name it (``OPSPROOF_COMMIT`` first); None where none is set."""
    return next((os.environ[v] for v in COMMIT_VARIABLES if os.environ.get(v)), None)


class Recorder:
    """The run's results file (``--opsproof-record``), opened at the first record and flushed at most every
    :data:`FLUSH_S` (and at the end): a run killed mid-way keeps every record it reported until then. Not after each
    record: while the probe threads run, each flush's system call hands them the GIL, and with 9,000 checks
    reporting in a burst that cost the main thread seconds."""

    def __init__(self, path: Path, run: str, environment: Callable[[], str | None] = lambda: None) -> None:
        self.path = path
        self.run = run  # which run wrote the records: several runs' files merge into one report
        self.environment = environment  # the inventory's name, asked for at the first record
        self.stamp: dict[str, Any] | None = None
        self.file: TextIO | None = None
        self.flushed = 0.0

    def write(self, record: Mapping[str, Any], redact: Callable[[str], str]) -> None:
        """One record, versioned and stamped with its suite, environment, run and time (opsproof.report.records)."""
        if self.file is None:
            self.file = self._open()
        if self.stamp is None:
            self.stamp = {"schema": SCHEMA, "environment": self.environment(), "run": self.run, "commit": commit()}
        stamped = {**self.stamp, "suite": suite_of(str(record.get("test", ""))), "at": round(time.time(), 3),
                   **record}
        self.file.write(redact(json.dumps(stamped, default=str, ensure_ascii=False)) + "\n")
        now = time.monotonic()
        if now - self.flushed >= FLUSH_S:
            self.file.flush()
            self.flushed = now

    def _open(self) -> TextIO:
        """A new results file, also kept as ``runs/RUN.jsonl`` beside it (a hard link: the same file, no second
        write), so the next run's results file replaces this one's name, never its records."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)  # a new file: the last run's stays whole under runs/
        handle = self.path.open("w", encoding="utf-8")
        runs = self.path.parent / "runs"
        try:
            runs.mkdir(exist_ok=True)
            os.link(self.path, runs / f"{self.run}.jsonl")
        except OSError:  # a filesystem without hard links: the report reads results.jsonl alone
            pass
        return handle

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
