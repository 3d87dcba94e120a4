"""Real redis-server processes a test owns (Debian's binary), on loopback ports: started together, polled ready
with a deadline, stopped whatever happens. Sentinels are the same binary with ``--sentinel``."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from opsproof.inventory import loads
from opsproof.probes import ALL, Connections, Target
from opsproof.result import Result
from opsproof.util.poll import wait_until
from opsproof.util.process import die_with_parent, find_binary, free_port


class Exited(RuntimeError):
    """A server ended while it was awaited: its configuration was refused."""


@dataclass
class Server:
    name: str
    port: int
    conf: Path
    args: list[str]
    password: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=3,
                           socket_connect_timeout=3, decode_responses=True)

    def start(self) -> None:
        self.proc = subprocess.Popen([find_binary("redis-server", "redis-server"), str(self.conf), *self.args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=lambda: die_with_parent(signal.SIGKILL))

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise Exited(f"redis-server {self.name} exited with status {self.proc.returncode} ({self.conf})")
        with self.client() as c:
            return bool(c.ping())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def servers(folder: Path, configs: dict[str, str], passwords: dict[str, str] | None = None,
            args: dict[str, list[str]] | None = None, timeout: float = 10) -> Iterator[dict[str, Server]]:
    """``configs``: name → redis.conf text (``{port_NAME}``, any server's port, filled in); all started at once,
    ready within ``timeout``, killed on exit."""
    made: dict[str, Server] = {}
    ports = {f"port_{name}": free_port() for name in configs}
    try:
        for name, text in configs.items():
            work = folder / name
            work.mkdir(parents=True, exist_ok=True)
            port = ports[f"port_{name}"]
            conf = work / "redis.conf"
            conf.write_text(text.format(**ports) + f"\nport {port}\nbind 127.0.0.1\ndir {work}\n")
            made[name] = Server(name, port, conf, (args or {}).get(name, []), (passwords or {}).get(name))
            made[name].start()
        for server in made.values():
            wait_until(server.ready, timeout, f"redis-server {server.name} answering PING on {server.address}",
                       fail_fast=Exited)
        yield made
    finally:
        for server in made.values():
            server.kill()


def results(inventory_text: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Result]]:
    """Every Redis check that applies to each entry, run once: target name → check → result (``${VARS}`` from
    ``env``, else the environment)."""
    inv = loads(inventory_text, env=env)
    out: dict[str, dict[str, Result]] = {}
    with Connections() as conns:
        for name, cfg in inv.redis.items():
            target: Target[Any] = Target("redis", name, cfg)
            out[name] = {s.check: s(target, conns) for s in ALL if s.kind == "redis" and s.applies(cfg)}
    return out


def failing(found: dict[str, Result]) -> dict[str, str]:
    return {check: f"{r.target}: {r.observed}, expected {r.expected}" for check, r in found.items() if r.ok is False}
