"""Fixtures for the engine's own tests: one real sandbox per test session (started only when a test asks)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
from support import SandboxHelper

from opsproof.sandbox.control import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHelper]:
    """A real sandbox of its own (not the user's), torn down after the session whatever happens."""
    state = tempfile.mkdtemp(prefix="opsproof-test-sandbox-", dir="/tmp")
    box = Sandbox(state, ephemeral=True)
    try:
        box.up()
        yield SandboxHelper(box)
    finally:
        box.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def healthy(sandbox: SandboxHelper) -> Iterator[SandboxHelper]:
    """The sandbox, checked healthy before the test and brought back to health after it."""
    sandbox.wait_healthy()
    yield sandbox
    sandbox.restore()
