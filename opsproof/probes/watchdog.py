"""The sockets of a check, shut at its deadline: for clients whose waits cannot be cut call by call.

``statement_timeout`` is the server's own bound, and urllib3's read timeout bounds one read: neither is a bound
against a server (or a proxy in front of it) that completed the connect and then trickles or says nothing —
psycopg and urllib3 wait on the socket for as long as it takes. While a check uses such a client, a
:class:`Watchdog` holds the sockets it talks on and shuts them down when the check's deadline passes; the client's
wait then ends with an error at once, in the check's own thread, and the connection is closed, never reused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opsproof.probes.deadline import current

_watching = threading.local()


class Watchdog:
    """Shut every socket :meth:`add`-ed at the current check's deadline, unless :meth:`cancel` came first."""

    def __init__(self, seconds: float, left: float) -> None:
        self.seconds = seconds
        self.fired = False  # the deadline passed while watching
        self.cut = 0  # sockets shut by it: the wait that ended was the deadline's doing
        self._lock = threading.Lock()
        self._done = False
        self._sockets: list[Any] = []  # a socket object, or a file descriptor another library owns (libpq's)
        self._timer = threading.Timer(max(left, 0.0), self._fire)
        self._timer.name = "opsproof-deadline-watch"
        self._timer.daemon = True
        self._timer.start()

    @classmethod
    def start(cls) -> Watchdog | None:
        """A watchdog for the current check's deadline; None outside a check (or one without a deadline)."""
        deadline = current()
        left = None if deadline is None else deadline.left()
        if deadline is None or left is None or deadline.seconds is None:
            return None
        return cls(deadline.seconds, left)

    def add(self, sock: socket.socket | int) -> None:
        with self._lock:
            if self.fired:
                self.cut += 1
                _shut(sock)
            elif not self._done:
                self._sockets.append(sock)

    def _fire(self) -> None:
        # counted before each shutdown: shutdown() releases the GIL, and the check's thread, woken by it, reads
        # ``cut`` (without the lock) to tell the deadline's cut from the server's own close
        with self._lock:
            if self._done:
                return
            self.fired = True
            for sock in self._sockets:
                self.cut += 1
                _shut(sock)

    def cancel(self) -> None:
        """Before the client closes its sockets: a file descriptor closed while watched could be another's next."""
        with self._lock:
            self._done = True
        self._timer.cancel()


@contextmanager
def watching() -> Iterator[Watchdog | None]:
    """A :class:`Watchdog` for the current check that the clients' connections (:func:`watch`) join meanwhile."""
    outer = getattr(_watching, "dog", None)
    dog = Watchdog.start()
    _watching.dog = dog
    try:
        yield dog
    finally:
        _watching.dog = outer
        if dog is not None:
            dog.cancel()


def watch(sock: socket.socket | None) -> None:
    """Have the current :func:`watching` block shut ``sock`` at the deadline (nothing outside one)."""
    dog = getattr(_watching, "dog", None)
    if dog is not None and sock is not None:
        dog.add(sock)


def _shut(sock: socket.socket | int) -> None:
    """Shut the socket down: its reads and writes fail at once, in every thread (a closed one: nothing to do)."""
    with contextlib.suppress(OSError):
        if isinstance(sock, int):
            handle = socket.socket(fileno=os.dup(sock))  # a second handle on libpq's socket; shutdown acts on it
            try:
                handle.shutdown(socket.SHUT_RDWR)
            finally:
                handle.close()
        else:
            sock.shutdown(socket.SHUT_RDWR)
