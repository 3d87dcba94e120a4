"""The monthly DR drill, one test per phase, each timed; RTO = provision + restore + verify.

Replaces: `ls -t /backups | head -1`, `gunzip -t`, `createdb scratch`, `gunzip < backup.sql.gz | psql scratch`,
`SELECT COUNT(*) FROM projects`, and a stopwatch. A ``backups`` entry with ``pitr:`` runs the same phases as a
point-in-time recovery (`pg_basebackup`, `restore_command`, `recovery_target_time`; opsproof/drill/pitr.py).
"""

from collections.abc import Callable

import pytest

from opsproof.result import Result

Phase = Callable[[str], Result]


@pytest.mark.severity("critical")
def test_01_newest_backup_within_rpo(phase: Phase) -> None:
    """The newest backup exists and is younger than the RPO (or a fresh one was taken)."""
    phase("found")


@pytest.mark.severity("critical")
def test_02_archive_intact(phase: Phase) -> None:
    """sha256 = manifest; gzip stream whole and pg_dump's closing line (plain); pg_restore --list; redis-check-rdb."""
    phase("integrity")


@pytest.mark.severity("high")
def test_03_scratch_instance_provisioned(phase: Phase) -> None:
    """A scratch server of the backup's major version — never the source."""
    phase("provision")


@pytest.mark.severity("critical")
def test_04_restore(phase: Phase) -> None:
    """pg_restore --jobs N (custom, directory), psql (plain), redis-server loading the RDB."""
    phase("restore")


@pytest.mark.severity("critical")
def test_05_restored_data_verified(phase: Phase) -> None:
    """Schema objects, row counts and checksums = manifest; listed tables non-empty; pg_amcheck; freshness."""
    phase("verify")


@pytest.mark.severity("high")
def test_06_measured_rpo(phase: Phase) -> None:
    """Newest data in the restore (freshness query, else the backup's time) within the RPO."""
    phase("rpo")


@pytest.mark.severity("high")
def test_07_measured_rto(phase: Phase) -> None:
    """provision + restore + verify within the RTO."""
    phase("rto")


@pytest.mark.severity("medium")
def test_08_scratch_torn_down(phase: Phase) -> None:
    """No scratch process, data directory or temporary file left."""
    phase("teardown")
