"""Chaos under load on the real sandbox: what users felt during the fault, beside the alert timeline.

app-killed: requests fail until the supervisor restarts the app — how many and for how long is measured, and the
scenario's ``error_rate < 1%`` gate says so. redis-down: the app degrades to PostgreSQL and keeps serving — the
error ratio stays under the gate, and the run passes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, SandboxHelper

from opsproof.load import underchaos

pytestmark = pytest.mark.integration
EXPERIMENTS = REPO / "chaos" / "experiments"


def test_killing_the_app_is_felt_and_the_error_rate_gate_says_so(healthy: SandboxHelper, tmp_path: Path) -> None:
    result = underchaos.run(EXPERIMENTS / "app-killed.yaml", "steady", sandbox_dir=healthy.box.dir, out=tmp_path)
    assert result.outcome.status == "completed", result.summary()
    felt = result.felt
    assert felt["until"] == "recovered", felt
    assert felt["failures"] > 0, felt  # connections refused until the restart
    assert felt["failing_s"] >= 1, felt
    assert felt["failures"] == result.load.figures["total"]["failures"], felt  # none failed outside the fault
    assert not result.ok
    [breach] = result.load.failed()
    assert breach.threshold.text == "error_rate < 1%"
    assert re.fullmatch(r"load\[steady\]: error_rate [\d.]+% \([\d,]+ failed of [\d,]+ requests\), expected < 1%",
                        breach.message()), breach.message()
    saved = json.loads(result.outcome.evidence_path.read_text())  # type: ignore[union-attr]
    assert saved["ok"] is False
    assert breach.message() in saved["failures"]
    assert saved["under_load"]["felt"]["failures"] == felt["failures"]
    assert saved["under_load"]["problems"] == []
    assert result.felt["budget"]["burned_percent"] == "all" or result.felt["budget"]["burned_percent"] > 100
    assert saved["timeline"], saved.keys()
    assert saved["detections"], saved.keys()


def test_redis_down_degrades_but_serves_and_passes(healthy: SandboxHelper, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "opsproof.cli", "chaos", "run", str(EXPERIMENTS / "redis-down.yaml"),
                           "--load", "steady", "--sandbox-dir", str(healthy.box.dir), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^  under load\[steady\]:$", done.stdout, re.M), done.stdout
    found = re.search(r"during the fault \((\d+) s, fault → recovered\): (\d[\d,]*) of (\d[\d,]*) requests failed",
                      done.stdout)
    assert found, done.stdout
    assert int(found[3].replace(",", "")) > 0  # the users kept being served during the fault
    [evidence] = (tmp_path / "chaos").glob("redis-down-*.json")
    saved = json.loads(evidence.read_text())
    assert saved["ok"] is True
    felt = saved["under_load"]["felt"]
    assert felt["requests"] > 0, felt
    assert felt["error_ratio"] < 0.01, felt
    assert [v["verdict"] for v in saved["under_load"]["verdicts"]] == ["pass", "pass"], saved["under_load"]


def test_a_load_shorter_than_the_experiment_fails_naming_the_fix(healthy: SandboxHelper, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    text = (healthy.box.dir / "inventory.yaml").read_text()
    inventory.write_text(text.replace("duration: 3m", "duration: 2s", 1))
    assert inventory.read_text() != text
    result = underchaos.run(EXPERIMENTS / "redis-down.yaml", "steady", inventory=inventory,
                            sandbox_dir=healthy.box.dir, out=tmp_path)
    assert not result.ok
    [problem] = result.problems
    assert re.fullmatch(r"load\[steady\]: the load ended [\d.]+ s before the experiment did, so users' view of the "
                        r"rest is missing\. Fix: make its duration longer than the experiment \(\d+ s here\)", problem)
