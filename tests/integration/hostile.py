"""Hostile loopback servers: what a target does in the worst hour of a system's life.

Each server listens on 127.0.0.1 (a free port), serves every connection in its own daemon thread with one
*behaviour*, and closes every socket it holds on ``stop()`` (or leaving the ``with`` block):

- ``silent``: the kernel completes the handshake, nothing is ever read or sent (a hung process);
- ``header_then_stall``: reads the request, sends a status line and one header, then never ends the headers;
- ``trickle``: a valid HTTP answer sent one byte per ``interval`` from its first byte, headers included, whose
  body never ends (a Content-Length far beyond what is sent) — no read ever times out, the answer never completes;
- ``endless_body``: a 200 with a chunked body sent as fast as the socket takes it, forever;
- ``redis_trickle``: answers any command with a RESP simple string one byte per ``interval`` that never ends;
- ``gzip_bomb``: a 200 whose 65 KiB gzip'd body (Content-Length and Content-Encoding declared) decodes to 64 MiB;
- ``tls_trickle``: reads the ClientHello, then sends a TLS record one byte per ``interval`` that never ends;
- ``pg_hang``: completes PostgreSQL's startup (no TLS, no password, ready for query), then answers no query.

``closed`` counts the connections the client closed (the server noticed: a read saw the end, or a send failed).

Used by tests/integration/test_hostile.py and bench/bench_hostile.py.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

Behaviour = Callable[[socket.socket, threading.Event, float], None]


def _read_request(conn: socket.socket, stop: threading.Event) -> bool:
    """Read until the end of an HTTP request's headers (or anything, for other protocols); False once closed."""
    data = b""
    conn.settimeout(0.1)
    while not stop.is_set() and b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return False
        data += chunk
    return not stop.is_set()


def _trickle(conn: socket.socket, stop: threading.Event, interval: float, data: bytes, endless: bytes) -> None:
    """Send ``data`` one byte per ``interval``, then ``endless`` byte after byte until stopped."""
    position = 0
    while not stop.wait(interval):
        byte = data[position:position + 1] if position < len(data) else endless
        conn.sendall(byte)
        position += 1


def _until_closed(conn: socket.socket, stop: threading.Event) -> None:
    """Say nothing until the client closes (whatever it sends is read and ignored) or the server stops."""
    conn.settimeout(0.1)
    while not stop.is_set():
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def silent(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    _until_closed(conn, stop)


def header_then_stall(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    if _read_request(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        _until_closed(conn, stop)


def trickle(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    if _read_request(conn, stop):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        _trickle(conn, stop, interval, head + b'{"status": "', b"o")


def endless_body(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    if _read_request(conn, stop):
        conn.settimeout(None)  # blocks until the client reads or closes (stop() shuts the socket down)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        while not stop.is_set():
            conn.sendall(chunk)


def redis_trickle(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    conn.settimeout(0.1)
    while not stop.is_set():  # wait for the first command (AUTH, HELLO, PING, …), whatever it is
        try:
            if not conn.recv(4096):
                return  # closed before it said anything
            break
        except TimeoutError:
            continue
    _trickle(conn, stop, interval, b"+PON", b"G")


@functools.cache
def _bomb() -> bytes:
    """64 MiB of zeros, gzip'd: 65 KiB on the wire."""
    return gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)


def gzip_bomb(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    if _read_request(conn, stop):
        body = _bomb()
        conn.settimeout(None)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        _until_closed(conn, stop)


def tls_trickle(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    """Reads the ClientHello, then sends a TLS handshake record header announcing 16 KiB, one byte per ``interval``,
    whose content never ends: no read times out, the handshake never completes."""
    conn.settimeout(0.1)
    while not stop.is_set():
        try:
            if not conn.recv(4096):
                return
            break
        except TimeoutError:
            continue
    _trickle(conn, stop, interval, b"\x16\x03\x03\x40\x00\x02", b"\x00")


def _pg_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


_PG_READY = b"".join([
    _pg_message(b"R", struct.pack("!I", 0)),  # AuthenticationOk: no password asked
    *(_pg_message(b"S", name + b"\0" + value + b"\0") for name, value in (
        (b"server_version", b"15.0"), (b"server_encoding", b"UTF8"), (b"client_encoding", b"UTF8"),
        (b"DateStyle", b"ISO, MDY"), (b"integer_datetimes", b"on"), (b"standard_conforming_strings", b"on"),
        (b"TimeZone", b"UTC"))),
    _pg_message(b"K", struct.pack("!II", 4242, 4242)),  # BackendKeyData
    _pg_message(b"Z", b"I"),  # ReadyForQuery, idle
])


def _recv_exactly(conn: socket.socket, stop: threading.Event, n: int) -> bytes | None:
    data = b""
    conn.settimeout(0.1)
    while len(data) < n and not stop.is_set():
        try:
            chunk = conn.recv(n - len(data))
        except TimeoutError:
            continue
        if not chunk:
            return None
        data += chunk
    return data if len(data) == n else None


def pg_hang(conn: socket.socket, stop: threading.Event, interval: float) -> None:
    """A PostgreSQL server (or a proxy) that completes the startup — no TLS, no password — then answers nothing."""
    while True:  # SSLRequest / GSSENCRequest ("N": not here), then the startup packet
        head = _recv_exactly(conn, stop, 8)
        if head is None:
            return
        length, code = struct.unpack("!II", head)
        if code in (80877103, 80877104):
            conn.sendall(b"N")
            continue
        if _recv_exactly(conn, stop, length - 8) is None:
            return
        break
    conn.sendall(_PG_READY)
    _until_closed(conn, stop)  # every query is read and never answered


BEHAVIOURS: dict[str, Behaviour] = {
    "silent": silent,
    "header_then_stall": header_then_stall,
    "trickle": trickle,
    "endless_body": endless_body,
    "redis_trickle": redis_trickle,
    "pg_hang": pg_hang,
    "tls_trickle": tls_trickle,
    "gzip_bomb": gzip_bomb,
}


class HostileServer:
    """One loopback listener whose every connection gets ``behaviour``; ``port`` is where it listens."""

    def __init__(self, behaviour: str | Behaviour, interval: float = 0.5) -> None:
        self.behaviour = BEHAVIOURS[behaviour] if isinstance(behaviour, str) else behaviour
        if self.behaviour is gzip_bomb:
            _bomb()  # made before the first client waits (0.3 s of CPU), once
        self.interval = interval
        self.stopping = threading.Event()
        self.accepted = 0
        self.closed = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name=f"hostile-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client went away: that is its right
            self.behaviour(conn, self.stopping, self.interval)
        if not self.stopping.is_set():  # the behaviour ended before the server did: the client closed
            with self._lock:
                self.closed += 1

    def stop(self) -> None:
        self.stopping.set()
        self._listener.close()
        with self._lock:
            for conn in self._conns:  # shutdown first: it wakes a thread blocked in recv or sendall
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()
        self._thread.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
