"""WAL archiving: `SELECT * FROM pg_stat_archiver`, `SHOW archive_timeout`, `ls pg_wal/archive_status/*.ready`.

The question a runbook's "RPO < 15 min" asks of archiving is how old the oldest WAL that is *not* in the archive
may be. ``pg_stat_archiver`` does not say it directly, and its ``last_archived_time`` alone would raise false
alarms: on an idle server no segment fills, and PostgreSQL forces no switch (``archive_timeout`` switches only
after WAL was written), so the time of the last archived segment ages with nothing at risk. The check therefore
bounds the age of the unarchived WAL from what PostgreSQL guarantees:

- with ``archive_timeout`` T > 0, a segment is closed at most T after it was opened, so its WAL is at most
  T + W old, W being how long the oldest closed segment has waited for the archiver (its ``.ready`` file's age in
  ``pg_wal/archive_status``; 0 when none waits);
- with ``archive_timeout`` off, a segment is archived only when full: the unarchived WAL may be as old as the
  last archived segment, unless nothing was written since (the insert position is still at the start of the
  segment after it — an idle server).

That bound must be ≤ ``max_age`` + ``slack``. Besides: ``archive_mode`` on with a command (or library) set, and
the archiver's last attempt not a failure (``last_failed_time`` newer than ``last_archived_time``). Every session
is read-only; the ``.ready`` files are listed with ``pg_ls_archive_statusdir()`` when the role may (superuser or
``pg_monitor``), else their number is derived from the segment names and W bounded by the last archive's age.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from opsproof.inventory import Postgres
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity

SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")
LONG_HEADER = 40  # SizeOfXLogLongPHD: where the first record of a segment starts

STATE_SQL = """SELECT pg_is_in_recovery(), current_setting('archive_mode'), current_setting('archive_command'),
  coalesce(current_setting('archive_library', true), ''),  -- PostgreSQL 15+
  (SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout'),
  (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
  a.archived_count, a.last_archived_wal, a.last_archived_time, a.failed_count, a.last_failed_wal,
  a.last_failed_time, a.stats_reset, now(),
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_insert_lsn()) END,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint END,
  has_function_privilege('pg_ls_archive_statusdir()', 'EXECUTE')
FROM pg_stat_archiver a"""
READY_SQL = ("SELECT count(*), extract(epoch FROM now() - min(modification))::float8 FROM pg_ls_archive_statusdir()"
             " WHERE name LIKE '%.ready'")


def _segno(name: str | None, seg_size: int) -> tuple[int, int] | None:
    """(timeline, segment number) of a WAL file name (also of its .partial or .backup), None of a history file."""
    m = SEGMENT.match(name or "")
    if not m:
        return None
    timeline, log, seg = (int(g, 16) for g in m.groups())
    return timeline, log * (0x100000000 // seg_size) + seg


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def expected(cfg: Postgres) -> str:
    assert cfg.archiving is not None
    a = cfg.archiving
    return (f"archive_mode on, the last attempt not failed, unarchived WAL at most {_ago(a.max_age)} old "
            f"(max_age, + {_ago(a.slack)} slack)")


@probe("postgres.wal_archiving", "postgres", Severity.HIGH,
       "SELECT * FROM pg_stat_archiver; SHOW archive_timeout; ls pg_wal/archive_status/*.ready",
       applies=lambda cfg: cfg.archiving is not None, expected=expected)
def wal_archiving(target: Target[Postgres], conns: Connections) -> Outcome:
    """Archiving is on and not failing, and no WAL older than ``archiving.max_age`` is missing from the archive."""
    cfg = target.config
    assert cfg.archiving is not None
    with conns.postgres(target.id, cfg.dsn, cfg.connect_timeout_s, remember=cfg.retry is None) as conn:
        [row] = conn.execute(STATE_SQL).fetchall()
        (in_recovery, mode, command, library, timeout, seg_size, archived, last_wal, last_time, failed, failed_wal,
         failed_time, reset, now, current_wal, insert_pos, may_list) = row
        ready: tuple[int, float | None] | None = None
        if may_list and not in_recovery:
            [(count, oldest)] = conn.execute(READY_SQL).fetchall()
            ready = (int(count), oldest)
    evidence: dict[str, Any] = {
        "archive_mode": mode, "archive_command_set": bool(command), "archive_library": library or None,
        "archive_timeout_s": timeout, "archived_count": archived, "last_archived_wal": last_wal,
        "last_archived_time": _iso(last_time), "failed_count": failed, "last_failed_wal": failed_wal,
        "last_failed_time": _iso(failed_time), "stats_reset": _iso(reset), "current_wal": current_wal}
    if mode == "off":
        return Outcome(False, "archive_mode off: WAL is not archived (no point-in-time recovery)", evidence)
    if not command and not library:
        return Outcome(False, f"archive_mode {mode} but archive_command and archive_library empty: WAL is kept in "
                              "pg_wal, never archived", evidence)
    failures = f"{failed} failure(s) since {_iso(reset)}" if failed else "no failure"
    if failed_time is not None and (last_time is None or failed_time > last_time):
        since = (f"last success {_ago((now - last_time).total_seconds())} ago ({last_wal})" if last_time
                 else "no segment archived since the statistics were reset")
        return Outcome(False, f"archiving failing: the last attempt failed {_ago((now - failed_time).total_seconds())}"
                              f" ago on {failed_wal} ({failures}); {since}", evidence)
    if in_recovery:
        return Outcome(None if mode != "always" else True,
                       f"a standby (archive_mode {mode}): {failures}; its unarchived WAL is the primary's to judge",
                       evidence)
    limit = cfg.archiving.max_age + cfg.archiving.slack
    age = (now - last_time).total_seconds() if last_time is not None else None
    waiting, wait_s, how = _waiting(ready, last_wal, current_wal, seg_size, age)
    evidence.update(segments_waiting=waiting, oldest_waiting_s=wait_s, waiting_from=how,
                    last_archived_age_s=None if age is None else round(age, 3))
    last = f"last {last_wal} archived {_ago(age)} ago" if age is not None else "nothing archived yet"
    head = f"{last}; {waiting} segment(s) waiting ({how}); {failures}"
    if timeout:
        bound = timeout + (wait_s or 0.0)
        why = f"archive_timeout {_ago(timeout)}" + (f" + oldest waiting {_ago(wait_s)}" if wait_s else "")
    else:
        idle = _idle(waiting, last_wal, current_wal, insert_pos, seg_size)
        if idle:
            evidence["exposure_s"] = 0.0
            return Outcome(True, f"{head}; archive_timeout off, nothing written since: no unarchived WAL", evidence)
        if age is None:
            return Outcome(False, f"{head}; WAL written and never archived (archive_timeout off)", evidence)
        bound, why = age, "archive_timeout off: a segment is archived only when full, and WAL was written since"
    evidence["exposure_s"] = round(bound, 3)
    shown = f"{head}; unarchived WAL at most {_ago(bound)} old ({why})"
    return Outcome(bound <= limit, shown, evidence)


def _waiting(ready: tuple[int, float | None] | None, last_wal: str | None, current_wal: str | None, seg_size: int,
             age: float | None) -> tuple[int, float | None, str]:
    """(closed segments not yet archived, how long the oldest has waited, where that is read from)."""
    if ready is not None:
        count, oldest = ready
        return count, (max(0.0, oldest) if count and oldest is not None else None), "pg_ls_archive_statusdir"
    last, current = _segno(last_wal, seg_size), _segno(current_wal, seg_size)
    if last is None or current is None or last[0] != current[0]:
        return 0, None, "segment names (another timeline: not counted)"
    count = max(0, current[1] - last[1] - 1)
    return count, (age if count else None), "segment names; waited at most since the last archive"


def _idle(waiting: int, last_wal: str | None, current_wal: str | None, insert_pos: int | None,
          seg_size: int) -> bool:
    """Nothing written since the last archived segment: the insert position is at the start of the next one."""
    last, current = _segno(last_wal, seg_size), _segno(current_wal, seg_size)
    if waiting or last is None or current is None or insert_pos is None or last[0] != current[0]:
        return False
    return current[1] == last[1] + 1 and insert_pos % seg_size <= LONG_HEADER


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None
