"""The docker backend: faults on the containers of the inventory's ``chaos.containers`` (by container name or by
Compose service label), through the Docker SDK — the runbook's ``docker stop``, ``docker kill``, ``docker pause``,
``docker restart``, ``docker network disconnect``.

A Compose service may have several containers (``--scale``): a fault acts on every one the label finds. Rollbacks
look before they act (a container a restart policy brought back is left alone); the audit finds a container of
the run's still paused, stopped, or off a network the run disconnected it from.
"""

from __future__ import annotations

import os
from typing import Any

from opsproof.chaos.context import ChaosError, Context, fail
from opsproof.util.poll import Expired, wait_until

FAULTS = frozenset({"stop", "kill", "pause", "restart", "disconnect"})
SERVICE_LABEL = "com.docker.compose.service"
PROJECT_LABEL = "com.docker.compose.project"


class DockerBackend:
    name = "docker"
    faults = FAULTS

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.inventory = ctx.inventory
        self._clients: dict[str | None, Any] = {}

    # --- reaching the daemon ------------------------------------------------------------------------------------
    def _client(self, host: str | None) -> Any:
        if host not in self._clients:
            import docker

            self._clients[host] = docker.DockerClient(base_url=host, timeout=30) if host else docker.from_env(
                timeout=30)
        return self._clients[host]

    def available(self) -> str | None:
        try:
            import docker  # noqa: F401
        except ImportError:
            return "the Docker SDK is not installed (pip install docker)"
        hosts = {c.docker_host for c in self.inventory.chaos.containers.values()} or {None}
        for host in hosts:
            socket = (host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://")
            if "://" not in socket and not os.path.exists(socket):
                return f"no Docker daemon answers at {host or 'DOCKER_HOST / the local socket'} (no socket {socket})"
            try:
                self._client(host).ping()
            except Exception as e:
                self.close()
                return f"no Docker daemon answers at {host or 'DOCKER_HOST / the local socket'} ({type(e).__name__})"
        return None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _entry(self, target: str) -> Any:
        entry = self.inventory.chaos.containers.get(target)
        if entry is None:
            raise fail(f"container[{target}]", "no such entry in chaos.containers",
                       f"one of {', '.join(self.inventory.chaos.containers) or '(none)'}")
        return entry

    def containers(self, target: str) -> list[Any]:
        """The containers the entry names (all states), sorted by name; a failure when there is none."""
        import docker.errors

        entry = self._entry(target)
        client = self._client(entry.docker_host)
        try:
            if entry.name is not None:
                found = [client.containers.get(entry.name)]
            else:
                labels = [f"{SERVICE_LABEL}={entry.service}"] + (
                    [f"{PROJECT_LABEL}={entry.project}"] if entry.project else [])
                found = sorted(client.containers.list(all=True, filters={"label": labels}), key=lambda c: c.name)
        except docker.errors.NotFound:
            found = []
        except docker.errors.DockerException as e:
            raise fail(f"container[{target}]", f"the Docker API failed ({type(e).__name__}: {e})",
                       f"{entry.describe()} found") from None
        if not found:
            raise fail(f"container[{target}]", f"no container is {entry.describe()}", "at least one container")
        return found

    # --- the interface ------------------------------------------------------------------------------------------
    def option_problems(self, target: str, fault: str, options: dict[str, Any]) -> list[str]:
        if fault == "kill" and options.get("signal") is not None and not str(options["signal"]).isupper():
            return [f"signal {options['signal']!r} is not a signal name such as SIGKILL"]
        if fault != "disconnect" and options.get("network") is not None:
            return [f"network: is only for the disconnect fault, not {fault}"]
        return []

    def prepare(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        if fault != "disconnect":
            return options
        plan = {}
        for c in self.containers(target):
            nets = c.attrs["NetworkSettings"]["Networks"] or {}
            wanted = options.get("network")
            if wanted is None and len(nets) != 1:
                raise fail(f"container[{target}]", f"{c.name} is on {len(nets)} networks ({', '.join(nets)})",
                           "network: naming the one to disconnect")
            net = wanted or next(iter(nets))
            if net not in nets:
                raise fail(f"container[{target}]", f"{c.name} is not on network {net} (on: {', '.join(nets)})",
                           f"a container on {net}")
            aliases = [a for a in (nets[net].get("Aliases") or []) if a != c.id[:12]]
            plan[c.name] = {"network": net, "aliases": aliases}
        return {**options, "networks": plan}

    def inject(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        done = []
        for c in self.containers(target):
            if fault == "stop":
                c.stop(timeout=int(options.get("timeout", 10)))
            elif fault == "kill":
                c.kill(signal=options.get("signal") or "SIGKILL")
            elif fault == "pause":
                c.pause()
            elif fault == "restart":
                c.restart(timeout=int(options.get("timeout", 10)))
            elif fault == "disconnect":
                net = options["networks"][c.name]["network"]
                self._client(self._entry(target).docker_host).networks.get(net).disconnect(c)
            else:
                raise fail(f"container[{target}]", f"no fault {fault!r}", f"one of {', '.join(sorted(FAULTS))}")
            done.append(c.name)
        if fault in ("stop", "kill"):
            self._wait(target, lambda c: c.status != "running", "stopped")
        return {"containers": done}

    def rollback(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        """Stopped or killed: started; paused: unpaused; disconnected: connected again (with its aliases) —
        each only when it is still so. A restart is rolled back as a stop is (running, not paused)."""
        actions = []
        for c in self.containers(target):
            c.reload()
            if fault == "disconnect":
                plan = options.get("networks", {}).get(c.name)
                if plan and plan["network"] not in (c.attrs["NetworkSettings"]["Networks"] or {}):
                    net = self._client(self._entry(target).docker_host).networks.get(plan["network"])
                    net.connect(c, aliases=plan["aliases"] or None)
                    actions.append(f"{c.name} connected to {plan['network']}")
                continue
            if c.status == "paused":
                c.unpause()
                actions.append(f"{c.name} unpaused")
            elif c.status != "running" and fault != "pause":
                c.start()
                actions.append(f"{c.name} started")
        if fault != "disconnect":
            self._wait(target, lambda c: c.status == "running", "running", self._entry(target).start_timeout_s)
        return {"actions": actions}

    def leftovers(self, target: str, fault: str, options: dict[str, Any]) -> str:
        found = []
        for c in self.containers(target):
            if c.status == "paused":
                found.append(f"{c.name} paused")
            elif fault != "disconnect" and c.status != "running":
                found.append(f"{c.name} {c.status}")
            if fault == "disconnect":
                plan = options.get("networks", {}).get(c.name)
                if plan and plan["network"] not in (c.attrs["NetworkSettings"]["Networks"] or {}):
                    found.append(f"{c.name} disconnected from network {plan['network']}")
        return "; ".join(found)

    def _wait(self, target: str, state: Any, what: str, timeout: float = 15) -> None:
        def all_so() -> bool:
            return all(state(c) for c in self.containers(target))

        try:
            wait_until(all_so, timeout, f"{target} {what}", interval=0.1, fail_fast=ChaosError)
        except Expired:
            states = ", ".join(f"{c.name} {c.status}" for c in self.containers(target))
            raise fail(f"container[{target}]", f"{states} after {timeout:g} s", f"every container {what}") from None
