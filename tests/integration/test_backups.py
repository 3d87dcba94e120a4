"""The backups smoke test as users run it (a pytest subprocess); the probe itself is unit-tested."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support import run_suite


def dump(path: Path, hours_old: float) -> None:
    path.parent.mkdir()
    path.write_bytes(b"\x1f\x8b" + b"x" * 1022)
    os.utime(path, (time.time() - hours_old * 3600,) * 2)


def test_as_a_suite(tmp_path: Path) -> None:
    dump(tmp_path / "db" / "apex_full_1.sql.gz", hours_old=1)
    dump(tmp_path / "cache" / "dump.rdb", hours_old=48)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"""environment: prod
backups:
  db: {{directory: "{tmp_path / 'db'}", pattern: "apex_full_*.sql.gz", rpo: 24h}}
  cache: {{directory: "{tmp_path / 'cache'}", pattern: "*.rdb", rpo: 24h}}
""")
    run = run_suite(inventory, tmp_path / "out", suite="checks/post_maintenance/test_30_backups.py")
    assert run.code == 1
    assert run.failed == {"backups.recent@backups[cache]"}
    assert "backups[cache]: newest dump.rdb is 48.0 h old" in run.output
