"""Post-maintenance checklist, step 3: "verify backups are recent"."""

import pytest

from opsproof import verify
from opsproof.probes import backups, objects, supabase
from opsproof.result import Result


@pytest.mark.check(backups.recent)
def test_backups_are_recent(result: Result) -> None:
    """`ls -lt /backups/apex_full_*.sql.gz | head -1` — the newest backup is younger than the RPO and not empty."""
    verify(result)


@pytest.mark.check(objects.s3_recent)
def test_offsite_backups_are_recent(result: Result) -> None:
    """`aws s3 ls s3://$BUCKET/$PREFIX --recursive | sort | tail -1` — the newest backup object is younger than the
    RPO and not empty."""
    verify(result)


@pytest.mark.check(objects.s3_quota)
def test_offsite_backups_fit_their_quota(result: Result) -> None:
    """`aws s3 ls --recursive --summarize` — the backups' objects take no more than the bucket's quota."""
    verify(result)


@pytest.mark.check(objects.s3_lifecycle)
def test_offsite_backups_expire(result: Result) -> None:
    """`aws s3api get-bucket-lifecycle-configuration` — a rule expires old backups after the retention."""
    verify(result)


@pytest.mark.check(backups.retention)
def test_old_backups_are_deleted(result: Result) -> None:
    """`find /backups -name 'apex_full_*.sql.gz' -mtime +30` finds nothing — only the last N days are kept."""
    verify(result)


@pytest.mark.check(objects.s3_retention)
def test_old_offsite_backups_expire(result: Result) -> None:
    """`aws s3 ls --recursive | sort | head -1` — the oldest backup object is within the retention."""
    verify(result)


@pytest.mark.check(supabase.supabase_recent)
def test_managed_backups_are_recent(result: Result) -> None:
    """`supabase backups list` — the newest COMPLETED managed backup is younger than the RPO."""
    verify(result)


@pytest.mark.check(supabase.supabase_failures)
def test_no_managed_backup_failed(result: Result) -> None:
    """`supabase backups list` — no recent managed backup is FAILED."""
    verify(result)


@pytest.mark.check(supabase.supabase_pitr)
def test_managed_point_in_time_recovery(result: Result) -> None:
    """`supabase backups list` — point-in-time recovery is on, its window and its latest restore point as required."""
    verify(result)


@pytest.mark.check(supabase.supabase_disk)
def test_managed_database_disk_has_room(result: Result) -> None:
    """The Management API's disk utilization — the database's disk is used at most up to its ceiling."""
    verify(result)
