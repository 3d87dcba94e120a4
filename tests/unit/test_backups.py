"""The backup freshness check against real files on disk."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from opsproof.inventory import Backups
from opsproof.probes import Connections, Target
from opsproof.probes.backups import recent, retention


def backup(directory: Path, name: str, hours_old: float, size: int = 1024) -> Path:
    path = directory / name
    path.write_bytes(b"\x1f\x8b" + b"x" * (size - 2) if size >= 2 else b"")
    stamp = time.time() - hours_old * 3600
    os.utime(path, (stamp, stamp))
    return path


def check(directory: Path, **settings: object) -> str:
    cfg = Backups(**{"directory": str(directory), "pattern": "apex_full_*.sql.gz", "rpo": "24h",  # type: ignore[arg-type]
                     **settings})
    with Connections() as conns:
        result = recent(Target("backups", "db", cfg), conns)
    return ("PASS " if result.ok else "FAIL ") + result.explain()


def test_a_recent_backup_passes(tmp_path: Path) -> None:
    backup(tmp_path, "apex_full_20261125.sql.gz", hours_old=50)
    backup(tmp_path, "apex_full_20261127.sql.gz", hours_old=2)
    backup(tmp_path, "other_20261127.sql.gz", hours_old=0)  # not matching the pattern
    assert check(tmp_path).startswith("PASS backups[db]: newest apex_full_20261127.sql.gz: 2.0 h old, 1024 bytes")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("apex_full_1.sql.gz", 30.0, 1024)],
         "FAIL backups[db]: newest apex_full_1.sql.gz is 30.0 h old, expected newest apex_full_*.sql.gz in {d} "
         "younger than 1d (rpo) and ≥ 1 bytes"),
        ([("apex_full_1.sql.gz", 1.0, 0)], "FAIL backups[db]: newest apex_full_1.sql.gz is 0 bytes, expected "),
        ([("other.sql.gz", 1.0, 1024)], "FAIL backups[db]: no file matching apex_full_*.sql.gz in {d}, expected "),
    ],
    ids=["older-than-rpo", "empty", "none-matching"],
)
def test_stale_empty_or_missing_backups_fail(tmp_path: Path, files: list[tuple[str, float, int]],
                                             message: str) -> None:
    for name, age, size in files:
        backup(tmp_path, name, age, size)
    assert check(tmp_path).startswith(message.format(d=tmp_path))


def test_a_missing_directory_fails(tmp_path: Path) -> None:
    assert check(tmp_path / "nope") == (
        f"FAIL backups[db]: {tmp_path / 'nope'} is not a readable directory, expected newest apex_full_*.sql.gz in "
        f"{tmp_path / 'nope'} younger than 1d (rpo) and ≥ 1 bytes")


def test_max_age_is_the_freshness_limit_apart_from_the_rpo(tmp_path: Path) -> None:
    """MagicSaaS: daily dumps, "backups are recent (<24h)", RPO 1 h — a 5-hour-old dump is recent, not an RPO."""
    backup(tmp_path, "apex_full_1.sql.gz", hours_old=5)
    assert check(tmp_path, rpo="1h", max_age="24h").startswith("PASS backups[db]: newest apex_full_1.sql.gz: 5.0 h")
    assert check(tmp_path, rpo="1h") == (
        f"FAIL backups[db]: newest apex_full_1.sql.gz is 5.0 h old, expected newest apex_full_*.sql.gz in {tmp_path} "
        "younger than 1h (rpo) and ≥ 1 bytes")
    backup(tmp_path, "apex_full_1.sql.gz", hours_old=25)
    assert check(tmp_path, rpo="1h", max_age="24h").startswith(
        "FAIL backups[db]: newest apex_full_1.sql.gz is 25.0 h old, expected newest apex_full_*.sql.gz in "
        f"{tmp_path} younger than 1d (max_age)")


def kept(directory: Path, **settings: object) -> tuple[bool | None, str]:
    cfg = Backups(**{"directory": str(directory), "pattern": "apex_full_*.sql.gz", "max_age": "25h",  # type: ignore[arg-type]
                     "retention": "31d", **settings})
    with Connections() as conns:
        result = retention(Target("backups", "db", cfg), conns)
    return result.ok, result.explain()


RETENTION = ("expected oldest apex_full_*.sql.gz in {d} at most 31d old (retention) + 25h (max_age: one backup "
             "interval)")


def test_retention_the_clean_up_ran(tmp_path: Path) -> None:
    """SIGN X APEX (l. 557): `find -mtime +30 -delete` daily — 31 dumps kept, the oldest 31.5 days old, passes."""
    for day in range(32):
        backup(tmp_path, f"apex_full_{day:02}.sql.gz", hours_old=day * 24 + 12)
    backup(tmp_path, "apex_full_99.sql.gz.manifest.json", hours_old=60 * 24)  # a manifest is no backup
    assert kept(tmp_path) == (True, "backups[db]: oldest apex_full_31.sql.gz: 31.5 d old, 32 kept ("
                                    + RETENTION.format(d=tmp_path) + ")")


def test_retention_an_old_file_left_behind_fails_naming_it(tmp_path: Path) -> None:
    """The clean-up stopped (or misses a file): the file left behind, its age and the limit are the finding."""
    backup(tmp_path, "apex_full_new.sql.gz", hours_old=3)
    backup(tmp_path, "apex_full_old.sql.gz", hours_old=45 * 24)
    backup(tmp_path, ".apex_full_stale.sql.gz.partial", hours_old=90 * 24)  # hidden: not matched by the pattern
    backup(tmp_path, "apex_full_older.sql.gz", hours_old=40 * 24)
    assert kept(tmp_path) == (False, "backups[db]: apex_full_old.sql.gz is 45.0 d old, over the limit of 32.0 d "
                                     "and 1 more, " + RETENTION.format(d=tmp_path))
    assert kept(tmp_path / "nope")[1].startswith(f"backups[db]: {tmp_path / 'nope'} is not a readable directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kept(empty)[0] is None  # nothing kept: no data, never a pass
