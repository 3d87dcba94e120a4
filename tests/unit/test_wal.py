"""WAL archiving and PITR without a server: the archiving check's judgement on rows pg_stat_archiver could give, the
WAL file arithmetic, the recovery log's lines, base backups and archive gaps on disk, and the inventory's keys."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opsproof.drill import walarchive
from opsproof.inventory import InventoryError, loads
from opsproof.probes import Connections, Target, pg_archive
from opsproof.result import Result

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
SEG = 16 << 20


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def state(**changes: Any) -> tuple[Any, ...]:
    """A row of pg_archive.STATE_SQL: a healthy primary with archive_timeout 60 s, by default."""
    row = {"in_recovery": False, "mode": "on", "command": "cp %p /a/%f", "library": "", "timeout": 60,
           "seg_size": SEG, "archived": 10, "last_wal": "000000010000000000000009", "last_time": ago(5),
           "failed": 0, "failed_wal": None, "failed_time": None, "reset": ago(86400), "now": NOW,
           "current_wal": "00000001000000000000000A", "insert_pos": 10 * SEG + 4096, "may_list": True}
    row.update(changes)
    return tuple(row.values())


class Answers:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class Fake(Connections):
    def __init__(self, row: tuple[Any, ...], ready: tuple[int, float | None] = (0, None)) -> None:
        super().__init__()
        self.row, self.ready = row, ready

    @contextmanager
    def postgres(self, key: str, dsn: str, timeout_s: float, *, remember: bool = True) -> Iterator[Any]:
        fake = self

        class Conn:
            def execute(self, sql: str, params: Any = None) -> Answers:
                return Answers([fake.ready] if sql.startswith("SELECT count(*)") else [fake.row])  # READY_SQL

        yield Conn()


def judge(row: tuple[Any, ...], ready: tuple[int, float | None] = (0, None), max_age: str = "15m") -> Result:
    inv = loads(f"environment: u\npostgres:\n  main:\n    dsn: postgresql://u@db.test/app\n"
                f"    archiving: {{max_age: {max_age}}}\n")
    with Fake(row, ready) as conns:
        return pg_archive.wal_archiving(Target("postgres", "main", inv.postgres["main"]), conns)


def test_a_healthy_primary_with_a_timeout_is_bounded_by_it() -> None:
    found = judge(state())
    assert found.ok, found
    assert found.observed == ("last 000000010000000000000009 archived 5 s ago; 0 segment(s) waiting "
                              "(pg_ls_archive_statusdir); no failure; unarchived WAL at most 60 s old "
                              "(archive_timeout 60 s)")


def test_findings() -> None:
    assert judge(state(mode="off")).observed == "archive_mode off: WAL is not archived (no point-in-time recovery)"
    assert judge(state(command="")).observed.startswith("archive_mode on but archive_command and archive_library "
                                                        "empty")
    failing = judge(state(failed=4, failed_wal="00000001000000000000000A", failed_time=ago(2)))
    assert failing.ok is False
    assert failing.observed == ("archiving failing: the last attempt failed 2 s ago on 00000001000000000000000A "
                                "(4 failure(s) since 2026-12-03T12:00:00+00:00); last success 5 s ago "
                                "(000000010000000000000009)")
    recovered = judge(state(failed=4, failed_wal="000000010000000000000008", failed_time=ago(600)))
    assert recovered.ok, recovered  # a failure before the last success: archiving caught up
    stuck = judge(state(), ready=(3, 900.0))  # closed segments waiting 15 min: a hung archive_command fails nothing
    assert stuck.ok is False
    assert stuck.observed.endswith("3 segment(s) waiting (pg_ls_archive_statusdir); no failure; unarchived WAL at "
                                   "most 16.0 min old (archive_timeout 60 s + oldest waiting 15.0 min)")


def test_without_a_timeout_an_idle_server_passes_and_a_written_one_ages() -> None:
    idle = judge(state(timeout=0, last_time=ago(86400), insert_pos=10 * SEG + 40))
    assert idle.ok, idle  # a day since the last archive, and nothing written since: nothing at risk
    written = judge(state(timeout=0, last_time=ago(3600)))
    assert written.ok is False
    assert written.observed.endswith("unarchived WAL at most 60.0 min old (archive_timeout off: a segment is "
                                     "archived only when full, and WAL was written since)")
    unprivileged = judge(state(timeout=0, may_list=False, current_wal="00000001000000000000000C", last_time=ago(60)))
    assert "2 segment(s) waiting (segment names; waited at most since the last archive)" in unprivileged.observed
    standby = judge(state(in_recovery=True, current_wal=None, insert_pos=None))
    assert standby.ok is None


def test_segment_arithmetic() -> None:
    assert pg_archive._segno("0000000100000001000000FF", SEG) == (1, 256 + 255)
    assert pg_archive._segno("000000010000000000000002.00000028.backup", SEG) == (1, 2)
    assert pg_archive._segno("00000002.history", SEG) is None
    assert walarchive.seg_name(1, 256 + 255, SEG) == "0000000100000001000000FF"
    assert walarchive.lsn_segno("0/6000100", SEG) == 6
    assert walarchive.lsn_segno("1/0", SEG) == 256


SUCCESS = """LOG:  starting point-in-time recovery to 2026-12-04 21:52:01.508+00
LOG:  restored log file "000000010000000000000007" from archive
LOG:  consistent recovery state reached at 0/6000100
LOG:  recovery stopping before commit of transaction 738, time 2026-12-04 21:52:01.51809+00
LOG:  redo done at 0/8000060 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.01 s
LOG:  last completed transaction was at log time 2026-12-04 21:52:01.507965+00
LOG:  selected new timeline ID: 2
"""
EARLY = """LOG:  redo done at 0/6000100 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.00 s
FATAL:  recovery ended before configured recovery target was reached
LOG:  startup process (PID 1) exited with exit code 1
"""


def test_the_recovery_log() -> None:
    done = walarchive.read_recovery(SUCCESS)
    assert (done.restored, done.stopped, done.stop_time) == (
        ["000000010000000000000007"], "before commit of transaction 738", "2026-12-04 21:52:01.51809+00")
    assert walarchive.pg_time(str(done.last_commit)) == pytest.approx(
        dt.datetime(2026, 12, 4, 21, 52, 1, 507965, tzinfo=dt.UTC).timestamp())
    early = walarchive.read_recovery(EARLY)
    assert (early.stopped, early.ended_early, early.redo_done_at) == (None, True, "0/6000100")
    assert early.fatal == "recovery ended before configured recovery target was reached"


def base(folder: Path, name: str, completed: float, manifest: bool = True) -> Path:
    path = folder / name
    path.mkdir()
    (path / "backup_label").write_text("START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\n"
                                       "START TIME: 2026-12-04 21:51:59 UTC\n")
    (path / "PG_VERSION").write_text("15\n")
    if manifest:
        (path / "backup_manifest").write_text("{}")
        os.utime(path / "backup_manifest", (completed, completed))
    return path


def test_the_newest_base_backup_before_the_target(tmp_path: Path) -> None:
    base(tmp_path, "base_1", 1000)
    base(tmp_path, "base_2", 2000)
    base(tmp_path, "base_3", 2500, manifest=False)
    base(tmp_path, "base_4", 9000)
    found = walarchive.newest_base(tmp_path, "base_*", before=3000)
    assert (found.path.name, found.start_wal, found.major, found.timeline) == ("base_2", "000000010000000000000006",
                                                                               15, 1)
    with pytest.raises(walarchive.NoBaseBackup, match=r"base_3: no backup_manifest .*base_4: completed after"):
        walarchive.newest_base(tmp_path, "base_*", before=500)


def test_gaps_in_the_archive(tmp_path: Path) -> None:
    for n in (5, 6, 7, 9, 10):
        (tmp_path / walarchive.seg_name(1, n, SEG)).touch()
    (tmp_path / "000000020000000000000011").touch()  # another timeline: not this backup's
    found = walarchive.scan_archive(tmp_path, "000000010000000000000006")
    assert (found.segments, found.first, found.last, found.gaps) == (
        4, "000000010000000000000006", "00000001000000000000000A", ["000000010000000000000008"])


@pytest.mark.parametrize(("entry", "message"), [
    ("postgres: {main: {dsn: 'postgresql://u@h/d', archiving: {}}}", r"archiving\.max_age"),
    ("postgres: {main: {dsn: 'postgresql://u@h/d'}}\nbackups: {b: {postgres: main, fresh: true, pitr: {archive: /a}}}",
     r"pitr: needs postgres: NAME and directory:"),
    ("postgres: {main: {dsn: 'postgresql://u@h/d'}}\nbackups: {b: {postgres: main, directory: /b, "
     "pitr: {archive: /a, target: yesterday}}}", r"not a time"),
    ("postgres: {main: {dsn: 'postgresql://u@h/d'}}\nbackups: {b: {postgres: main, directory: /b, pitr: {}}}",
     r"no WAL source\. Fix: add archive: /path"),
    ("postgres: {main: {dsn: 'postgresql://u@h/d'}}\nbackups: {b: {postgres: main, directory: /b, "
     "pitr: {restore_command: 'aws s3 cp s3://b/wal/%f'}}}", r"restore_command"),
])
def test_the_inventory_keys(entry: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        loads(f"environment: u\n{entry}\n")


def test_a_tar_base_backup_against_its_manifest(tmp_path: Path) -> None:
    import io
    import json
    import tarfile

    folder = tmp_path / "tar_1"
    folder.mkdir()
    label = b"START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nSTART TIME: 2026-12-04 21:51:59 UTC\n"
    files = {"backup_label": label, "PG_VERSION": b"15\n", "global/pg_control": b"x" * 100}
    with tarfile.open(folder / "base.tar.gz", "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    manifest = {"Files": [{"Path": n, "Size": len(d)} for n, d in files.items()]}
    (folder / "backup_manifest").write_text(json.dumps(manifest))
    found = walarchive.read_base(folder)
    assert (found.tar, found.start_wal, found.major) == (folder / "base.tar.gz", "000000010000000000000006", 15)
    assert walarchive.tar_problems(found) == []
    manifest["Files"] += [{"Path": "base/1/1259", "Size": 8192}]
    manifest["Files"][2]["Size"] = 8192
    (folder / "backup_manifest").write_text(json.dumps(manifest))
    assert walarchive.tar_problems(found) == ["1 file(s) of the manifest missing from base.tar.gz: base/1/1259",
                                              "1 file(s) of another size than the manifest's: global/pg_control"]
    (folder / "base.tar.gz").write_bytes((folder / "base.tar.gz").read_bytes()[:-20])  # cut short
    [cut] = walarchive.tar_problems(found)
    assert cut.startswith("base.tar.gz: unreadable (")
