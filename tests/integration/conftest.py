"""Fixtures for the engine's own tests: one real sandbox per test session (started only when a test asks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from support import SandboxHelper, own_sandbox

if TYPE_CHECKING:
    import docker


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


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """The Docker daemon of the container tests (`make docker` starts one): a missing daemon fails them, loudly."""
    from opsproof.containers import docker_client as connect

    return connect()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    """The one image of the sandbox's services (built here once, ~50 s; then a lookup)."""
    from opsproof.containers.images import SANDBOX, ensure_image

    return ensure_image(SANDBOX, docker_client)


@pytest.fixture(scope="session")
def postgres17_image(docker_client: docker.DockerClient) -> str:
    """PostgreSQL 17 (Debian trixie), for drills across majors: the host has only 15."""
    from opsproof.containers.images import POSTGRES_17, ensure_image

    return ensure_image(POSTGRES_17, docker_client)
