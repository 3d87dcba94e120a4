"""The chaos suite's environment. Without ``--inventory``: a sandbox of its own per pytest-xdist worker, so that
no engine test breaks something while an experiment measures; the experiments run one at a time on it (xdist group
``chaos``). With ``--inventory FILE`` (like every other suite; env OPSPROOF_INVENTORY): the experiments run against
that inventory — a sandbox's own (sandbox.json beside it) or a stack of one's own — and no sandbox is started;
``--sandbox-dir DIR`` alone: a running sandbox of either provider (process or docker), with its inventory;
``--experiments PATH`` (a file or a folder, repeatable) names the experiments to run instead of chaos/experiments.

SIGTERM ends the session as Ctrl-C does (KeyboardInterrupt: the current experiment rolls back, the sandbox is torn
down, pytest exits 2), and a session first removes the sandbox folders of sessions killed outright (SIGKILL)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import SandboxHelper, own_sandbox, sandbox_root  # tests/support.py: the engine tests' sandbox helpers

from opsproof.util.process import sweep_orphans

PREFIX = "opsproof-chaos-sandbox-"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("opsproof").addoption(
        "--experiments", action="append", metavar="PATH", default=None,
        help="chaos experiments to run (a file or a folder of *.yaml; repeatable). Default: chaos/experiments")
    parser.getgroup("opsproof").addoption(
        "--load", metavar="SCENARIO", default=None,
        help="run each experiment under this load scenario of the inventory (its thresholds gate what users felt)")


@dataclass
class ChaosEnv:
    """Where the experiments run: an inventory, the sandbox folder when there is one, the suite's own sandbox."""

    inventory: Path | None
    sandbox_dir: Path | None
    helper: SandboxHelper | None  # the suite's own sandbox (no --inventory)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def pytest_sessionstart(session: pytest.Session) -> None:
    sweep_orphans(PREFIX, sandbox_root())
    signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture(scope="session")
def chaos_env(pytestconfig: pytest.Config) -> Iterator[ChaosEnv]:
    given = pytestconfig.getoption("inventory")
    if given:
        inventory = Path(given)
        beside = inventory.parent / "sandbox.json"
        box = pytestconfig.getoption("sandbox_dir") or (inventory.parent if beside.exists() else None)
        yield ChaosEnv(inventory, Path(box) if box else None, None)
        return
    running = pytestconfig.getoption("sandbox_dir")
    if running:  # a running sandbox of either provider: its own inventory
        yield ChaosEnv(Path(running) / "inventory.yaml", Path(running), None)
        return
    with own_sandbox(PREFIX) as helper:
        yield ChaosEnv(None, helper.box.dir, helper)
