"""The chaos suite's sandbox: one of its own per pytest-xdist worker, so that no engine test breaks something
while an experiment measures; the experiments run one at a time on it (xdist group ``chaos``).

SIGTERM ends the session as Ctrl-C does (KeyboardInterrupt: the current experiment rolls back, the sandbox is torn
down, pytest exits 2), and a session first removes the sandbox folders of sessions killed outright (SIGKILL)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import SandboxHelper, own_sandbox, sandbox_root  # tests/support.py: the engine tests' sandbox helpers

from opsproof.util.process import sweep_orphans

PREFIX = "opsproof-chaos-sandbox-"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def pytest_sessionstart(session: pytest.Session) -> None:
    sweep_orphans(PREFIX, sandbox_root())
    signal.signal(signal.SIGTERM, _terminate)


@pytest.fixture(scope="session")
def chaos_sandbox() -> Iterator[SandboxHelper]:
    with own_sandbox(PREFIX) as helper:
        yield helper
