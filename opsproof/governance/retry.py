"""Eventually: an entry with ``retry: {within_s, consecutive, interval_s}`` is polled until its check passes
``consecutive`` times in a row, or ``within_s`` elapses; passing after a failure is ``flaky``."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from opsproof.governance.budget import TimedOut
from opsproof.inventory import Retry
from opsproof.result import Result


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def eventually(
    attempt: Callable[[], Result],
    retry: Retry,
    *,
    wait: Callable[[float], bool] = _sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Result:
    """Run ``attempt`` until it passes ``retry.consecutive`` times in a row, or ``retry.within_s`` elapses.

    No attempt starts after ``within_s``; between attempts, ``wait(interval_s)`` (it returns True when the run
    is stopping, e.g. its time budget is spent: then :class:`TimedOut` is raised). A result with no verdict
    (``ok is None``) is returned at once: polling cannot make data appear that the check needs.
    """
    start = clock()
    history = _History()
    streak = 0
    last_failure: Result | None = None
    while True:
        result = attempt()
        history.add(result)
        if result.ok is None:
            return _polled(result, history, retry, clock() - start)
        if result.ok:
            streak += 1
        else:
            streak, last_failure = 0, result
        if streak >= retry.consecutive:
            return _polled(result, history, retry, clock() - start)
        if clock() - start + retry.interval_s > retry.within_s:
            return _never(result, last_failure, streak, history, retry, clock() - start)
        if wait(retry.interval_s):
            raise TimedOut


class _History:
    """How many attempts were made, and the last few (as evidence)."""

    def __init__(self, keep: int = 20) -> None:
        self.count = 0
        self.recent: deque[Result] = deque(maxlen=keep)

    def add(self, result: Result) -> None:
        self.count += 1
        self.recent.append(result)


def _polling(history: _History, retry: Retry, elapsed: float) -> dict[str, Any]:
    return {"attempts": history.count, "elapsed_s": round(elapsed, 3), "within_s": retry.within_s,
            "consecutive": retry.consecutive, "interval_s": retry.interval_s,
            "history": [{"ok": r.ok, "observed": r.observed} for r in history.recent]}


def _polled(result: Result, history: _History, retry: Retry, elapsed: float) -> Result:
    return replace(result, attempts=history.count, duration_s=elapsed,
                   evidence={**result.evidence, "polling": _polling(history, retry, elapsed)})


def _never(last: Result, last_failure: Result | None, streak: int, history: _History, retry: Retry,
           elapsed: float) -> Result:
    """The check did not reach ``consecutive`` passes in a row within ``within_s``: a failure that says so."""
    base = last_failure or last
    needed = f"needed {retry.consecutive} consecutive pass{'es' if retry.consecutive != 1 else ''}"
    tail = f"after {history.count} attempts in {elapsed:.1f} s ({needed})"
    observed = f"{base.observed}, then only {streak} pass(es) in a row, {tail}" if streak else f"{base.observed} {tail}"
    return replace(base, ok=False, observed=observed, attempts=history.count, duration_s=elapsed,
                   evidence={**base.evidence, "polling": _polling(history, retry, elapsed)})


def is_flaky(result: Result, retry: Retry | None) -> bool:
    """Passed, but only after at least one attempt that did not (more attempts than passes needed)."""
    return retry is not None and result.ok is True and result.attempts > retry.consecutive
