"""Which entry of a backup directory is the newest complete backup — decided here, once, for the freshness probe
(``backups.recent``) and the DR drill alike. Standard library only, so probes use it without the drill.

A name matching the entry's pattern is a backup unless one of these rules skips it (with the reason, for the
message when nothing is left):

- **being written**: a hidden name (``.x``; ``opsproof backup`` writes ``.NAME.partial`` and renames it, rsync and
  most writers use a hidden temporary) or a temporary suffix (:data:`TEMP_SUFFIXES`);
- **a manifest**: ``NAME.manifest.json`` describes backup ``NAME``; it is not one;
- **a directory without toc.dat or backup_manifest**: a directory is a backup only as a directory-format pg_dump,
  which writes ``toc.dat`` when it closes the archive, or as a base backup (``pg_basebackup``, for point-in-time
  recovery), which writes ``backup_manifest`` last — without either it is still being written (or no backup).
  A directory backup's time is that file's, its size that of all its files;
- **no manifest yet**: where the backups come with manifests (any candidate has one), one without its manifest is
  not complete yet — ``opsproof backup`` writes the manifest once the backup is whole and renamed.

Not decidable from metadata: a writer that writes the final name in place (``pg_dump > x.sql``). A file still
growing that way is taken as it is; the drill's integrity phase reads it whole, the freshness probe does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".manifest.json"
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".inprogress", ".incomplete", "~")
TOC = "toc.dat"  # a directory-format pg_dump's table of contents
BASE_MANIFEST = "backup_manifest"  # pg_basebackup's, written when the base backup is complete


class NoBackup(Exception):
    """No complete backup: the message says where was looked and what was skipped."""


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST)


@dataclass(frozen=True)
class Backup:
    path: Path
    mtime: float  # when it was complete: the file's, or a directory dump's toc.dat's
    size_bytes: int
    has_manifest: bool


@dataclass(frozen=True)
class Listing:
    """The complete backups matching a pattern (oldest first) and the names skipped, with the reason."""

    directory: Path
    pattern: str
    backups: list[Backup]
    skipped: dict[str, str] = field(default_factory=dict)

    def newest(self) -> Backup:
        if self.backups:
            return self.backups[-1]
        if not self.skipped:
            raise NoBackup(f"no file matching {self.pattern} in {self.directory}")
        why = "; ".join(f"{name}: {reason}" for name, reason in sorted(self.skipped.items())[:10])
        raise NoBackup(f"no complete backup matching {self.pattern} in {self.directory} (skipped: {why})")


def scan(directory: Path, pattern: str) -> Listing:
    """The backups in ``directory`` whose name matches ``pattern`` (a glob), by the rules above."""
    if not directory.is_dir():
        raise NoBackup(f"{directory} is not a readable directory")
    found: list[Backup] = []
    skipped: dict[str, str] = {}
    for path in directory.glob(pattern):
        why = _not_a_backup(path)
        if why:
            skipped[path.name] = why
            continue
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file()]
            closing = path / TOC if (path / TOC).is_file() else path / BASE_MANIFEST
            found.append(Backup(path, closing.stat().st_mtime, sum(p.stat().st_size for p in files),
                                manifest_path(path).is_file()))
        elif path.is_file():
            stat = path.stat()
            found.append(Backup(path, stat.st_mtime, stat.st_size, manifest_path(path).is_file()))
    if any(b.has_manifest for b in found):
        for b in found:
            if not b.has_manifest:
                skipped[b.path.name] = "no manifest yet (its siblings have one)"
        found = [b for b in found if b.has_manifest]
    return Listing(directory, pattern, sorted(found, key=lambda b: b.mtime), skipped)


def _not_a_backup(path: Path) -> str:
    name = path.name
    if name.endswith(MANIFEST):
        return "a manifest"
    if name.startswith(".") or name.endswith(TEMP_SUFFIXES):
        return "being written"
    if path.is_dir() and not (path / TOC).is_file() and not (path / BASE_MANIFEST).is_file():
        return f"a directory without {TOC} or {BASE_MANIFEST}"
    return ""


def newest(directory: Path, pattern: str) -> Backup:
    """The newest complete backup; :class:`NoBackup` says why there is none."""
    return scan(directory, pattern).newest()
