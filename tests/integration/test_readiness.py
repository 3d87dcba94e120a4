"""The readiness report on a real run: a healthy sandbox's smoke run is go; the same sandbox with Redis stopped is
no-go, and the report names the failing checks — read from the records alone, while Redis is still down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SandboxHelper, run_suite

from opsproof.cli import main

pytestmark = pytest.mark.integration


def test_a_broken_target_turns_the_report_no_go(healthy: SandboxHelper, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    assert run_suite(healthy.inventory, out).code == 0
    assert main(["report", "--out", str(out), "--inventory", str(healthy.inventory)]) == 0
    healthy.box.stop_service("redis")
    assert run_suite(healthy.inventory, out).code == 1
    assert main(["report", "--out", str(out), "--inventory", str(healthy.inventory), "--change", "CHG-1"]) == 1
    printed = capsys.readouterr().out
    assert "readiness NO-GO" in printed
    assert "gates: redis.ping fail (critical) — redis[cache]: unreachable (ConnectionError" in printed
    change = json.loads((out / "readiness" / "readiness.json").read_text())
    failing = {(f["check"], f["verdict"]) for f in change["risk_and_impact"]["failing"]}
    assert ("redis.ping", "fail") in failing
    assert ("http.health", "fail") in failing  # the app reports itself degraded
    assert len(change["evidence_files"]) == 2  # both runs, each under runs/ (results.jsonl is the second's)
    assert "CHG-1" in (out / "readiness" / "readiness.html").read_text()
