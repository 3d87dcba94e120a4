"""WAL archiving and point-in-time recovery: ``postgres.NAME.archiving`` (the health of ``pg_stat_archiver``
against the RPO) and ``backups.NAME.pitr`` (a drill that replays the archive onto a base backup up to a time)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from opsproof.inventory.base import Duration, _Model, parse_instant


class WalArchiving(_Model):
    """How old WAL may get before it is in the archive — the RPO of a restore from the archive (the runbook's
    "RPO < 15 min"), judged from ``pg_stat_archiver``, ``archive_timeout`` and the WAL waiting in pg_wal."""

    max_age: Duration = Field(description="15m")
    # the archiver's own time on top of archive_timeout: the checkpointer's wake-up, the archive_command's run
    slack: Duration = Field(30, description="30s")


def _iso(v: Any) -> Any:
    if isinstance(v, dt.datetime):  # YAML reads an unquoted ISO time as a datetime
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).isoformat()
    return v


def _instant(v: str) -> str:
    try:
        parse_instant(v, 0.0)
    except (ValueError, KeyError):
        raise ValueError("not a time: write 2026-11-27T10:00:00Z or -15m") from None
    return v


TargetTime = Annotated[str, BeforeValidator(_iso), AfterValidator(_instant),
                   Field(pattern=r"^(-\d+(\.\d+)?[smh]|\d{4}-\d\d-\d\dT.+)$", description="-10m")]


class Pitr(_Model):
    """A point-in-time recovery drill: the newest base backup (``pg_basebackup -Fp``, or ``-Ft [-z]``, in the entry's
    ``directory``, matching its ``pattern``) older than the target, and the archived WAL replayed onto it up to
    ``target``. The WAL comes from ``archive`` (a directory archive_command fills: copied with ``cp``, and listed for
    gaps before the replay) or from ``restore_command`` (the runbook's own, e.g. ``aws s3 cp s3://b/wal/%f %p``)."""

    archive: str | None = Field(None, min_length=1, description="/var/lib/postgresql/wal-archive")
    restore_command: str | None = Field(None, pattern=r"%f.*%p|%p.*%f", description="aws s3 cp s3://b/wal/%f %p")
    target: TargetTime = "-10m"  # recovery_target_time: ISO 8601, or relative to the drill's start
    user: str = Field("postgres", min_length=1)  # a superuser of the backed-up cluster (the recovered one's)

    @model_validator(mode="after")
    def _source(self) -> Pitr:
        if self.archive is None and self.restore_command is None:
            raise ValueError("no WAL source. Fix: add archive: /path (the directory archive_command copies into), or "
                             "restore_command: '… %f %p' (how the server fetches a segment)")
        return self
