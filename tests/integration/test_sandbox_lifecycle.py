"""The sandbox leaves no process behind: on `down`, at the end of a run, on Ctrl-C, SIGTERM and even SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO, interruptible

from opsproof.sandbox.control import SERVICES
from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def state_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="opsproof-lifecycle-", dir="/tmp"))
    d.chmod(0o755)  # the postgres user must reach the sandbox's data folder
    yield d / "sandbox"
    subprocess.run([sys.executable, "-m", "opsproof.cli", "sandbox", "down", "--dir", str(d / "sandbox")],
                   capture_output=True, timeout=120)
    subprocess.run(["rm", "-rf", str(d)], check=False)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def mentioning(path: Path) -> list[int]:
    """Live processes whose command line mentions the path."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmdline and alive(int(entry.name)) and "pytest" not in cmdline:
                found.append(int(entry.name))
    return found


def watch_pids(state: Path, until: float, enough: int) -> set[int]:
    """Collect the sandbox's pids from its pids.json until `enough` services started (or the deadline)."""
    pids: set[int] = set()
    while time.monotonic() < until:
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(v["pid"]) for v in json.loads((state / "pids.json").read_text()).values()}
        if len(pids) >= enough:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"only {len(pids)} services started")


def start_run(state: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "smoke", "--sandbox-dir", str(state), "-p", "no:cacheprovider", "-q",
         "--opsproof-record", str(state.parent / "results.jsonl"), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible,
    )


def assert_nothing_left(pids: set[int], state: Path) -> None:
    wait_for(lambda: not any(alive(p) for p in pids), 20, f"processes left: {[p for p in pids if alive(p)]}")
    assert mentioning(state) == []


def test_a_run_without_inventory_starts_and_stops_its_own_sandbox(state_dir: Path) -> None:
    proc = start_run(state_dir)
    pids = watch_pids(state_dir, time.monotonic() + 60, 9)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert "using the sandbox (started for this run, stopped after it)" in out
    assert_nothing_left(pids, state_dir)
    assert not state_dir.exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_an_interrupted_run_leaves_nothing(state_dir: Path, sig: signal.Signals) -> None:
    proc = start_run(state_dir)
    pids = watch_pids(state_dir, time.monotonic() + 60, 4)  # mid-start: PostgreSQL, replica, Redis, webhook…
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert_nothing_left(pids, state_dir)


def test_cli_up_status_down(state_dir: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "opsproof.cli", "sandbox", *args, "--dir", str(state_dir)],
                              cwd=REPO, capture_output=True, text=True, timeout=180)

    assert cli("status").returncode == 3
    up = cli("up")
    assert up.returncode == 0, up.stderr
    pids = {int(v["pid"]) for v in json.loads((state_dir / "pids.json").read_text()).values()}
    assert len(pids) == len(SERVICES)  # one recorded process per service (the app's keeper for the app)
    assert all(alive(p) for p in pids)
    status = cli("status")
    assert status.returncode == 0
    assert status.stdout.count(" up 127.0.0.1:") == len(SERVICES)
    passwords = json.loads((state_dir / "sandbox.json").read_text())["passwords"].values()
    # a suite run attaches to the sandbox that is up and leaves it up
    run = start_run(state_dir)
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 0
    assert "using the sandbox (already up)" in out
    assert all(alive(p) for p in pids)
    for pid in pids:  # secrets are passed in files and the environment, never on a command line `ps` shows
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert not any(secret in cmdline for secret in passwords)
    down = cli("down")
    assert down.returncode == 0
    assert "no process left" in down.stdout
    assert_nothing_left(pids, state_dir)


def test_port_reservations_are_shared_between_processes(tmp_path: Path) -> None:
    """Two sandboxes starting at once (xdist workers) must not pick the same port: a lock file holds the pid."""
    from opsproof.util.process import _reserve

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        held = tmp_path / "21001"
        held.write_text(str(live.pid))
        assert not _reserve(held)  # another live process holds it
        stale = tmp_path / "21002"
        stale.write_text("999999999")  # no such process
        assert _reserve(stale)
        assert stale.read_text() == str(os.getpid())
        assert not _reserve(stale)  # ours already: not handed out twice
    finally:
        live.kill()
        live.wait()
