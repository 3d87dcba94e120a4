"""Backups: "verify backups are recent" — `ls -lt /var/backups/postgres/apex_full_*.sql.gz | head -1`.

Reads file metadata only (never the files' contents: restoring them is the DR drill's job); which file is the
newest complete backup is :mod:`opsproof.backupfiles`' decision, shared with the drill.
"""

from __future__ import annotations

import time
from pathlib import Path

from opsproof import backupfiles
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
