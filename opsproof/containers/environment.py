"""A testcontainers environment from an inventory-shaped spec: a team's CI runs its post-deploy gate against
containers of its own images before anything reaches staging.

The spec (a YAML file or a dict) names the containers and the inventory that describes them::

    environment: ci
    services:                      # one container each, on a network of their own (reached there by name)
      db:
        image: postgres:15         # a registry's image, or one built here (opsproof.containers.images)
        env: {POSTGRES_PASSWORD: ci-only}
        ports: [5432]              # published on 127.0.0.1, at a port Docker picks
        wait: {log: "database system is ready to accept connections"}   # or {http: /health, port: 8080}
      cache:                                                           # or {port: 6379}: it accepts TCP
        image: redis:7
        ports: [6379]
        wait: {port: 6379}
    inventory:                     # the targets, as in any inventory; {db.host} and {db.port.5432} are filled in
      postgres:
        main: {dsn: "postgresql://postgres:ci-only@{db.host}:{db.port.5432}/postgres"}
      redis:
        cache: {url: "redis://{cache.host}:{cache.port.6379}/0"}

:func:`start` starts it and yields a :class:`Started` (the inventory document, the file it was written to and each
service's host ports); on leaving — or on any failure while starting — every container and the network are
removed by their label (no reaper is needed: Ryuk cannot be pulled everywhere). :mod:`opsproof.environment` adds
the validated ``Inventory`` and the pytest fixture (this package knows only the neutral helpers).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opsproof.containers.labels import extra_labels, remove_labelled

LABEL = "org.opsproof.environment"
WAIT_TIMEOUT_S = 60
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\.(host|port\.(\d+))\}")


class SpecError(ValueError):
    """The spec is wrong, or a container did not start; the message names the service and what to fix."""


@dataclass
class Started:
    """What :func:`start` started: the inventory document of it, where it was written, each service's host ports."""

    path: Path
    document: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, dict[int, int]] = field(default_factory=dict)  # service → container port → host port
    containers: dict[str, Any] = field(default_factory=dict)  # service → testcontainers DockerContainer


def read_spec(spec: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(spec).read_text(encoding="utf-8")) if isinstance(spec, (str, Path)) else dict(spec)
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict) or not data["services"]:
        raise SpecError(f"{spec if isinstance(spec, (str, Path)) else 'the spec'}: expected a mapping "
                                "with 'services:' (name → image, ports, env, wait) and 'inventory:'")
    for name, service in data["services"].items():
        if not isinstance(service, dict) or not service.get("image"):
            raise SpecError(f"services.{name}: needs 'image:' (e.g. postgres:15)")
    return data


def _wait_strategy(name: str, wait: Mapping[str, Any] | None) -> Any:
    from testcontainers.core.wait_strategies import (
        ContainerStatusWaitStrategy,
        HttpWaitStrategy,
        LogMessageWaitStrategy,
        PortWaitStrategy,
    )

    strategy: Any
    if not wait:
        strategy = ContainerStatusWaitStrategy()
    elif "log" in wait:
        strategy = LogMessageWaitStrategy(str(wait["log"]))
    elif "http" in wait:
        strategy = HttpWaitStrategy(int(wait["port"]), str(wait["http"]))
    elif "port" in wait:
        strategy = PortWaitStrategy(int(wait["port"]))
    else:
        raise SpecError(f"services.{name}.wait: one of log: TEXT, http: PATH (with port:), port: N")
    return strategy.with_startup_timeout(int((wait or {}).get("timeout_s", WAIT_TIMEOUT_S)))


def _fill(node: Any, hosts: Mapping[str, dict[int, int]]) -> Any:
    """The inventory with ``{svc.host}`` and ``{svc.port.N}`` replaced by where the host reaches them."""
    if isinstance(node, dict):
        return {k: _fill(v, hosts) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, hosts) for v in node]
    if not isinstance(node, str):
        return node

    def one(match: re.Match[str]) -> str:
        service, what, port = match.group(1), match.group(2), match.group(3)
        if service not in hosts:
            raise SpecError(f"inventory: {match.group(0)} names no service (known: {', '.join(hosts)})")
        if what == "host":
            return "127.0.0.1"
        if int(port) not in hosts[service]:
            raise SpecError(f"inventory: {match.group(0)}: services.{service}.ports does not list {port}")
        return str(hosts[service][int(port)])

    return PLACEHOLDER.sub(one, node)


@contextlib.contextmanager
def start(spec: Mapping[str, Any] | str | Path, workdir: Path | None = None,
          labels: Mapping[str, str] | None = None) -> Iterator[Started]:
    """Start the spec's containers, yield what was started, remove everything on leaving."""
    from testcontainers.core.config import ConnectionMode
    from testcontainers.core.config import testcontainers_config as tc
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    from opsproof.containers.images import docker_client

    tc.ryuk_disabled = True  # labels do the reaper's work (its image cannot be pulled everywhere)
    if tc.connection_mode_override is None:  # the ports are on this host's loopback, even inside a container
        tc.connection_mode_override = ConnectionMode.docker_host

    data = read_spec(spec)
    client = docker_client()
    run_id = uuid.uuid4().hex[:12]
    all_labels = {**extra_labels(), **(labels or {}), LABEL: run_id}
    folder = Path(workdir or tempfile.mkdtemp(prefix="opsproof-environment-"))
    env = Started(path=folder / "inventory.yaml")
    try:
        network = Network(docker_network_kw={"labels": all_labels}).create()
        for name, service in data["services"].items():
            variables = {k: str(v) for k, v in (service.get("env") or {}).items()}
            box = (DockerContainer(str(service["image"]), env=variables, network=network, network_aliases=[name])
                   .with_kwargs(labels=all_labels, **({"user": service["user"]} if service.get("user") else {})))
            if service.get("command"):
                box.with_command(service["command"])
            for port in service.get("ports") or []:
                box.ports[f"{int(port)}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
            box.waiting_for(_wait_strategy(name, service.get("wait")))
            env.containers[name] = box
            try:
                box.start()
            except Exception as exc:
                logs = box._container.logs(tail=10).decode(errors="replace") if box._container else ""
                raise SpecError(f"services.{name} ({service['image']}) did not start: "
                                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                        f"\n{logs}".rstrip()) from None
            env.ports[name] = {int(p): int(box.get_exposed_port(int(p))) for p in service.get("ports") or []}
        env.document = {"environment": data.get("environment", "containers"), "production": False,
                    **_fill(data.get("inventory") or {}, env.ports)}
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(env.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold the spec's passwords
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(env.document, f, sort_keys=False)
        yield env
    finally:
        remove_labelled(client, f"{LABEL}={run_id}")
