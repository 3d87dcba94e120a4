"""What chaos faults may act on beyond the probed entries (``chaos:``): containers and local processes.

::

    chaos:
      containers:
        db: {service: postgres, project: shop}   # by compose service label (com.docker.compose.service)
        cache: {name: shop-redis-1}              # or by container name
      processes:
        worker: {pidfile: /run/worker.pid, start: [worker, --daemon]}  # a pid file (start: to bring it back)
        api: {unit: api.service}                 # a systemd unit: systemctl stop/start/kill
        queue: {stop: [rabbitmqctl, stop_app], start: [rabbitmqctl, start_app]}  # a pair of commands

A fault names its target by the entry's name (``target: db``), unique across both sections; the backend follows
from the section (``docker`` for containers, ``process`` for processes) and ``kubernetes`` entries are the
Kubernetes backend's targets.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from opsproof.inventory.base import NAME, _Model


class Container(_Model):
    """A Docker container, found by ``name`` or by its Compose ``service`` (and, optionally, ``project``) label."""

    name: str | None = Field(None, min_length=1, description="shop-redis-1")
    service: str | None = Field(None, min_length=1, description="redis (label com.docker.compose.service)")
    project: str | None = Field(None, min_length=1, description="shop (label com.docker.compose.project)")
    docker_host: str | None = Field(None, min_length=1, description="unix:///var/run/docker.sock (default: "
                                    "DOCKER_HOST or the local daemon)")
    start_timeout_s: float = Field(30, gt=0, le=600)

    @model_validator(mode="after")
    def _one_way(self) -> Container:
        if (self.name is None) == (self.service is None):
            raise ValueError("name the container by exactly one of name: (its container name) or service: (its "
                             "com.docker.compose.service label). Fix: keep one of them")
        if self.project is not None and self.service is None:
            raise ValueError("project: only narrows service: (the compose labels). Fix: add service: or remove "
                             "project:")
        return self

    def describe(self) -> str:
        if self.name is not None:
            return f"container {self.name}"
        return f"compose service {self.service}" + (f" of project {self.project}" if self.project else "")


class Process(_Model):
    """A local process by ``pidfile``, a systemd ``unit``, or a ``stop``/``start`` pair of commands (argv lists)."""

    pidfile: str | None = Field(None, min_length=1, description="/run/worker.pid")
    unit: str | None = Field(None, min_length=1, description="worker.service")
    stop: list[str] | None = Field(None, min_length=1, description="[systemctl, stop, worker]")
    start: list[str] | None = Field(None, min_length=1, description="[systemctl, start, worker]")
    check: list[str] | None = Field(None, min_length=1, description="[pgrep, -f, worker] (exit 0: running)")
    command_timeout_s: float = Field(30, gt=0, le=600)

    @field_validator("stop", "start", "check")
    @classmethod
    def _argv(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not all(isinstance(a, str) and a for a in v):
            raise ValueError("a command is a list of non-empty words, e.g. [systemctl, stop, worker]")
        return v

    @model_validator(mode="after")
    def _one_way(self) -> Process:
        ways = [w for w in ("pidfile", "unit", "stop") if getattr(self, w) is not None]
        if len(ways) != 1:
            raise ValueError("name the process by exactly one of pidfile:, unit: or a stop:/start: pair of "
                             "commands. Fix: keep one of them")
        if self.unit is not None and self.start is not None:
            raise ValueError("a unit is started with systemctl start. Fix: remove start:")
        if self.stop is not None and self.start is None:
            raise ValueError("stop: and start: go together (the rollback runs start:). Fix: give both")
        if self.check is not None and self.stop is None:
            raise ValueError("check: is for a stop:/start: pair (a pid file or a unit is checked directly). Fix: "
                             "remove it")
        return self

    @property
    def way(self) -> str:
        return "pidfile" if self.pidfile else "unit" if self.unit else "commands"

    @property
    def startable(self) -> bool:
        """Whether the rollback can start it again (a pid file without start: cannot: only SIGSTOP/SIGCONT)."""
        return self.pidfile is None or self.start is not None

    def describe(self) -> str:
        if self.pidfile:
            return f"the process in {self.pidfile}"
        if self.unit:
            return f"unit {self.unit}"
        return f"the process stopped by {' '.join(self.stop or [])}"


class ChaosTargets(_Model):
    """The ``chaos:`` section: targets of the docker and process backends."""

    containers: dict[str, Container] = Field(default_factory=dict)
    processes: dict[str, Process] = Field(default_factory=dict)

    @field_validator("containers", "processes")
    @classmethod
    def _names(cls, v: dict[str, object]) -> dict[str, object]:
        import re

        for name in v:
            if not re.match(NAME, name):
                raise ValueError(f"entry name {name!r} must be letters, digits, '_', '.', '-' (≤ 63)")
        return v

    @model_validator(mode="after")
    def _unique(self) -> ChaosTargets:
        both = sorted(set(self.containers) & set(self.processes))
        if both:
            raise ValueError(f"{', '.join(both)} named both under containers: and processes: — a fault names its "
                             "target by name alone. Fix: rename one")
        return self

    def backend_of(self, name: str) -> str | None:
        return "docker" if name in self.containers else "process" if name in self.processes else None
