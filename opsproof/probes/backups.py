"""Backups: "verify backups are recent" — `ls -lt /var/backups/postgres/apex_full_*.sql.gz | head -1`.

Reads file metadata only (never the files' contents: restoring them is the DR drill's job); which file is the
newest complete backup is :mod:`opsproof.backupfiles`' decision, shared with the drill.
"""

from __future__ import annotations

import time
from pathlib import Path

from opsproof import backupfiles
from opsproof.backupfiles import MANIFEST
from opsproof.inventory import Backups, human_duration
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity


@probe("backups.recent", "backups", Severity.HIGH, "ls -lt $BACKUP_DIR/$PATTERN | head -1",
       applies=lambda cfg: cfg.directory is not None,
       expected=lambda cfg: f"newest {cfg.pattern} in {cfg.directory} younger than "
                            f"{human_duration(cfg.age_limit[0])} ({cfg.age_limit[1]}) and ≥ {cfg.min_size_bytes} bytes")
def recent(target: Target[Backups], conns: Connections) -> Outcome:
    """The newest backup matching the pattern is younger than ``max_age`` (else the RPO) and not empty."""
    cfg = target.config
    assert cfg.directory is not None  # `applies` deselects entries without one
    try:
        listing = backupfiles.scan(Path(cfg.directory), cfg.pattern)
        found = listing.newest()
    except backupfiles.NoBackup as e:
        return Outcome(False, str(e), {"directory": cfg.directory, "pattern": cfg.pattern})
    newest = found.path
    age_h = (time.time() - found.mtime) / 3600
    evidence = {"file": str(newest), "age_h": round(age_h, 3), "size_bytes": found.size_bytes,
                "count": len(listing.backups), "skipped": len(listing.skipped)}
    problems = []
    if age_h * 3600 > cfg.age_limit[0]:
        problems.append(f"newest {newest.name} is {age_h:.1f} h old")
    if found.size_bytes < cfg.min_size_bytes:
        problems.append(f"newest {newest.name} is {found.size_bytes} bytes")
    observed = "; ".join(problems) or f"newest {newest.name}: {age_h:.1f} h old, {found.size_bytes} bytes"
    return Outcome(not problems, observed, evidence)


def _retention_expected(cfg: Backups) -> str:
    assert cfg.retention is not None
    return (f"oldest {cfg.pattern} in {cfg.directory} at most {human_duration(cfg.retention)} old (retention) + "
            f"{human_duration(cfg.slack[0])} ({cfg.slack[1]}: one backup interval)")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f} d" if seconds >= 86400 else f"{seconds / 3600:.1f} h"


@probe("backups.retention", "backups", Severity.MEDIUM, "find $BACKUP_DIR -name $PATTERN -mtime +$DAYS",
       applies=lambda cfg: cfg.directory is not None and cfg.retention is not None, expected=_retention_expected)
def retention(target: Target[Backups], conns: Connections) -> Outcome:
    """"Keep only the last 30 days" took: nothing matching the pattern is older than the retention plus one backup
    interval — every name counts, complete or not, as `find -mtime` sees them (a clean-up that stopped running, or
    a file it misses, shows here). Reads modification times only."""
    cfg = target.config
    assert cfg.directory is not None
    assert cfg.retention_limit is not None
    folder = Path(cfg.directory)
    if not folder.is_dir():
        return Outcome(False, f"{folder} is not a readable directory", {"directory": cfg.directory})
    now = time.time()
    ages = sorted(((now - p.stat().st_mtime, p.name) for p in folder.glob(cfg.pattern)
                   if not p.name.endswith(MANIFEST)), reverse=True)
    if not ages:
        return Outcome(None, f"no file matching {cfg.pattern} in {folder}: nothing kept to judge",
                       {"directory": cfg.directory, "pattern": cfg.pattern})
    over = [(age, name) for age, name in ages if age > cfg.retention_limit]
    evidence = {"directory": cfg.directory, "count": len(ages), "oldest": ages[0][1], "oldest_age_s": round(ages[0][0]),
                "limit_s": cfg.retention_limit, "over": [name for _, name in over[:20]]}
    if over:
        more = f" and {len(over) - 1} more" if len(over) > 1 else ""
        return Outcome(False, f"{over[0][1]} is {_days(over[0][0])} old, over the limit of "
                              f"{_days(cfg.retention_limit)}{more}", evidence)
    return Outcome(True, f"oldest {ages[0][1]}: {_days(ages[0][0])} old, {len(ages)} kept", evidence)
