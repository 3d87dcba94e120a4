"""Fixtures for the engine's own tests: one real sandbox per test session (started only when a test asks)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import SandboxHelper, own_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHelper]:
    """A real sandbox of its own (not the user's), torn down after the session whatever happens."""
    with own_sandbox("opsproof-test-sandbox-") as helper:
        yield helper


@pytest.fixture
def healthy(sandbox: SandboxHelper) -> Iterator[SandboxHelper]:
    """The sandbox, checked healthy before the test and brought back to health after it."""
    sandbox.wait_healthy()
    yield sandbox
    sandbox.restore()
