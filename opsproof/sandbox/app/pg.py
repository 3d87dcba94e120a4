"""PostgreSQL for the sandbox app: a tiny pool with bounded waits everywhere."""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Sequence
from typing import LiteralString

import psycopg
from psycopg.rows import DictRow, dict_row

from .base import APP_NAME, first_line

POOL_SIZE = 4
POOL_WAIT_S = 2.0  # waiting longer than this for a pool slot means "Postgres down"
QUERY_TIMEOUT_S = 2.5  # client-side deadline (server-side statement_timeout is 2 s)


class PgUnavailable(Exception):
    """PostgreSQL could not be reached, or did not answer in time."""


class _Watchdog:
    """Shuts a connection's socket down if a query outlives its deadline.

    The server-side ``statement_timeout`` cannot fire when the server is frozen
    (SIGSTOP) or the network drops packets, so the client enforces its own
    deadline: shutting the socket down wakes the blocked psycopg call with an
    error, and the pool then discards the connection.
    """

    def __init__(self, fd: int, timeout: float) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._done = False
        self._fired = False
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._fired = True
            try:
                with socket.socket(fileno=os.dup(self._fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> bool:
        """Disarm the watchdog; return True if it fired (the connection is then unusable)."""
        self._timer.cancel()
        with self._lock:
            self._done = True
            return self._fired


class PgPool:
    """A small thread-safe pool of lazily opened autocommit connections.

    A connection that raises anything is closed instead of being returned, so
    the app recovers by itself after PostgreSQL restarts.
    """

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[DictRow]] = []

    def query(
        self,
        sql: LiteralString,
        params: Sequence[object] = (),
        *,
        timeout: float = QUERY_TIMEOUT_S,
        wait: float = POOL_WAIT_S,
    ) -> list[DictRow]:
        """Run one statement and return its rows; raise PgUnavailable when Postgres is unusable."""
        if not self._slots.acquire(timeout=wait):
            raise PgUnavailable(f"no free database connection within {wait:g} s")
        try:
            conn = self._checkout()
            try:
                rows = self._run(conn, sql, params, timeout)
            except BaseException:
                conn.close()
                raise
            with self._lock:
                self._idle.append(conn)
            return rows
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> psycopg.Connection[DictRow]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if not _has_unread_data(conn):
                return conn
            # An idle connection with pending input was told something by the
            # server (usually "terminating connection" or EOF): drop it.
            conn.close()
        try:
            return psycopg.connect(
                self._dsn,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=2,
                application_name=APP_NAME,
                options="-c statement_timeout=2000",
            )
        except psycopg.Error as exc:
            raise PgUnavailable(first_line(exc)) from exc

    @staticmethod
    def _run(
        conn: psycopg.Connection[DictRow],
        sql: LiteralString,
        params: Sequence[object],
        timeout: float,
    ) -> list[DictRow]:
        watchdog = _Watchdog(conn.fileno(), timeout)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description is not None else []
        except psycopg.OperationalError as exc:
            if watchdog.stop():
                raise PgUnavailable(f"no answer within {timeout:g} s") from exc
            raise PgUnavailable(first_line(exc)) from exc
        finally:
            timed_out = watchdog.stop()
        if timed_out:  # answered, but the socket was shut just after: unusable
            raise PgUnavailable(f"no answer within {timeout:g} s")
        return rows


def _has_unread_data(conn: psycopg.Connection[DictRow]) -> bool:
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, psycopg.Error):
        return True
