"""Error lines in log files over a window — `grep -c ERROR /var/log/app.log` limited to the last ``window`` by the
timestamps the lines carry (see :mod:`opsproof.inventory.logs` for how the window is judged).

Reads files only, each from its end and at most ``tail_bytes`` of it; a file last modified before the window
starts is not opened. Sample lines reach the finding as written: the run masks the inventory's secrets in them.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from opsproof.inventory import Logs, human_duration
from opsproof.inventory.logs import ErrorScan
from opsproof.inventory.objects import human_size
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity

SAMPLE_CHARS = 200  # a sample line is cut to this


@dataclass
class Scan:
    """What the lines of the window held, over every file read."""

    start: float  # the window's start, Unix time
    matches: int = 0
    lines: int = 0  # lines inside the window
    undated: int = 0  # lines before the first timestamp of their file: not judged
    dated: int = 0  # lines whose timestamp was read, in the window or not
    read: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # last written before the window: not opened
    truncated: list[str] = field(default_factory=list)  # the window reaches past the bytes read
    samples: deque[str] = field(default_factory=deque)


def files(cfg: Logs) -> list[Path]:
    """The files of ``path`` (a glob), and with ``rotated`` their ``.1`` predecessors, oldest first."""
    names = set(glob.glob(cfg.path)) | (set(glob.glob(cfg.path + ".1")) if cfg.rotated else set())
    found = [Path(n) for n in names if os.path.isfile(n)]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def stamp(text: str, cfg: Logs) -> float | None:
    """A timestamp's Unix time (``time_format`` with strptime, else ISO 8601); None when it does not parse."""
    try:
        when = (dt.datetime.strptime(text, cfg.time_format) if cfg.time_format
                else dt.datetime.fromisoformat(text.replace(",", ".")))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC) if cfg.utc else when.astimezone()
    return when.timestamp()


def tail(path: Path, limit: int) -> tuple[list[str], bool]:
    """The last ``limit`` bytes of a file as lines (a line cut by the limit dropped), and whether it was cut."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        offset = max(0, size - limit)
        f.seek(offset)
        data = f.read(limit)
    if offset:
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return data.decode("utf-8", "replace").splitlines(), offset > 0


def scan(cfg: Logs, now: float) -> Scan:
    found = Scan(now - cfg.window, samples=deque(maxlen=cfg.samples))
    when, match = re.compile(cfg.time_regex), re.compile(cfg.pattern)
    for path in files(cfg):
        if path.stat().st_mtime < found.start:
            found.skipped.append(str(path))
            continue
        lines, cut = tail(path, cfg.tail_bytes)
        found.read.append(str(path))
        current: float | None = None
        first: float | None = None
        for line in lines:
            m = when.search(line)
            at = stamp(m.group(1), cfg) if m else None
            if at is not None:
                found.dated += 1
                current = at
                first = at if first is None else first
            if current is None:
                found.undated += 1
                continue
            if current < found.start:
                continue
            found.lines += 1
            if match.search(line):
                found.matches += 1
                found.samples.append(clip(line))
        if cut and (first is None or first >= found.start):
            found.truncated.append(str(path))
    return found


def clip(line: str) -> str:
    """A sample line as shown in a finding: cut to SAMPLE_CHARS."""
    return line if len(line) <= SAMPLE_CHARS else line[:SAMPLE_CHARS - 1] + "…"


def counted(n: int, cfg: ErrorScan) -> str:
    """``7 lines matching ERROR|FATAL in the last 10m`` — what an error scan observed (files or pods)."""
    return f"{n} line{'s' if n != 1 else ''} matching {cfg.pattern} in the last {human_duration(cfg.window)}"


def ceiling(cfg: ErrorScan) -> str:
    """``at most 5 lines matching ERROR|FATAL in the last 10m`` — what an error scan expects."""
    return f"at most {cfg.max_matches} lines matching {cfg.pattern} in the last {human_duration(cfg.window)}"


def _expected(cfg: Logs) -> str:
    return ceiling(cfg)


@probe("logs.errors", "logs", Severity.HIGH, "grep -E $PATTERN /var/log/app.log | wc -l  # in the last WINDOW",
       expected=_expected)
def errors(target: Target[Logs], conns: Connections) -> Outcome:
    """Lines matching ``pattern`` whose timestamp is within the last ``window``: at most ``max_matches``."""
    cfg = target.config
    if not files(cfg):
        return Outcome(False, f"no file matches {cfg.path}" + (" (nor its .1)" if cfg.rotated else ""),
                       {"path": cfg.path})
    found = scan(cfg, time.time())
    where = ", ".join(found.read) or f"nothing written since the window began: {', '.join(found.skipped)}"
    observed = f"{counted(found.matches, cfg)} ({where})"
    if found.matches > cfg.max_matches and found.samples:
        observed += "; latest: " + " | ".join(found.samples)
    if found.truncated:
        observed += (f"; only the last {human_size(cfg.tail_bytes)} of {', '.join(found.truncated)} read, which "
                     "the window reaches past (raise tail_bytes)")
    unread = bool(found.undated) and not found.dated  # lines, and no timestamp read in any: nothing was judged
    if unread:
        observed = (f"no timestamp read in {found.undated} lines of {where} (time_regex {cfg.time_regex!r}"
                    + (f", time_format {cfg.time_format!r}" if cfg.time_format else "") + "): set time_regex/"
                    "time_format to the lines' own")
    evidence = {"matches": found.matches, "lines_in_window": found.lines, "undated_lines": found.undated,
                "files_read": found.read, "files_skipped": found.skipped, "truncated": found.truncated,
                "window_s": cfg.window, "samples": list(found.samples)}
    ok = found.matches <= cfg.max_matches and not found.truncated and not unread
    return Outcome(ok, observed, evidence)
