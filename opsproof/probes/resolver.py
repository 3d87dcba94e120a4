"""Name resolution within the check's deadline: ``getaddrinfo`` has no timeout of its own.

A resolver that does not answer (a dead nameserver in resolv.conf, a firewall dropping port 53) holds
``socket.getaddrinfo`` for resolv.conf's ``timeout × attempts × nameservers`` — or for ever behind a stuck NSS
module — and every client (httpcore, redis-py, urllib3, the TLS probe) looks names up that way before it connects.
:func:`resolve` runs the lookup in a daemon thread and waits at most what is left of the current check's deadline;
a lookup still running then is left to end on its own (it holds no connection) and the check fails
``no address for HOST within N s (DNS lookup)``. An IP address, or a call outside a check, is looked up directly.

:data:`lookup` is the seam: tests put a lookup that never answers there (no resolver here can be made to hang).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from opsproof.probes.deadline import Expired, bound, current

Lookup = Callable[..., list[tuple[Any, ...]]]
lookup: Lookup = socket.getaddrinfo


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost"
    return True


def resolve(host: str, port: int | str | None, family: int = 0, kind: int = socket.SOCK_STREAM) -> list[Any]:
    """``socket.getaddrinfo(host, port, family, kind)``, within the current check's deadline."""
    deadline = current()
    if deadline is None or deadline.left() is None or _literal(host):
        return lookup(host, port, family, kind)
    wait = bound(None, "resolve")
    deadline.host = host  # a client that wraps the Expired below (redis-py, urllib3) is reported as this
    future: Future[list[Any]] = Future()

    def attempt() -> None:
        try:
            future.set_result(lookup(host, port, family, kind))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=attempt, name="opsproof-resolve", daemon=True).start()
    try:
        return future.result(timeout=wait)
    except TimeoutError:
        if future.done():
            raise
        deadline.bounded = True
        raise Expired(deadline.describe(), {**deadline.evidence(), "host": host}) from None
