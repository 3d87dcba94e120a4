"""The sandbox as containers (``opsproof sandbox up --provider docker``), through testcontainers.

The same services as the process provider (:mod:`opsproof.sandbox.control`), one container each from the sandbox
image (:data:`opsproof.containers.images.SANDBOX`, built here), on a network of their own, each published on
127.0.0.1 only. ``up`` writes the same ``inventory.yaml``, so the suites run unchanged.

Teardown never depends on this process: testcontainers' reaper (Ryuk) cannot be pulled here, so every container
and network carries the label ``org.opsproof.sandbox=<id>`` (the id derives from the state folder) and ``down`` —
from any process, after a crash too — removes whatever carries it. ``up`` removes it all on any failure, and on
SIGINT/SIGTERM while it runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

# before testcontainers reads its configuration: no reaper (its image cannot be pulled; labels do its work), and
# ports are reached where they are published, on this host's loopback (not a gateway, as in a container it guesses)
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")

from opsproof.containers.labels import EXTRA_LABELS_ENV as EXTRA_LABELS_ENV  # re-exported
from opsproof.containers.labels import cleanup_on_signals, extra_labels, remove_labelled
from opsproof.sandbox import configs
from opsproof.sandbox.control import SERVICES, START_TIMEOUT, Sandbox
from opsproof.sandbox.docker_services import PORTS, STATE, WAVES, Service, alias, services
from opsproof.sandbox.process import SandboxError, free_port, wait_for
from opsproof.util.process import private_dir

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

LABEL = "org.opsproof.sandbox"


def sandbox_id(state_dir: Path) -> str:
    """The label value of a state folder's containers: any process finds them from the folder alone."""
    return hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:12]


class DockerSandbox(Sandbox):
    """The sandbox's services as containers; the addresses, the inventory and the warm-up are the process one's."""

    provider = "docker"

    def __init__(self, state_dir: Path | str | None = None, ephemeral: bool = False,
                 image: str | None = None) -> None:
        super().__init__(state_dir, ephemeral)
        self.id = sandbox_id(self.dir)
        self.image = image or self.meta.get("image")
        self._client: docker.DockerClient | None = None
        self._cancelled = False
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # the meta, written by the threads of an up

    # --- Docker ---------------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            from opsproof.containers.images import ImageError, docker_client

            try:
                self._client = docker_client(timeout_s=30)
            except ImageError as exc:
                raise SandboxError(f"--provider docker: {exc}. Without Docker, use the process provider "
                                   "(`opsproof sandbox up`).") from None
        return self._client

    def labels(self) -> dict[str, str]:
        return {**extra_labels(), LABEL: self.id, "org.opsproof.sandbox.dir": str(self.dir)}

    def container(self, name: str) -> Container:
        """The container of service ``name`` (what a test or a chaos fault stops, pauses or disconnects)."""
        import docker as docker_sdk

        try:
            return self.client.containers.get(self.meta["containers"][name])
        except (KeyError, docker_sdk.errors.NotFound):
            raise SandboxError(f"{name}: no container of sandbox {self.id} ({self.dir})") from None

    def network(self) -> Any:
        return self.client.networks.get(self.meta["network"])

    # --- public ---------------------------------------------------------------------------------------
    def up(self) -> Path:
        """Start every container; on any failure, Ctrl-C or SIGTERM remove all of them (by label) and the state."""
        if self.running():
            return self.inventory_path
        with cleanup_on_signals():
            try:
                self._prepare()
                for wave in WAVES:
                    self._start_wave(wave)
                self._warm_up()
                self._nightly_backup()
                self._write_inventory()
            except BaseException:
                self._cancelled = True  # no thread creates a container after this
                self.down()
                for thread in self._threads:  # one may be creating a container just now: let it finish
                    thread.join(timeout=3)
                self.down()  # and remove that one too
                raise
        return self.inventory_path

    def _start_wave(self, wave: tuple[str, ...]) -> None:
        """Start the services of a wave together; the first failure (in wave order) is raised. The threads are
        daemons: one still waiting for a container that a cancelled up removed must not hold the process."""
        errors: dict[str, BaseException] = {}

        def start(name: str) -> None:
            try:
                self.start_service(name)
            except BaseException as exc:
                errors[name] = exc

        threads = [threading.Thread(target=start, args=(n,), name=f"sandbox-up-{n}", daemon=True) for n in wave]
        self._threads += threads
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # short joins: SIGINT and SIGTERM are handled in this thread meanwhile
                thread.join(0.2)
        for name in wave:
            if name in errors:
                raise errors[name]

    def down(self) -> None:
        """Remove every container, network and volume labelled with this state folder's id, and the folder."""
        remove_labelled(self.client, f"{LABEL}={self.id}")
        if self.dir.exists() and self.meta_file.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def running(self) -> bool:
        if not self.inventory_path.exists() or "containers" not in self.meta:
            return False
        return all(self._state(n) != "down" for n in SERVICES)

    def status(self) -> dict[str, str]:
        ports = self.meta.get("ports", {})
        return {n: self._state(n) + (f" 127.0.0.1:{ports[n]}" if n in ports else "") for n in SERVICES}

    def healthy(self) -> bool:
        return self.inventory_path.exists() and all(self._state(n) == "up" for n in SERVICES)

    def stop_service(self, name: str) -> None:
        self.container(name).stop(timeout=10)

    def start_service(self, name: str) -> None:
        """Start (or restart, after a stop) the container of ``name``, and wait until it serves."""
        import docker as docker_sdk

        existing = self.meta.get("containers", {}).get(name)
        if existing:
            try:
                self.client.containers.get(existing).start()
            except docker_sdk.errors.NotFound:
                existing = None
        if not existing:
            self._create(services(self.dir, self.meta["passwords"])[name])
        try:
            wait_for(self._ready_check(name), START_TIMEOUT, f"{name} did not become ready", fail_fast=SandboxError)
        except SandboxError as exc:
            raise SandboxError(f"{exc}; last lines of its log:\n{self._log_tail(name)}") from None

    def restore(self, name: str) -> None:
        """Undo what was done to the container of ``name`` — paused, off its network, stopped — idempotently."""
        state = self._state(name)
        if state == "paused":
            self.container(name).unpause()
        elif state == "disconnected":
            self.network().connect(self.container(name), aliases=[alias(name)])
        elif state == "down":
            self.start_service(name)

    def signal(self, name: str, sig: int) -> None:
        self.container(name).kill(signal=int(sig))

    def service_pid(self, name: str) -> int | None:
        """The host pid of the service's process: the child of the container's init (docker-init), for the app
        the child of its keeper. Chaos signals it as it signals the process provider's (we are on the same host)."""
        container_id = self.meta.get("containers", {}).get(name)
        if not container_id or self._state(name) in ("down", "paused"):
            return None
        import docker as docker_sdk

        try:
            pid = _first_child(int(self.client.api.inspect_container(container_id)["State"]["Pid"]))
        except (docker_sdk.errors.NotFound, KeyError, ValueError):
            return None
        return _first_child(pid) if name == "app" and pid is not None else pid

    def service_alive(self, name: str) -> bool:
        return self._state(name) != "down"

    # --- setup ----------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        if not self.image:
            from opsproof.containers.images import SANDBOX, ensure_image

            self.image = ensure_image(SANDBOX, self.client)
        self.dir.mkdir(parents=True, exist_ok=True)
        private_dir(self.dir)  # it holds the sandbox's passwords
        remove_labelled(self.client, f"{LABEL}={self.id}")  # left over from a crashed run
        for sub in ("prometheus", "alertmanager", "tls", "webhook", "backups", "app"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
            (self.dir / sub).mkdir()
        (self.dir / "webhook" / "deliveries.jsonl").touch()
        passwords = {r: secrets.token_urlsafe(18) for r in ("postgres", "app", "opsproof_monitor", "opsproof_backup",
                                                              "redis")}
        # host ports chosen here, not by Docker: a container started again after a stop keeps them (Docker would
        # pick new ones, and the inventory would point at nothing)
        ports = {name: free_port() for name in PORTS}
        self.meta = {"provider": self.provider, "id": self.id, "image": self.image, "ports": ports, "containers": {},
                     "passwords": passwords, "created": dt.datetime.now(dt.UTC).isoformat()}
        self._save_meta()  # before anything is created: `down` from another process finds the id
        network = self.client.networks.create(f"opsproof-{self.id}", labels=self.labels())
        self.meta["network"] = network.name
        configs.write_tls(self.dir / "tls")
        (self.dir / "prometheus" / "rules.yml").write_text(configs.rules_yaml())
        (self.dir / "prometheus" / "prometheus.yml").write_text(configs.prometheus_yaml(
            PORTS, f"{STATE}/prometheus/rules.yml", {n: alias(n) for n in SERVICES}))
        (self.dir / "alertmanager" / "alertmanager.yml").write_text(
            configs.alertmanager_yaml(PORTS["webhook"], alias("webhook")))
        self._save_meta()

    def _save_meta(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                self.meta[key] = value
            fd = os.open(self.meta_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self.meta, f)

    def _create(self, service: Service) -> None:
        import docker as docker_sdk
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.network import Network

        if self._cancelled:
            raise SandboxError("the up was cancelled")
        network = Network()
        network.name = self.meta["network"]  # ours, created labelled: testcontainers only names it to the container
        box = (DockerContainer(self.image or "", name=f"opsproof-{self.id}-{alias(service.name)}",
                               env=dict(service.env), network=network, network_aliases=[alias(service.name)])
               .with_command(service.command)
               .with_kwargs(labels=self.labels(), user=service.user or "root", init=True))
        for host, inside, mode in service.mounts:
            box.with_volume_mapping(host, inside, mode)
        for port_name in service.published:
            box.ports[f"{PORTS[port_name]}/tcp"] = ("127.0.0.1", self.port(port_name))  # type: ignore[assignment]
        box.waiting_for(self._wait_strategy(service))
        try:
            box.start()
        except (TimeoutError, RuntimeError, docker_sdk.errors.DockerException) as exc:
            tail = "(no container)"
            with contextlib.suppress(docker_sdk.errors.DockerException):
                tail = box._container.logs(tail=15).decode(errors="replace").strip() if box._container else tail
            raise SandboxError(f"{service.name} did not start ({str(exc).splitlines()[0]}); last lines of its "
                               f"log:\n{tail}") from None
        finally:
            if box._container is not None:  # recorded even if it never became ready: `down` removes it by label
                self._save_meta(containers={**self.meta["containers"], service.name: box._container.id})

    def _wait_strategy(self, service: Service) -> Any:
        from testcontainers.core.wait_strategies import (
            ContainerStatusWaitStrategy,
            HttpWaitStrategy,
            LogMessageWaitStrategy,
        )

        strategy: Any
        if service.ready_log:
            strategy = LogMessageWaitStrategy(service.ready_log)
        elif service.ready_http:
            strategy = HttpWaitStrategy(PORTS[service.ready_port or service.name], service.ready_http)
        else:
            strategy = ContainerStatusWaitStrategy()
        return strategy.with_startup_timeout(int(START_TIMEOUT)).with_poll_interval(0.1)

    def _ready_check(self, name: str) -> Any:
        """What the process provider checks, from the host through the published port."""
        def check() -> bool:
            if self._state(name) == "down":
                raise SandboxError(f"{name} exited during start")
            port = self.port(name)
            if name in ("postgres", "replica"):
                import psycopg

                with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                     password=self.meta["passwords"]["postgres"], connect_timeout=1):
                    pass
                return name != "postgres" or self._seed_once()
            if name == "redis":
                return bool(self._redis().ping())
            if name == "prometheus":
                return self._prometheus_ready(port)
            service = services(self.dir, self.meta["passwords"])[name]
            return self._http_ok(f"{self.url(service.ready_port or name)}{service.ready_http or '/'}")

        return check

    def _seed_once(self) -> bool:
        if self.meta.get("seeded"):
            return True
        import psycopg

        configs.seed(lambda db: psycopg.connect(host="127.0.0.1", port=self.port("postgres"), user="postgres",
                                                password=self.meta["passwords"]["postgres"], dbname=db,
                                                autocommit=True, connect_timeout=3), self.meta["passwords"])
        self._save_meta(seeded=True)
        return True

    def _state(self, name: str) -> str:
        """up, paused, disconnected (off the sandbox's network) or down."""
        import docker as docker_sdk

        container_id = self.meta.get("containers", {}).get(name)
        if not container_id:
            return "down"
        try:
            attrs = self.client.api.inspect_container(container_id)
        except docker_sdk.errors.NotFound:
            return "down"
        if attrs["State"].get("Paused"):
            return "paused"
        if not attrs["State"].get("Running"):
            return "down"
        if self.meta.get("network") not in (attrs["NetworkSettings"].get("Networks") or {}):
            return "disconnected"
        return "up"

    def _log_tail(self, name: str, lines: int = 15) -> str:
        with contextlib.suppress(SandboxError, Exception):
            return str(self.container(name).logs(tail=lines).decode(errors="replace"))
        return "(no log)"


def _first_child(pid: int) -> int | None:
    """The oldest child of ``pid`` (a container's init has one: the service; the app's keeper has the app)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None
