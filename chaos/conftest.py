"""The chaos suite's sandbox: one of its own per pytest-xdist worker, so that no engine test breaks something
while an experiment measures; the experiments run one at a time on it (xdist group ``chaos``)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import SandboxHelper

from opsproof.sandbox.control import Sandbox


@pytest.fixture(scope="session")
def chaos_sandbox() -> Iterator[SandboxHelper]:
    state = tempfile.mkdtemp(prefix="opsproof-chaos-sandbox-", dir="/tmp")
    box = Sandbox(state, ephemeral=True)
    try:
        box.up()
        yield SandboxHelper(box)
    finally:
        box.down()
        shutil.rmtree(state, ignore_errors=True)
