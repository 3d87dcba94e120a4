"""Chaos safety on the real sandbox: a missing alert rule and a remediation that never comes fail with their
reasons; Ctrl-C and SIGTERM mid-fault still roll back and the audit finds nothing left; production refuses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import REPO, SandboxHelper, interruptible

from opsproof.chaos import runner
from opsproof.chaos.audit import audit
from opsproof.chaos.context import ChaosRefused
from opsproof.sandbox import configs
from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration
EXPERIMENTS = REPO / "chaos" / "experiments"


def shorten(**within: float) -> Any:
    """Shorter waits for the probes after a failure that is already certain (the test needs no 30 s timeouts)."""
    def change(experiment: dict[str, Any]) -> None:
        for activity in experiment["method"]:
            func = activity["provider"].get("func")
            if func in within:
                activity["provider"].setdefault("arguments", {})["within"] = within[func]
    return change


@pytest.fixture
def without_redis_down_rule(healthy: SandboxHelper) -> Iterator[SandboxHelper]:
    rules = healthy.box.dir / "prometheus" / "rules.yml"
    original = rules.read_text()

    def reload(text: str, present: bool) -> None:
        rules.write_text(text)
        httpx.post(healthy.box.url("prometheus") + "/-/reload", timeout=5).raise_for_status()
        wait_for(lambda: ("RedisDown" in str(healthy.prometheus("/api/v1/rules"))) == present, 10, "rules not reloaded")

    reload(configs.rules_yaml([r for r in configs.RULES if r["alert"] != "RedisDown"]), present=False)
    try:
        yield healthy
    finally:
        reload(original, present=True)


def test_removed_alert_rule_fails_with_its_budget(without_redis_down_rule: SandboxHelper, tmp_path: Path) -> None:
    box = without_redis_down_rule.box
    outcome = runner.run(EXPERIMENTS / "redis-down.yaml", sandbox_dir=box.dir, out=tmp_path,
                         change=shorten(alert_delivered=2))
    assert not outcome.ok
    [fires] = [f for f in outcome.failures if f.startswith("redis-down-fires: ")]
    assert re.fullmatch(r"redis-down-fires: alert RedisDown never fired within (\d+(\.\d+)?) s "
                        r"\(budget (\d+(\.\d+)?) s: scrape \d+ \+ evaluation 1 \+ for 0 \+ group_wait 1\); "
                        r"rule RedisDown is not loaded in Prometheus; .*", fires), fires
    assert outcome.evidence["rollbacks_run"] == 1
    assert outcome.evidence["audit"]["clean"], outcome.evidence["audit"]
    assert box.sup.alive("redis")


def test_remediation_that_never_comes_fails_on_recovery(healthy: SandboxHelper, tmp_path: Path) -> None:
    def no_supervisor(experiment: dict[str, Any]) -> None:
        shorten(alert_resolves=2)(experiment)
        experiment["method"].insert(0, {"type": "action", "name": "disable-supervisor", "provider": {
            "type": "python", "module": "opsproof.chaos.faults", "func": "disable_supervisor"}})
        for activity in experiment["method"]:
            if activity["provider"]["func"] == "recovers_within":
                activity["provider"]["arguments"]["seconds"] = 12

    outcome = runner.run(EXPERIMENTS / "app-killed.yaml", sandbox_dir=healthy.box.dir, out=tmp_path,
                         change=no_supervisor)
    assert not outcome.ok
    [recovery] = [f for f in outcome.failures if f.startswith("app-recovers: ")]
    assert re.fullmatch(r"app-recovers: http\[app\]: not recovered 12 s after the fault \(unreachable "
                        r"\(ConnectError: .*\)\), expected HTTP 200 with status='ok' within 12 s", recovery), recovery
    assert outcome.evidence["rollbacks_run"] == 1  # the rollback enabled the supervisor, which restarted the app
    assert outcome.evidence["audit"]["clean"], outcome.evidence["audit"]
    assert not healthy.box.keeper_files()["hold"].exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_mid_fault_still_rolls_back(healthy: SandboxHelper, tmp_path: Path, sig: signal.Signals) -> None:
    box = healthy.box
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsproof.cli", "chaos", "run", str(EXPERIMENTS / "redis-down.yaml"),
         "--sandbox-dir", str(box.dir), "--out", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
        preexec_fn=interruptible)
    try:
        wait_for(lambda: not box.sup.alive("redis"), 30, "the fault (redis killed) was not injected")
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, output
    assert box.sup.alive("redis"), f"the rollback did not start redis again:\n{output}"
    report = audit({"opsproof_sandbox_dir": str(box.dir)})
    assert report.clean, report.problems
    [saved] = [json.loads(p.read_text()) for p in (tmp_path / "chaos").glob("redis-down-*.json")]
    assert saved["status"] == "interrupted"
    assert saved["rollbacks_run"] == 1
    assert [a["status"] for a in saved["activities"] if a.get("rollback")] == ["succeeded"]
    assert saved["audit"]["clean"]


def test_plain_chaos_run_rolls_back_when_interrupted(healthy: SandboxHelper, tmp_path: Path) -> None:
    """Chaos Toolkit's own `chaos run`, no --rollback-strategy: the experiment's runtime block makes the rollbacks
    run after SIGTERM mid-fault, and the opsproof control's audit finds nothing left."""
    box = healthy.box
    env = {**os.environ, "OPSPROOF_SANDBOX_DIR": str(box.dir), "OPSPROOF_OUT": str(tmp_path / "out")}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "chaos"), "run", str(EXPERIMENTS / "redis-down.yaml")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=interruptible)
    try:
        wait_for(lambda: not box.sup.alive("redis"), 30, "the fault (redis killed) was not injected")
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert box.sup.alive("redis"), f"the rollback did not start redis again:\n{output}"
    assert "Rollbacks strategy: always" in (tmp_path / "chaostoolkit.log").read_text()
    assert audit({"opsproof_sandbox_dir": str(box.dir)}).clean
    [saved] = [json.loads(p.read_text()) for p in (tmp_path / "out" / "chaos").glob("redis-down-*.json")]
    assert saved["rollbacks_run"] == 1
    assert saved["audit"]["clean"]


def test_production_refuses_chaos_unless_allowed(healthy: SandboxHelper, tmp_path: Path) -> None:
    inventory = healthy.derive(tmp_path, {"production": True})
    with pytest.raises(ChaosRefused, match=r"^environment sandbox is marked production: true; refusing to run the "
                                           r"experiment redis-down\.yaml\. Fix: run with --allow-destructive"):
        runner.run(EXPERIMENTS / "redis-down.yaml", inventory=inventory, sandbox_dir=healthy.box.dir,
                   out=tmp_path)
    assert healthy.box.sup.alive("redis")
    done = subprocess.run([sys.executable, "-m", "opsproof.cli", "chaos", "run", str(EXPERIMENTS / "app-killed.yaml"),
                           "--inventory", str(inventory), "--sandbox-dir", str(healthy.box.dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to run the experiment app-killed.yaml" in done.stderr
    assert not list(tmp_path.rglob("*.json")), "nothing ran, so nothing was written"
