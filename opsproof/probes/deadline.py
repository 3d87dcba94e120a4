"""A check's total deadline: every blocking call the check makes waits at most what is left of it.

A client's own timeouts bound one read each: a server that sends one byte a second never trips them, and a check
waiting on it never ends. :func:`~opsproof.probes.base.run` opens a :class:`Deadline` of the entry's ``timeout_s``
for the whole check; the check's sockets (see :mod:`opsproof.probes.bounded`) ask it, before each connect, send
and receive, how long they may wait (:meth:`Deadline.bound`). So the probe's own thread stops reading when the
deadline passes — nothing is left reading in the background — and the connection it was reading from is closed
by its client (httpcore and redis-py close a connection whose read failed), never reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Clock = Callable[[], float]

_current = threading.local()


class Finding(Exception):
    """An exception whose message is the check's finding as it stands, with its evidence."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence: Mapping[str, Any] = evidence or {}


class Expired(Finding, TimeoutError):
    """The check's deadline passed before the call could be made."""


class Deadline:
    """``seconds`` from now on ``clock``; ``None`` bounds nothing (the clients' own timeouts apply)."""

    def __init__(self, seconds: float | None, clock: Clock | None = None) -> None:
        self.seconds = seconds
        self.clock = clock or time.monotonic  # looked up now: a test's fake clock applies
        self.ends = None if seconds is None else self.clock() + seconds
        self.phase: str | None = None  # what the check last waited for: pool, connect, tls, send, answer
        self.received = 0  # bytes of the answer being read (since the last request sent)
        self.reads = 0  # reads that brought some of those bytes
        self.last_byte: float | None = None
        self.bounded = False  # some call waited on this deadline: when it has passed, it is what ended the check
        self.started = self.clock()
        self.first_call: float | None = None  # when the check first waited on the network
        self.host: str | None = None  # the name being looked up, while phase is "resolve"

    def left(self) -> float | None:
        return None if self.ends is None else self.ends - self.clock()

    def passed(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def bound(self, timeout: float | None, phase: str) -> float | None:
        """The timeout for one blocking call: the client's own, cut to what is left; :class:`Expired` once none is."""
        left = self.left()
        if left is not None and left <= 0:  # no time left for what the check was about to wait for
            # spent before the check's first call: waiting for the entry's one connection
            self.phase = None if self.first_call is None else phase
            self.bounded = True
            raise Expired(self.describe(), self.evidence())
        if phase == "send":
            self.received, self.reads, self.last_byte = 0, 0, None
        self.phase = phase
        if self.first_call is None and phase != "pool":  # waiting for the entry's connection is not the network's
            self.first_call = self.clock()
        if left is None:
            return timeout
        self.bounded = True
        return left if timeout is None else min(timeout, left)

    def got(self, n: int) -> None:
        """``n`` bytes of the answer arrived (0: the peer closed)."""
        if n:
            self.received += n
            self.reads += 1
            self.last_byte = self.clock()

    def ended_check(self) -> bool:
        """The deadline is what ended the check: it has passed and the check's waits were cut to it."""
        return self.bounded and self.passed()

    def describe(self) -> str:
        """What did not happen in time, and what the server did meanwhile."""
        finding = self._what(f"within {self.seconds:g} s")
        waited = None if self.first_call is None else self.first_call - self.started
        if waited is not None and self.seconds and waited >= self.seconds / 2:  # the entry's connection was busy
            finding += f", {waited:.1f} s of it waiting for the entry's connection"
        return finding

    def _what(self, within: str) -> str:
        if self.phase in (None, "pool"):  # no call made yet: the entry's one connection was busy with another check
            return f"no answer {within} (waited for the entry's connection, in use by another of its checks)"
        if self.phase == "resolve":
            return f"no address for {self.host} {within} (DNS lookup)"
        if self.phase == "connect":
            return f"no connection {within} (connect)"
        if self.phase == "tls":
            return f"no TLS handshake {within}"
        if self.phase == "send":
            return f"request not sent {within} (the server does not read)"
        if not self.received:
            return f"no answer {within} (the server sent nothing)"
        quiet = self.clock() - (self.last_byte or 0.0)
        assert self.seconds is not None
        then = ("then trickled" if self.reads > 1 and quiet < self.seconds / 2
                else f"then nothing for {quiet:.1f} s")
        return f"no complete answer {within} (the server sent {self.received} bytes, {then})"

    def evidence(self) -> dict[str, Any]:
        return {"deadline_s": self.seconds, "waiting_for": self.phase, "bytes_received": self.received}


def current() -> Deadline | None:
    """The deadline of the check running in this thread, if any."""
    return getattr(_current, "deadline", None)


def bound(timeout: float | None, phase: str) -> float | None:
    """:meth:`Deadline.bound` of the current check, or ``timeout`` itself outside a check."""
    deadline = current()
    return timeout if deadline is None else deadline.bound(timeout, phase)


def got(n: int) -> None:
    deadline = current()
    if deadline is not None:
        deadline.got(n)


@contextmanager
def within(seconds: float | None, clock: Clock | None = None) -> Iterator[Deadline]:
    """Make a :class:`Deadline` the current one for this thread while the block runs (nested: the inner one)."""
    outer = current()
    deadline = Deadline(seconds, clock)
    _current.deadline = deadline
    try:
        yield deadline
    finally:
        _current.deadline = outer
