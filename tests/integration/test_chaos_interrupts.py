"""Interrupts and leftovers (issue #10): Ctrl-C and SIGTERM end a `pytest chaos` session after the current
experiment's rollbacks; a chaos run killed outright (SIGKILL) leaves its faults in a journal that `opsproof chaos
recover` (and the next run) undoes, `opsproof sandbox status` shows them until then, and a killed `pytest chaos`
leaves no sandbox folder behind past the next run; a Redis pause is really lifted by its rollback; a refused
plain `chaos run` touches nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry
from support import REPO, SandboxHelper, interruptible

from opsproof.chaos import faultjournal, faults, proxy, redisfaults, runner
from opsproof.chaos.audit import audit
from opsproof.util.poll import wait_until
from opsproof.util.process import proc_state

pytestmark = pytest.mark.integration
EXPERIMENTS = REPO / "chaos" / "experiments"
CHAOS_PREFIX = "opsproof-chaos-sandbox-"


@pytest.fixture
def root() -> Iterator[Path]:
    """A folder of this test's own for the `pytest chaos` sandboxes it starts (world-searchable, as /tmp is)."""
    path = Path(tempfile.mkdtemp(prefix="opsproof-interrupts-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pytest_chaos(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest", "chaos", "-p", "no:cacheprovider", "-v", *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OPSPROOF_TEST_SANDBOX_ROOT": str(root)}, preexec_fn=interruptible)


def sandbox_of(root: Path, proc: subprocess.Popen[str]) -> Path:
    folders: list[Path] = []

    def found() -> bool:
        folders[:] = [p for p in root.glob(f"{CHAOS_PREFIX}{proc.pid}-*") if (p / "sandbox.json").exists()]
        return bool(folders) and proc.poll() is None

    wait_until(found, 180, f"no sandbox of pytest chaos (pid {proc.pid}) in {root}")
    return folders[0]


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return output


def app_exits(folder: Path) -> int:
    try:
        lines = (folder / "app" / "keeper.jsonl").read_text().splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if line.strip() and json.loads(line)["event"] == "exited")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_ends_the_pytest_chaos_session(root: Path, sig: signal.Signals) -> None:
    proc = pytest_chaos(root, "-k", "app-killed or redis-down")
    try:
        folder = sandbox_of(root, proc)
        wait_until(lambda: app_exits(folder) > 0, 180, "app-killed did not kill the app")
        proc.send_signal(sig)
    finally:
        output = finish(proc)
    assert proc.returncode == 2, output
    assert f"{sig.name} during a chaos run: rolled back, stopping" in output, output  # pytest's interrupt line
    assert "test_experiment[redis-down]" not in output, f"the next experiment ran:\n{output}"
    assert not list(root.iterdir()), f"the session's sandbox was not torn down:\n{output}"


def test_sigkilled_pytest_chaos_leaves_a_private_folder_the_next_run_removes(root: Path) -> None:
    proc = pytest_chaos(root, "-k", "app-killed")
    try:
        folder = sandbox_of(root, proc)
        proc.kill()
    finally:
        finish(proc)
    assert folder.exists()
    assert folder.stat().st_mode & 0o007 == 0, oct(folder.stat().st_mode)  # no one else lists or enters it
    done = subprocess.run([sys.executable, "-m", "pytest", "chaos", "-p", "no:cacheprovider", "--collect-only", "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OPSPROOF_TEST_SANDBOX_ROOT": str(root)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert not folder.exists(), "the next pytest chaos did not remove the killed run's sandbox folder"


HOLD = {"title": "two faults, held", "description": "SIGSTOP an exporter, add proxy latency, then wait",
        "method": [
            {"type": "action", "name": "stop-exporter", "provider": {
                "type": "python", "module": "opsproof.chaos.faults", "func": "stop_service",
                "arguments": {"service": "redis_exporter"}}},
            {"type": "action", "name": "add-latency", "provider": {
                "type": "python", "module": "opsproof.chaos.proxy", "func": "proxy_fault",
                "arguments": {"mode": "latency", "latency_ms": 700}}},
            {"type": "probe", "name": "hold", "provider": {
                "type": "python", "module": "opsproof.chaos.alerts", "func": "query_settles",
                "arguments": {"query": "vector(1)", "at_most": 0, "within": 120}}}],
        "rollbacks": [
            {"type": "action", "name": "exporter-running", "provider": {
                "type": "python", "module": "opsproof.chaos.faults", "func": "ensure_running",
                "arguments": {"service": "redis_exporter"}}},
            {"type": "action", "name": "proxy-clear", "provider": {
                "type": "python", "module": "opsproof.chaos.proxy", "func": "proxy_clear"}}]}
CHECK_ONLY = {"title": "nothing injected", "description": "one read-only probe",
              "method": [{"type": "probe", "name": "app-serves", "provider": {
                  "type": "python", "module": "opsproof.chaos.probes", "func": "app_serves"}}]}


@pytest.fixture
def cfg(healthy: SandboxHelper) -> Iterator[dict[str, Any]]:
    configuration = {"opsproof_sandbox_dir": str(healthy.box.dir)}
    yield configuration
    faults.ensure_running("redis_exporter", configuration=configuration)
    proxy.proxy_clear(configuration=configuration)
    redisfaults.unpause_clients(configuration=configuration)
    faultjournal.location(healthy.box.dir).unlink(missing_ok=True)


def kill_mid_fault(box: Any, tmp_path: Path, cfg: dict[str, Any]) -> None:
    experiment = tmp_path / "hold.yaml"
    experiment.write_text(yaml.safe_dump(HOLD))
    proc = subprocess.Popen([sys.executable, "-m", "opsproof.cli", "chaos", "run", str(experiment),
                             "--sandbox-dir", str(box.dir), "--out", str(tmp_path)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: proxy.proxy_state(configuration=cfg)["mode"] == "latency", 60,
                   "the faults were not injected")
        proc.kill()
    finally:
        finish(proc)


def status(box: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsproof.cli", "sandbox", "status", "--dir", str(box.dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=30)


def test_sigkill_mid_fault_then_recover_leaves_nothing(healthy: SandboxHelper, cfg: dict[str, Any],
                                                        tmp_path: Path) -> None:
    box = healthy.box
    kill_mid_fault(box, tmp_path, cfg)
    pid = faults.service_pid(box, "redis_exporter")
    assert pid is not None
    assert proc_state(pid) == "T"
    shown = status(box)
    assert shown.returncode == 3, shown.stdout
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert "stopped (SIGSTOP)" in lines["redis_exporter"], shown.stdout
    assert "fault latency 700 ms" in lines["proxy"], shown.stdout
    assert "2 fault(s) not rolled back" in shown.stdout, shown.stdout
    assert not audit(cfg).clean

    recover = [sys.executable, "-m", "opsproof.cli", "chaos", "recover", "--sandbox-dir", str(box.dir)]
    done = subprocess.run(recover, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rolled back 2 fault(s)" in done.stdout, done.stdout
    report = audit(cfg)
    assert report.clean, report.problems
    assert status(box).returncode == 0
    again = subprocess.run(recover, cwd=REPO, capture_output=True, text=True, timeout=60)  # idempotent
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to recover" in again.stdout


def test_sigkill_mid_fault_then_the_next_run_recovers_first(healthy: SandboxHelper, cfg: dict[str, Any],
                                                            tmp_path: Path) -> None:
    kill_mid_fault(healthy.box, tmp_path, cfg)
    assert not audit(cfg).clean
    experiment = tmp_path / "check-only.yaml"
    experiment.write_text(yaml.safe_dump(CHECK_ONLY))
    outcome = runner.run(experiment, sandbox_dir=healthy.box.dir, out=tmp_path / "evidence")
    assert outcome.evidence["audit"]["clean"], outcome.evidence["audit"]
    recovered = [m for m in outcome.evidence["timeline"] if m["event"] == "leftover_rolled_back"]
    assert len(recovered) == 2, outcome.evidence["timeline"]
    assert not faultjournal.entries(faultjournal.location(healthy.box.dir))


def can_write(client: redis.Redis) -> bool:
    try:
        client.set("opsproof:test:after-unpause", "1", px=1000)
    except redis.TimeoutError:
        return False
    return True


def fresh_client(helper: SandboxHelper) -> redis.Redis:
    return redis.Redis.from_url(helper.box.redis_url(), socket_timeout=0.5, socket_connect_timeout=0.5,
                                retry=Retry(NoBackoff(), 0))


def test_redis_pause_rollback_really_unpauses(healthy: SandboxHelper, cfg: dict[str, Any]) -> None:
    out = redisfaults.pause_clients(seconds=20, configuration=cfg)
    assert out["mode"] == "WRITE"  # the default: ALL cannot be lifted before its end (CLIENT UNPAUSE blocks too)
    client = fresh_client(healthy)
    assert not can_write(client)
    assert redisfaults.unpause_clients(configuration=cfg)["unpaused"] is True
    wait_until(lambda: can_write(client), 2, "a write still blocks after the rollback")


def test_redis_pause_all_rollback_returns_once_lifted(healthy: SandboxHelper, cfg: dict[str, Any]) -> None:
    redisfaults.pause_clients(seconds=2, mode="ALL", configuration=cfg)
    out = redisfaults.unpause_clients(configuration=cfg)  # waits (bounded by the pause) instead of timing out
    assert out["unpaused"] is True
    wait_until(lambda: can_write(fresh_client(healthy)), 2, "a write still blocks after the rollback")


def test_refused_plain_chaos_run_touches_nothing(healthy: SandboxHelper, tmp_path: Path) -> None:
    """Chaos Toolkit's own `chaos run` on a production inventory: the opsproof control refuses it, and not even the
    rollbacks run (app-killed's would enable the app's supervisor: the hold file set here must stay)."""
    inventory = healthy.derive(tmp_path, {"production": True})
    hold = healthy.box.keeper_files()["hold"]
    hold.touch()
    try:
        env = {**os.environ, "OPSPROOF_SANDBOX_DIR": str(healthy.box.dir), "OPSPROOF_INVENTORY": str(inventory),
               "OPSPROOF_OUT": str(tmp_path / "evidence")}
        done = subprocess.run([str(Path(sys.executable).parent / "chaos"), "run",
                               str(EXPERIMENTS / "app-killed.yaml")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
        log = (tmp_path / "chaostoolkit.log").read_text()
        assert "refusing to run the experiment" in log, done.stdout + done.stderr
        assert hold.exists(), f"a rollback of the refused run enabled the supervisor:\n{log}"
        journal = json.loads((tmp_path / "journal.json").read_text())
        assert journal["rollbacks"] == [], journal["rollbacks"]
        assert not (tmp_path / "evidence").exists(), "a refused run audits nothing (the audit writes to Redis)"
    finally:
        hold.unlink(missing_ok=True)
