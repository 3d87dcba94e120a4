"""The chaos suite's sandbox: one of its own per pytest-xdist worker, so that no engine test breaks something
while an experiment measures; the experiments run one at a time on it (xdist group ``chaos``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import SandboxHelper, own_sandbox  # tests/support.py: the engine tests' sandbox helpers


@pytest.fixture(scope="session")
def chaos_sandbox() -> Iterator[SandboxHelper]:
    with own_sandbox("opsproof-chaos-sandbox-") as helper:
        yield helper
