"""``opsproof_environment``: containers of a team's own images for its post-deploy gate in CI (README: Containers).

:func:`environment` starts the containers of a spec (:mod:`opsproof.containers.environment`) and yields an
:class:`Environment`: ``.inventory`` (validated), ``.path`` (the inventory file, for
``pytest checks/post_deploy --inventory …``), ``.ports``. The plugin exposes it as a session fixture; its spec comes
from ``--opsproof-environment FILE``, or from an ``opsproof_environment_spec`` fixture of your own (a dict or a
path) that overrides the default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opsproof.inventory import Inventory, load


@dataclass
class Environment:
    """The containers started: the inventory of them, where it was written, each service's host ports."""

    inventory: Inventory
    path: Path
    ports: dict[str, dict[int, int]] = field(default_factory=dict)  # service → container port → host port
    containers: dict[str, Any] = field(default_factory=dict)  # service → testcontainers DockerContainer


@contextlib.contextmanager
def environment(spec: Mapping[str, Any] | str | Path, workdir: Path | None = None,
                labels: Mapping[str, str] | None = None) -> Iterator[Environment]:
    """Start the spec's containers, yield the :class:`Environment`, remove every container on leaving."""
    from opsproof.containers.environment import start

    with start(spec, workdir, labels) as started:
        yield Environment(load(started.path), started.path, started.ports, started.containers)


@pytest.fixture(scope="session")
def opsproof_environment_spec(request: pytest.FixtureRequest) -> Any:
    """The spec of ``opsproof_environment``: ``--opsproof-environment FILE``; override it with a fixture of yours."""
    path = request.config.getoption("opsproof_environment", None)
    if not path:
        raise pytest.UsageError("opsproof_environment needs a spec: pass --opsproof-environment FILE, or define an "
                                "`opsproof_environment_spec` fixture returning a dict or a path")
    return Path(path)


@pytest.fixture(scope="session")
def opsproof_environment(opsproof_environment_spec: Any,
                         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """The spec's containers, started once per session, removed (by label) after it whatever happens."""
    with environment(opsproof_environment_spec, tmp_path_factory.mktemp("opsproof-environment")) as env:
        yield env
