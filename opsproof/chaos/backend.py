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

SANDBOX_BACKENDS = {  # a sandbox's provider (its sandbox.json says which) → the class that opens it
    "process": "opsproof.sandbox.control:Sandbox",  # the default: the processes of `opsproof sandbox up`
    "docker": "opsproof.sandbox.docker_provider:DockerSandbox",  # `opsproof sandbox up --provider docker`
}


class ProcessBackend(Protocol):
    """Services as processes on this host — run by the sandbox's supervisor or in its containers: the pid that
    *is* a service, start/stop, URLs, the app keeper's files. ``sup`` is what the run reaps at exit."""

    sup: Supervisor

    def service_pid(self, name: str) -> int | None:
        """The host pid of the process that is the service (for the app: the application, not its keeper); None
        while it is not running."""
        ...

    def service_alive(self, name: str) -> bool:
        """The service — or, for the app, its keeper — is there: a rollback need not start it."""
        ...

    def start_service(self, name: str) -> None: ...

    def stop_service(self, name: str) -> None: ...

    def url(self, name: str) -> str: ...

    def keeper_files(self) -> dict[str, Path]: ...


def open_backend(state_dir: Path, provider: str = "process") -> ProcessBackend:
    """The sandbox of ``provider`` (a key of :data:`SANDBOX_BACKENDS`), its class loaded by name, opened on its
    state folder."""
    if provider not in SANDBOX_BACKENDS:
        raise KeyError(f"no sandbox provider {provider!r} (known: {', '.join(SANDBOX_BACKENDS)})")
    module, _, name = SANDBOX_BACKENDS[provider].partition(":")
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
