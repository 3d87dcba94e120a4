"""The clients' sockets, bound to the current check's deadline (:mod:`opsproof.probes.deadline`).

- httpx: a network backend for httpcore whose streams cut each connect, TLS handshake, write and read to what is
  left of the deadline and count the answer's bytes (httpcore closes a connection whose read failed);
- redis-py: a connection class whose socket does the same (redis-py disconnects a connection whose read failed),
  in a pool whose wait for the entry's one connection is cut too.

Outside a check (no current deadline) both are the plain clients, with the clients' own timeouts.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from opsproof.probes.deadline import bound, got
from opsproof.probes.resolver import resolve


class BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, bound(timeout, "answer"))
        got(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, bound(timeout, "send"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return BoundedStream(self._inner.start_tls(ssl_context, server_hostname, bound(timeout, "tls")))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class BoundedBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        error: OSError | None = None
        for *_, address in resolve(host, port):  # the name within the deadline; then each address in turn
            try:
                return BoundedStream(self._inner.connect_tcp(str(address[0]), port, bound(timeout, "connect"),
                                                             local_address, socket_options))
            except httpcore.ConnectError as e:
                error = OSError(str(e))
        raise httpcore.ConnectError(str(error or f"no address for {host}"))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        return BoundedStream(self._inner.connect_unix_socket(path, bound(timeout, "connect"), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bind_client(client: httpx.Client) -> httpx.Client:
    """Give each of the client's httpcore pools (its own transport and any proxy's) a :class:`BoundedBackend`.
    httpx has no parameter for httpcore's ``network_backend``; the pools take it from this attribute when they
    open a connection. An injected transport (httpx's MockTransport in tests) has no pool and is left as it is."""
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None:
            if not hasattr(pool, "_network_backend"):
                raise RuntimeError("httpcore's pool has no _network_backend: this httpcore version is not supported")
            pool._network_backend = BoundedBackend()
    return client


class BoundedSocket:
    """A socket whose receives and sends wait at most what is left of the current check's deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timeout = sock.gettimeout()

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._timeout

    def recv(self, size: int, *flags: int) -> bytes:
        self._sock.settimeout(bound(self._timeout, "answer"))
        data = self._sock.recv(size, *flags)
        got(len(data))
        return data

    def recv_into(self, buffer: Any, *args: int) -> int:
        self._sock.settimeout(bound(self._timeout, "answer"))
        n = self._sock.recv_into(buffer, *args)
        got(n)
        return n

    def sendall(self, data: Any, *flags: int) -> None:
        self._sock.settimeout(bound(self._timeout, "send"))
        self._sock.sendall(data, *flags)

    def __getattr__(self, name: str) -> Any:  # shutdown, close, fileno, setsockopt …: the socket's own
        return getattr(self._sock, name)


class BoundedRedisConnection:
    """Mixed in before a redis-py connection class: its connect is cut to the deadline, its socket bounded."""

    socket_connect_timeout: float | None

    def _connect(self) -> Any:
        resolve(getattr(self, "host", "localhost"), getattr(self, "port", None))  # the lookup, within the deadline
        configured = self.socket_connect_timeout
        self.socket_connect_timeout = bound(configured, "connect")
        try:
            sock = super()._connect()  # type: ignore[misc]
        finally:
            self.socket_connect_timeout = configured
        return BoundedSocket(sock)

    def _wrap_socket_with_ssl(self, sock: socket.socket) -> Any:  # rediss://: SSLConnection's, called by _connect
        configured = sock.gettimeout()
        sock.settimeout(bound(configured, "tls"))  # ssl bounds the whole handshake by the socket's timeout
        tls = super()._wrap_socket_with_ssl(sock)  # type: ignore[misc]
        tls.settimeout(configured)
        return tls


def redis_pool(url: str, **kwargs: Any) -> Any:
    """redis-py's BlockingConnectionPool for ``url``, whose wait for its connection (held by another check of the
    entry) and whose connection are bound to the deadline."""
    import redis

    class BoundedBlockingPool(redis.BlockingConnectionPool):
        @property
        def timeout(self) -> float | None:  # read by get_connection for each wait
            return bound(self._configured_timeout, "pool")

        @timeout.setter
        def timeout(self, value: float | None) -> None:
            self._configured_timeout = value

    return BoundedBlockingPool.from_url(url, connection_class=redis_connection_class(url), **kwargs)


def redis_connection_class(url: str) -> type[Any]:
    """The connection class redis-py would use for ``url`` (TCP, TLS or Unix socket), bound to the deadline."""
    from redis.connection import parse_url

    base = parse_url(url).get("connection_class")  # type: ignore[no-untyped-call]
    if base is None:
        from redis import Connection as base
    return type(f"Bounded{base.__name__}", (BoundedRedisConnection, base), {})


def watched_pools(classes: dict[str, type[Any]]) -> dict[str, type[Any]]:
    """urllib3 pool classes (by scheme) whose connections are cut to the current check's deadline: the connect to
    what is left of it, and the socket joins the check's :mod:`~opsproof.probes.watchdog` while an answer is read —
    urllib3's read timeout bounds one read each, so a server that trickles its answer would hold the check for
    ever; the watchdog shuts the socket at the deadline. Subclasses of the pools given (urllib3's own, botocore's)."""
    from opsproof.probes.watchdog import watch

    def watched(base: type[Any]) -> type[Any]:
        class Watched(base):  # type: ignore[misc]
            def connect(self) -> None:
                resolve(self.host, self.port)  # the lookup, within the deadline (urllib3 then looks it up itself)
                configured = getattr(self, "timeout", None)  # urllib3 sets the connect timeout before each connect
                if configured is None or isinstance(configured, int | float):
                    self.timeout = bound(configured, "connect")  # within what is left of the deadline
                super().connect()

            def getresponse(self, *args: Any, **kwargs: Any) -> Any:
                watch(self.sock)
                return super().getresponse(*args, **kwargs)

        Watched.__name__ = f"Watched{base.__name__}"
        return Watched

    return {scheme: type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": watched(pool.ConnectionCls)})
            for scheme, pool in classes.items()}


def bind_pool_manager(manager: Any) -> Any:
    """Give a urllib3 ``PoolManager`` (the Kubernetes client's) :func:`watched_pools`."""
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    manager.pool_classes_by_scheme = watched_pools({"http": HTTPConnectionPool, "https": HTTPSConnectionPool})
    return manager


def bind_botocore(client: Any) -> Any:
    """Give a boto3 client's HTTP session (botocore's URLLib3Session, its pool manager and the proxy managers it
    makes later) :func:`watched_pools`: botocore's connect and read timeouts bound one wait each, not the check."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if not (hasattr(session, "_pool_classes_by_scheme") and hasattr(session, "_manager")):
        raise RuntimeError("botocore's HTTP session has no _pool_classes_by_scheme/_manager: this botocore version "
                           "is not supported")
    classes = watched_pools(session._pool_classes_by_scheme)  # type: ignore[union-attr]
    session._pool_classes_by_scheme = classes  # type: ignore[union-attr]
    session._manager.pool_classes_by_scheme = classes  # type: ignore[union-attr]
    return client
