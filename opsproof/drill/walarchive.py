"""What a point-in-time recovery starts from, and what the recovering server said: base backups made by
``pg_basebackup -Fp`` (``backup_label``, ``backup_manifest``), the WAL archive an ``archive_command`` fills (one
file per segment), and the lines of the server log that tell where recovery stopped and why.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import gzip
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
LABEL_WAL = re.compile(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", re.M)
LABEL_TIME = re.compile(r"^START TIME: (.+)$", re.M)
DEFAULT_SEGMENT = 16 << 20

RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')
STOPPING = re.compile(r"recovery stopping (before|after) (commit|abort) of transaction (\d+), time (.+?)\s*$", re.M)
LAST_DONE = re.compile(r"last completed transaction was at log time (.+?)\s*$", re.M)
ENDED_EARLY = "recovery ended before configured recovery target was reached"
CONSISTENT = re.compile(r"consistent recovery state reached at (\S+)")
REDO_DONE = re.compile(r"redo done at (\S+)")


class NoBaseBackup(ValueError):
    """No complete base backup fits: the message says where was looked and what was skipped."""


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    started: float  # START TIME of its backup_label
    completed: float  # its backup_manifest's time: pg_basebackup writes it last
    start_wal: str  # the segment its replay starts from
    size_bytes: int
    major: int | None  # its PG_VERSION
    tar: Path | None = None  # -Ft: base.tar or base.tar.gz (pg_wal.tar[.gz] beside it); None: -Fp, a data directory
    seg_size: int = DEFAULT_SEGMENT  # the WAL segment size: that of the segments it carries

    @property
    def timeline(self) -> int:
        return int(self.start_wal[:8], 16)


def _tar_of(path: Path, stem: str) -> Path | None:
    return next((path / f"{stem}{ext}" for ext in (".tar", ".tar.gz") if (path / f"{stem}{ext}").is_file()), None)


def _member(tar: Path, name: str) -> str | None:
    """The text of one file of a tar archive (pg_basebackup writes backup_label and PG_VERSION early in it)."""
    with tarfile.open(tar, "r:*") as archive:
        for info in archive:
            if info.name in (name, f"./{name}") and info.isfile():
                handle = archive.extractfile(info)
                return handle.read().decode(errors="replace") if handle else None
    return None


def tar_problems(base: BaseBackup) -> list[str]:
    """Read a -Ft backup's tar streams whole (gzip's CRC, tar's headers) and hold them against its backup_manifest:
    every file the manifest lists is in base.tar with its size."""
    assert base.tar is not None
    listed = {f["Path"]: int(f["Size"]) for f in json.loads((base.path / "backup_manifest").read_text())["Files"]}
    found: dict[str, int] = {}
    for tar in filter(None, (base.tar, _tar_of(base.path, "pg_wal"))):
        try:
            with open(tar, "rb") as raw, (gzip.open(raw) if tar.suffix == ".gz" else raw) as stream:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    for info in archive:
                        if info.isfile() and tar == base.tar:
                            found[info.name.removeprefix("./")] = info.size
                        handle = archive.extractfile(info) if info.isfile() else None
                        while handle and handle.read(1 << 20):
                            pass
                while stream.read(1 << 20):  # to the stream's end: gzip checks its CRC and length there
                    pass
        except (tarfile.TarError, OSError, EOFError) as e:
            return [f"{tar.name}: unreadable ({e})"]
    missing = [p for p in listed if p not in found]
    sized = [p for p in listed if p in found and found[p] != listed[p]]
    problems = [f"{len(missing)} file(s) of the manifest missing from {base.tar.name}: {', '.join(missing[:5])}"
                if missing else "", f"{len(sized)} file(s) of another size than the manifest's: "
                f"{', '.join(sized[:5])}" if sized else ""]
    return [p for p in problems if p]


def _label_time(text: str) -> float:
    """``2026-12-04 21:44:05 UTC`` of a backup_label."""
    stamp = text.strip().rsplit(" ", 1)
    moment = dt.datetime.strptime(stamp[0], "%Y-%m-%d %H:%M:%S")
    return moment.replace(tzinfo=dt.UTC).timestamp() if stamp[-1] in ("UTC", "GMT") else moment.timestamp()


def read_base(path: Path) -> BaseBackup:
    """One base backup directory, or :class:`NoBaseBackup` saying why it is not a complete one."""
    label, manifest, tar = path / "backup_label", path / "backup_manifest", _tar_of(path, "base")
    if not label.is_file() and tar is None:
        raise NoBaseBackup(f"{path.name}: no backup_label and no base.tar[.gz] (not a pg_basebackup directory)")
    if not manifest.is_file():
        raise NoBaseBackup(f"{path.name}: no backup_manifest (pg_basebackup writes it last: still running, "
                           "or made with --no-manifest)")
    try:
        text = label.read_text(errors="replace") if tar is None else _member(tar, "backup_label") or ""
        version = (path / "PG_VERSION").read_text() if tar is None else _member(tar, "PG_VERSION")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise NoBaseBackup(f"{path.name}: unreadable ({e})") from None
    wal, when = LABEL_WAL.search(text), LABEL_TIME.search(text)
    if wal is None or when is None:
        raise NoBaseBackup(f"{path.name}: backup_label without START WAL LOCATION / START TIME")
    major = int(version.split(".")[0]) if version else None
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    sizes = [f.stat().st_size for f in (path / "pg_wal").glob("*") if SEGMENT.match(f.name)] if tar is None else []
    seg = max(sizes) if sizes and max(sizes) >= 1 << 20 else DEFAULT_SEGMENT
    return BaseBackup(path, _label_time(when.group(1)), manifest.stat().st_mtime, wal.group(1), size, major, tar,
                      seg)


def newest_base(directory: Path, pattern: str, before: float) -> BaseBackup:
    """The newest complete base backup that was complete before ``before`` (the recovery target)."""
    if not directory.is_dir():
        raise NoBaseBackup(f"no directory {directory}")
    skipped: list[str] = []
    found: list[BaseBackup] = []
    for path in sorted(directory.iterdir()):
        if not path.is_dir() or not fnmatch.fnmatch(path.name, pattern):
            continue
        try:
            base = read_base(path)
        except NoBaseBackup as e:
            skipped.append(str(e))
            continue
        if base.completed > before:
            skipped.append(f"{path.name}: completed after the target")
            continue
        found.append(base)
    if not found:
        why = "; ".join(skipped) or "nothing matched"
        raise NoBaseBackup(f"no complete base backup matching {pattern} in {directory} before the target ({why})")
    return max(found, key=lambda b: b.completed)


def segno(name: str, seg_size: int) -> int:
    return int(name[8:16], 16) * (0x100000000 // seg_size) + int(name[16:24], 16)


def lsn_segno(lsn: str, seg_size: int) -> int | None:
    """The segment number holding an LSN (``0/5000138``)."""
    hi, _, lo = lsn.partition("/")
    try:
        return ((int(hi, 16) << 32) | int(lo, 16)) // seg_size
    except ValueError:
        return None


def seg_name(timeline: int, number: int, seg_size: int) -> str:
    per = 0x100000000 // seg_size
    return f"{timeline:08X}{number // per:08X}{number % per:08X}"


@dataclass(frozen=True)
class Archive:
    """The segments of one timeline in the archive from a base backup's start on, and the ones missing between."""

    segments: int
    first: str | None
    last: str | None
    gaps: list[str] = field(default_factory=list)
    seg_size: int = DEFAULT_SEGMENT


def scan_archive(archive: Path, start_wal: str) -> Archive:
    timeline = start_wal[:8]
    names = sorted(p.name for p in archive.iterdir() if SEGMENT.match(p.name) and p.name[:8] == timeline)
    sizes = {(archive / n).stat().st_size for n in names[:3]}
    seg_size = max(sizes) if sizes and max(sizes) >= 1 << 20 else DEFAULT_SEGMENT
    names = [n for n in names if n >= start_wal]
    if not names:
        return Archive(0, None, None, [], seg_size)
    have = {segno(n, seg_size) for n in names}
    start, end = segno(start_wal, seg_size), max(have)
    tl = int(timeline, 16)
    gaps = [seg_name(tl, n, seg_size) for n in range(start, end) if n not in have]
    return Archive(len(names), names[0], names[-1], gaps, seg_size)


@dataclass(frozen=True)
class Recovery:
    """What the server log says of a recovery."""

    restored: list[str]  # segments restored from the archive, in order
    stopped: str | None  # "before commit of transaction 741, time 2026-…" — the target was reached
    stop_time: str | None
    last_commit: str | None  # "last completed transaction was at log time …"
    ended_early: bool  # PostgreSQL 13+: the WAL ran out before the target
    consistent_at: str | None
    redo_done_at: str | None
    fatal: str | None


def read_recovery(log: str) -> Recovery:
    stop = STOPPING.search(log)
    last = LAST_DONE.findall(log)
    consistent, redo = CONSISTENT.search(log), REDO_DONE.search(log)
    fatal = next((ln.split("FATAL:", 1)[1].strip() for ln in log.splitlines() if "FATAL:" in ln), None)
    return Recovery(RESTORED.findall(log), f"{stop.group(1)} {stop.group(2)} of transaction {stop.group(3)}"
                    if stop else None, stop.group(4) if stop else None, last[-1] if last else None,
                    ENDED_EARLY in log, consistent.group(1) if consistent else None,
                    redo.group(1) if redo else None, fatal)


def pg_time(text: str) -> float:
    """``2026-12-04 21:55:01.123456+00`` (PostgreSQL's log time) → Unix time."""
    cleaned = text.strip()
    if re.search(r"[+-]\d\d$", cleaned):
        cleaned += ":00"
    return dt.datetime.fromisoformat(cleaned).timestamp()
