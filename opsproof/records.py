"""A check's record on its way through pytest: built when its test reports (:mod:`opsproof.report.pipeline`),
carried on the test's user properties (into JUnit XML, and from xdist workers to the controller), and written by the
controller as one JSON line per check (:class:`Recorder`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import pytest

from opsproof.report.records import CheckRecord, parse

KEY = "opsproof"  # the user property that carries a check's record
FLUSH_S = 0.1  # the results file lags at most this far behind the checks reported (see Recorder)


@dataclass(frozen=True)
class Encoded:
    """A record as the text of its user property (secrets masked), and the record itself when masking changed
    nothing: the report hook of the same process then reads it without parsing the text back."""

    text: str
    record: CheckRecord | None


def encode(record: CheckRecord, redact: Callable[[str], str]) -> Encoded:
    """The record as the text of its user property, secrets masked."""
    text = json.dumps(record.carried(), default=str)
    clean = redact(text)
    return Encoded(clean, record if clean == text else None)


def carried(report: pytest.TestReport, known: Encoded | None = None) -> CheckRecord | None:
    """The check's record that a test report carries (the call phase, or a setup that did not pass), completed with
    what only the final report knows: its outcome, and why a check without a result failed; else None.
    ``known``: the record as this process encoded it, if it did (not under xdist, where a worker did)."""
    props = dict(report.user_properties)
    if KEY not in props or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return None
    text = props[KEY]
    record = known.record if known is not None and known.text is text else None
    if record is None:
        record = parse({"test": report.nodeid, "outcome": report.outcome, **json.loads(str(text))},
                       f"{report.nodeid}: user property {KEY!r}")
    if record.has_result:
        same = record.test == report.nodeid and record.outcome == report.outcome  # as the pipeline made it
        return record if same else replace(record, test=report.nodeid, outcome=report.outcome)
    # a failure that governance did not judge (the test's setup errored before a result): its last line
    message = str(report.longrepr).splitlines()[-1][:500] if report.failed and report.longrepr else None
    return replace(record, test=report.nodeid, outcome=report.outcome, message=message,
                   observed=message or f"the test's setup {report.outcome}")


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

    def write(self, record: CheckRecord, redact: Callable[[str], str]) -> None:
        """One record as a line (``CheckRecord.line``), stamped with its environment, run, commit and time."""
        if self.file is None:
            self.file = self._open()
        if self.stamp is None:
            self.stamp = {"environment": self.environment(), "run": self.run, "commit": commit()}
        line = record.line()
        line.update(self.stamp, at=round(time.time(), 3))  # in place: the keys keep the order of a line
        self.file.write(redact(json.dumps(line, default=str, ensure_ascii=False)) + "\n")
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
