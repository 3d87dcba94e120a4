"""The pytest fixtures of :mod:`opsproof.containers.environment`, exposed by the opsproof plugin.

``opsproof_environment`` (session scope) starts the containers of a spec and yields the
:class:`~opsproof.containers.environment.Environment`: ``.inventory`` (validated) and ``.path`` (the inventory file,
for ``pytest checks/post_deploy --inventory …``). The spec comes from ``--opsproof-environment FILE``, or from a
``opsproof_environment_spec`` fixture of your own (a dict or a path) that overrides the default.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opsproof.containers.environment import Environment


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
    from opsproof.containers.environment import environment

    with environment(opsproof_environment_spec, tmp_path_factory.mktemp("opsproof-environment")) as env:
        yield env
