"""The timeline of one experiment run: fault injected → pending → firing → delivered → remediated → recovered →
resolved. Faults and probes mark the moments they see (Unix times); the runner saves them as JSON evidence.

One run at a time per process (Chaos Toolkit's rule too); :func:`reset` starts a new one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

EVENTS = ("fault_injected", "pending", "firing", "delivered", "remediated", "recovered", "resolved")
_lock = threading.Lock()
_marks: list[dict[str, Any]] = []


def reset() -> None:
    with _lock:
        _marks.clear()


def mark(event: str, at: float | None = None, **detail: Any) -> float:
    """Record ``event`` at ``at`` (default: now); returns the time recorded."""
    when = time.time() if at is None else at
    with _lock:
        _marks.append({"event": event, "at": when, **detail})
    return when


def marks() -> list[dict[str, Any]]:
    with _lock:
        return sorted((dict(m) for m in _marks), key=lambda m: float(m["at"]))


def _times(event: str) -> list[float]:
    with _lock:
        return [float(m["at"]) for m in _marks if m["event"] == event]


def first(event: str) -> float | None:
    """The time of the first ``event`` (e.g. when the fault was injected), or None."""
    return min(_times(event), default=None)


def last(event: str) -> float | None:
    return max(_times(event), default=None)
