"""``logs.errors`` on real files: the window judged by the lines' own timestamps, rotation (``app.log.1``), a
file read from its end, and a misconfigured timestamp that judges nothing (a failure, never a green check)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path

import pytest

from opsproof.inventory import InventoryError, loads
from opsproof.probes import Connections, Target, logs
from opsproof.result import Result


def iso(seconds_ago: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check(path: Path, extra: str = "") -> Result:
    inv = loads(f"environment: t\nlogs:\n  app: {{path: '{path}', window: 10m, max_matches: 2{extra}}}\n")
    with Connections() as conns:
        return logs.errors(Target("logs", "app", inv.logs["app"]), conns)


def write(path: Path, *lines: str, mtime_ago: float | None = None) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    if mtime_ago is not None:
        os.utime(path, (time.time() - mtime_ago,) * 2)
    return path


def test_errors_within_the_ceiling_pass(tmp_path: Path) -> None:
    log = write(tmp_path / "app.log", f"{iso(3600)} ERROR old, outside the window", f"{iso(3600)} ERROR old too",
                f"{iso(3600)} ERROR and again", f"{iso(60)} INFO ok", f"{iso(30)} ERROR one recent")
    result = check(log)
    assert result.ok is True, result.explain()
    assert result.observed == f"1 line matching ERROR in the last 10m ({log})"
    assert result.expected == "at most 2 lines matching ERROR in the last 10m"
    assert result.evidence["lines_in_window"] == 2


def test_too_many_errors_fail_with_samples_and_the_rotated_file_counts(tmp_path: Path) -> None:
    rotated = write(tmp_path / "app.log.1", f"{iso(400)} ERROR db timeout (rotated)",
                    "Traceback (most recent call last):  ERROR in a continuation line", mtime_ago=300)
    first, last = f"{iso(120)} ERROR db timeout", f"{iso(5)} ERROR boom"
    log = write(tmp_path / "app.log", first, f"{iso(60)} WARN slow", last)
    write(tmp_path / "app.log.2", f"{iso(100)} ERROR in .2: not read")  # only .1 is the rotated predecessor
    result = check(log, ", samples: 2")
    assert result.ok is False
    # the continuation line counts, dated by the line above it; the samples are the latest matches
    assert result.explain() == (f"logs[app]: 4 lines matching ERROR in the last 10m ({rotated}, {log}); latest: "
                                f"{first} | {last}, expected at most 2 lines matching ERROR in the last 10m")


def test_a_file_last_written_before_the_window_is_not_read(tmp_path: Path) -> None:
    log = write(tmp_path / "app.log", *[f"{iso(7200)} ERROR x"] * 5, mtime_ago=7200)
    result = check(log)
    assert result.ok is True, result.explain()
    assert result.evidence["files_skipped"] == [str(log)]


def test_a_tail_that_the_window_reaches_past_fails(tmp_path: Path) -> None:
    log = write(tmp_path / "app.log", *[f"{iso(10)} INFO filler line number {i:04d}" for i in range(200)])
    result = check(log, ", tail_bytes: 1KiB")
    assert result.ok is False
    assert result.observed.endswith(f"only the last 1.0 KiB of {log} read, which the window reaches past (raise "
                                    "tail_bytes)")


def test_lines_without_a_readable_timestamp_are_a_failure(tmp_path: Path) -> None:
    log = write(tmp_path / "app.log", "ERROR no time here", "[04/Dec/2026:10:00:00 +0000] ERROR nor ISO")
    result = check(log)
    assert result.ok is False
    assert result.observed.startswith(f"no timestamp read in 2 lines of {log}")


def test_a_time_format_reads_other_timestamps(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    line = f"[{now:%d/%b/%Y:%H:%M:%S} +0000] ERROR upstream 502"
    log = write(tmp_path / "access.log", line, line, line)
    result = check(log, r", time_regex: '^\[([^\]]+)\]', time_format: '%d/%b/%Y:%H:%M:%S %z'")
    assert (result.ok, result.evidence["matches"]) == (False, 3), result.explain()


def test_no_file_is_a_failure(tmp_path: Path) -> None:
    result = check(tmp_path / "missing.log")
    assert (result.ok, result.observed) == (False, f"no file matches {tmp_path / 'missing.log'} (nor its .1)")


@pytest.mark.parametrize(("extra", "message"), [
    (", pattern: 'ERROR('", "logs.app.pattern: 'ERROR(' is not a regular expression"),
    (", time_regex: '^\\S+'", "logs.app: time_regex has no group. Fix: put the timestamp in parentheses"),
    (", window: soon", "logs.app.window:"),
])
def test_the_entry_is_validated_with_file_and_line(extra: str, message: str) -> None:
    with pytest.raises(InventoryError, match=r"^inv\.yaml:3: " + re.escape(message)):
        loads(f"environment: t\nlogs:\n  app: {{path: /var/log/app.log{extra}}}\n", "inv.yaml")
