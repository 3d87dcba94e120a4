""""The newest backup" is one decision: the freshness probe and the DR drill pick the same one (files on disk)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from opsproof.drill.phases import newest
from opsproof.drill.tools import DrillError
from opsproof.inventory import Backups
from opsproof.probes import Connections, Target
from opsproof.probes.backups import recent


def put(path: Path, hours_old: float, size: int = 1024) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - hours_old * 3600
    os.utime(path, (stamp, stamp))
    return path


def probe_pick(directory: Path, pattern: str) -> str:
    cfg = Backups(directory=str(directory), pattern=pattern, rpo="24h")  # type: ignore[arg-type]
    with Connections() as conns:
        result = recent(Target("backups", "db", cfg), conns)
    return Path(result.evidence["file"]).name if "file" in result.evidence else f"none: {result.observed}"


def both_pick(directory: Path, pattern: str = "*") -> tuple[str, str]:
    try:
        drill = newest(directory, pattern).path.name
    except DrillError as e:
        drill = f"none: {e}"
    return probe_pick(directory, pattern), drill


def test_a_manifest_is_not_a_backup(tmp_path: Path) -> None:
    put(tmp_path / "shop_1.dump", hours_old=2)
    put(tmp_path / "shop_1.dump.manifest.json", hours_old=1)  # written after the dump: newer
    assert both_pick(tmp_path) == ("shop_1.dump", "shop_1.dump")


@pytest.mark.parametrize("name", [".shop_2.dump.partial", "shop_2.dump.partial", "shop_2.dump.tmp", "shop_2.dump~"])
def test_a_half_written_file_is_not_a_backup(tmp_path: Path, name: str) -> None:
    put(tmp_path / "shop_1.dump", hours_old=2)
    put(tmp_path / name, hours_old=0)
    assert both_pick(tmp_path) == ("shop_1.dump", "shop_1.dump")


def test_a_directory_format_dump_is_a_backup(tmp_path: Path) -> None:
    put(tmp_path / "shop_1.dump", hours_old=5)
    put(tmp_path / "shop_2.dir" / "3001.dat.gz", hours_old=1, size=600)
    put(tmp_path / "shop_2.dir" / "toc.dat", hours_old=1, size=500)
    assert both_pick(tmp_path) == ("shop_2.dir", "shop_2.dir")
    cfg = Backups(directory=str(tmp_path), rpo="24h", min_size_bytes=1000)  # type: ignore[arg-type]
    with Connections() as conns:
        result = recent(Target("backups", "db", cfg), conns)
    assert result.ok, result.explain()
    assert result.evidence["size_bytes"] == 1100  # every file of the dump


def test_a_directory_without_toc_is_a_dump_in_progress(tmp_path: Path) -> None:
    put(tmp_path / "shop_1.dump", hours_old=5)
    put(tmp_path / "shop_2.dir" / "3001.dat.gz", hours_old=0)  # pg_dump writes toc.dat when it closes the archive
    assert both_pick(tmp_path) == ("shop_1.dump", "shop_1.dump")


def test_where_backups_have_manifests_one_without_is_not_yet_complete(tmp_path: Path) -> None:
    put(tmp_path / "shop_1.dump", hours_old=5)
    put(tmp_path / "shop_1.dump.manifest.json", hours_old=5)
    put(tmp_path / "shop_2.dump", hours_old=0)  # renamed into place; its manifest is written next
    assert both_pick(tmp_path) == ("shop_1.dump", "shop_1.dump")


def test_without_any_manifest_the_newest_file_is_taken(tmp_path: Path) -> None:
    put(tmp_path / "shop_1.sql.gz", hours_old=5)
    put(tmp_path / "shop_2.sql.gz", hours_old=1)
    assert both_pick(tmp_path, "shop_*.sql.gz") == ("shop_2.sql.gz", "shop_2.sql.gz")


def test_nothing_complete_names_what_was_skipped(tmp_path: Path) -> None:
    put(tmp_path / "shop_1.dump.manifest.json", hours_old=1)
    put(tmp_path / ".shop_2.dump.partial", hours_old=0)
    expected = (f"none: no complete backup matching * in {tmp_path} (skipped: .shop_2.dump.partial: being written; "
                "shop_1.dump.manifest.json: a manifest)")
    assert both_pick(tmp_path) == (expected, expected)
