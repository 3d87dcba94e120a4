"""A PostgreSQL session's share of the check's deadline: its socket is shut when the deadline passes.

``statement_timeout`` is the server's own bound, and is no bound at all against a server (or a proxy in front of
it) that completed the connect and then stopped answering: psycopg waits on the socket for as long as it takes.
While a check uses its session, a timer shuts the session's socket down at the check's deadline; psycopg's wait
then ends with an error, the session is closed (never reused), and the check reports ``no answer within N s``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from opsproof.probes.deadline import Expired, current

if TYPE_CHECKING:
    import psycopg


class Watchdog:
    """Shut ``conn``'s socket at the current check's deadline unless :meth:`cancel` came first."""

    def __init__(self, conn: psycopg.Connection[Any], seconds: float, left: float) -> None:
        self._conn = conn
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(left, 0.0), self._fire)
        self._timer.name = "opsproof-pg-deadline"
        self._timer.daemon = True
        self._timer.start()

    @classmethod
    def start(cls, conn: psycopg.Connection[Any]) -> Watchdog | None:
        """A watchdog for the current check's deadline; None outside a check (or one without a deadline)."""
        deadline = current()
        left = None if deadline is None else deadline.left()
        if deadline is None or left is None or deadline.seconds is None:
            return None
        return cls(conn, deadline.seconds, left)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(Exception):  # a session closed meanwhile has no socket left to shut
                shut(self._conn.pgconn.socket)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def finding(self) -> Expired:
        return Expired(f"no answer within {self.seconds:g} s (connected; the server answered no query)",
                       {"deadline_s": self.seconds, "waiting_for": "answer"})


def shut(fd: int) -> None:
    """Shut down the socket behind ``fd`` (libpq's): its reads and writes fail at once, in every thread."""
    sock = socket.socket(fileno=os.dup(fd))  # a second handle on the same socket; shutdown acts on the socket
    try:
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.close()
