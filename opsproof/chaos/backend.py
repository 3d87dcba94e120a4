"""The backends chaos faults act through: what chaos needs of each, and how it is reached — by name.

* :class:`ProcessBackend`: the sandbox's services as processes (``opsproof.chaos.faults``). DESIGN.md: chaos
  never imports the sandbox — the sandbox is one backend, reached through this interface and loaded by name
  (``module:Class``, the way Chaos Toolkit reaches its providers), never by a static import.
* :class:`TargetBackend`: faults on targets the inventory names (``opsproof.chaos.targets``) — ``docker``
  (containers), ``process`` (pid files, systemd units, command pairs), ``kubernetes`` (pods, deployments) — each
  fault with an idempotent rollback and its part of the audit. :data:`TARGET_BACKENDS` names their classes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol, cast

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


TARGET_BACKENDS = {  # backend name → its class, loaded by name like the sandbox
    "docker": "opsproof.chaos.dockerbackend:DockerBackend",
    "process": "opsproof.chaos.procbackend:LocalProcessBackend",
    "kubernetes": "opsproof.chaos.k8s:KubernetesBackend",
}


class TargetBackend(Protocol):
    """Faults on the targets of one kind of inventory entry; opened on the run's Context (its inventory)."""

    name: str
    faults: frozenset[str]  # what it can inject: stop, kill, pause, restart, disconnect, delete_pods, scale …

    def available(self) -> str | None:
        """None when the backend can act here; else why not (no docker daemon, no systemctl …)."""
        ...

    def option_problems(self, target: str, fault: str, options: dict[str, Any]) -> list[str]:
        """What is wrong with ``fault`` on ``target`` with these options, found without touching anything."""
        ...

    def prepare(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        """The options the rollback needs, read before the fault (e.g. a deployment's replicas)."""
        ...

    def inject(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]: ...

    def rollback(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        """Undo ``fault``; idempotent: rolling back twice, or after the target recovered by itself, does nothing."""
        ...

    def leftovers(self, target: str, fault: str, options: dict[str, Any]) -> str:
        """The audit: what ``fault`` left on ``target`` (empty when nothing)."""
        ...


def open_target_backend(name: str, ctx: Any) -> TargetBackend:
    """The target backend called ``name`` (a key of :data:`TARGET_BACKENDS`) on ``ctx`` (a chaos Context)."""
    spec = TARGET_BACKENDS.get(name)
    if spec is None:
        raise KeyError(f"no chaos backend {name!r} (known: {', '.join(TARGET_BACKENDS)})")
    module, _, cls = spec.partition(":")
    return cast(TargetBackend, getattr(importlib.import_module(module), cls)(ctx))
