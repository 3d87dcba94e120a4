"""Bare TCP ports: `nc -z HOST PORT` — a service the runbook gives only a port for (a tracing collector, a
workflow engine), with no health path to ask. The verdict is the TCP handshake and nothing more: a server that
accepts and then says nothing passes, as it does for `nc -z`; a port nobody listens on, or a host that drops the
handshake, fails with the reason."""

from __future__ import annotations

import socket

from opsproof.inventory import TcpPort
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import bound
from opsproof.probes.resolver import resolve
from opsproof.result import Severity
from opsproof.util.errors import typed_reason


def _connect(host: str, port: int, timeout_s: float) -> tuple[str, int]:
    """Open and close one TCP connection (the lookup and the handshake within the deadline); the peer's address."""
    [(*_, address), *_] = resolve(host, port)
    with socket.create_connection(address[:2], timeout=bound(timeout_s, "connect")) as sock:
        peer = sock.getpeername()
    return str(peer[0]), int(peer[1])


@probe("tcp.connect", "tcp", Severity.HIGH, "nc -z $HOST $PORT",
       expected=lambda cfg: f"{cfg.host}:{cfg.port} accepts a TCP connection within {cfg.timeout_s:g} s")
def connect(target: Target[TcpPort], conns: Connections) -> Outcome:
    """The port accepts a TCP connection within ``timeout_s`` (the connection is closed at once; nothing is sent)."""
    cfg = target.config
    try:
        ip, port = _connect(cfg.host, cfg.port, cfg.timeout_s)
    except TimeoutError:  # before OSError: a subclass
        return Outcome(False, f"{cfg.host}:{cfg.port}: no TCP handshake within {cfg.timeout_s:g} s",
                       {"host": cfg.host, "port": cfg.port})
    except OSError as e:  # refused, unreachable network, unknown host
        return Outcome(False, f"{cfg.host}:{cfg.port} unreachable ({typed_reason(e)})",
                       {"host": cfg.host, "port": cfg.port, "error": typed_reason(e)})
    return Outcome(True, f"{cfg.host}:{cfg.port} accepted a connection ({ip}:{port})",
                   {"host": cfg.host, "port": cfg.port, "address": f"{ip}:{port}"})
