"""The process backend chaos faults act through: what chaos needs of it, and how it is reached.

DESIGN.md: chaos never imports the sandbox — the sandbox is one backend, reached through this interface and
loaded by name (``module:Class``, the way Chaos Toolkit reaches its providers), never by a static import.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, cast

from opsproof.util.process import Supervisor

SANDBOX_BACKEND = "opsproof.sandbox.control:Sandbox"  # the default: the processes of `opsproof sandbox up`


class ProcessBackend(Protocol):
    """Services as processes: their supervisor (pids, signals), start/stop, URLs, the app keeper's files."""

    sup: Supervisor

    def start_service(self, name: str) -> None: ...

    def stop_service(self, name: str) -> None: ...

    def url(self, name: str) -> str: ...

    def keeper_files(self) -> dict[str, Path]: ...


def open_backend(state_dir: Path, spec: str = SANDBOX_BACKEND) -> ProcessBackend:
    """The backend class named by ``spec`` (``module:Class``), opened on its state folder."""
    module, _, name = spec.partition(":")
    factory = getattr(importlib.import_module(module), name)
    return cast(ProcessBackend, factory(state_dir))
