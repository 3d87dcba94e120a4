"""The one deadline-bounded poll: wait until a condition holds, and say what is still not true when it expires."""

from __future__ import annotations

import time
from collections.abc import Callable


class Expired(RuntimeError):
    """A wait ran past its deadline; the message says what was still not true."""


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05,
               fail_fast: type[Exception] | None = None, error: type[Exception] = Expired,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll until ``predicate()`` is true; past the deadline raise ``error("{what} within {timeout} s")``.
    An exception from the predicate counts as "not yet", except one of type ``fail_fast``, which ends the wait."""
    deadline = clock() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception as e:  # the thing polled is not up yet; the deadline decides
            if fail_fast is not None and isinstance(e, fail_fast):
                raise
        if clock() >= deadline:
            raise error(f"{what} within {timeout:g} s")
        sleep(interval)
