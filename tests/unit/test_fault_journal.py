"""The fault journal on its own (no service): an entry is on disk before the fault, private, without secrets, and
crossed out by its key; recovery calls only the extension's own rollbacks and leaves a live run's faults alone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from opsproof.chaos import faultjournal, faults, proxy
from opsproof.util.process import _start_time

INVENTORY = "environment: unit\nhttp:\n  app: {url: 'http://127.0.0.1:9'}\n"


@pytest.fixture
def cfg(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    return {"opsproof_sandbox_dir": str(tmp_path), "opsproof_pg_dsn": "postgresql://u:canary-secret@h/db",
            "other": "not opsproof's"}


def test_an_entry_is_private_portable_and_crossed_out_by_its_key(cfg: dict[str, Any], tmp_path: Path) -> None:
    faultjournal.record(cfg, "service[redis]", "SIGSTOP redis", faults.ensure_running, service="redis")
    faultjournal.record(cfg, "proxy[proxy]", "proxy latency 700 ms", proxy.proxy_clear, proxy="proxy")
    path = faultjournal.location(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "canary-secret" not in path.read_text()
    [first, second] = faultjournal.entries(path)
    assert first["undo"] == "opsproof.chaos.faults:ensure_running"
    assert first["arguments"] == {"service": "redis"}
    assert first["configuration"] == {"opsproof_sandbox_dir": str(tmp_path)}
    assert first["pid"] == os.getpid()
    faultjournal.undone(cfg, "service[redis]")
    assert [e["key"] for e in faultjournal.entries(path)] == ["proxy[proxy]"]
    assert second["key"] == "proxy[proxy]"


def test_only_the_catalogue_is_recorded_or_called(cfg: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^posix:system is not a rollback of the journal's catalogue$"):
        faultjournal.record(cfg, "x", "y", os.system, command="true")
    path = faultjournal.location(tmp_path)
    path.write_text(json.dumps({"id": "1", "key": "k", "fault": "tampered", "undo": "os:system",
                                "arguments": {"command": "touch /tmp/opsproof-pwned"}, "configuration": {},
                                "pid": 2**22 + 1, "start": None}) + "\n{cut mid-wr")
    result = faultjournal.recover(path)
    assert result.problems == ["tampered (k): rollback 'os:system' is not in the journal's catalogue"]
    assert result.rolled_back == []
    assert not Path("/tmp/opsproof-pwned").exists()


def test_a_live_runs_faults_are_left_to_it(tmp_path: Path) -> None:
    path = faultjournal.location(tmp_path)
    path.write_text(json.dumps({"id": "1", "key": "service[app]", "fault": "kill app",
                                "undo": "opsproof.chaos.faults:ensure_running", "arguments": {"service": "app"},
                                "configuration": {}, "pid": 1, "start": _start_time(1)}) + "\n")
    result = faultjournal.recover(path)
    assert result.running == ["kill app (service[app]), run pid 1"]
    assert len(faultjournal.entries(path)) == 1
