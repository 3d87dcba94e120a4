"""The timeline of one experiment run: fault injected → pending → firing → delivered → remediated → recovered →
resolved. Faults and probes mark the moments they see (Unix times); the runner saves them as JSON evidence.

The marks belong to the run in progress (:class:`opsproof.chaos.run.ChaosRun`): one run at a time per process
(Chaos Toolkit's rule too); :func:`reset` clears the current run's timeline.
"""

from __future__ import annotations

import time
from typing import Any

from opsproof.chaos import run

EVENTS = ("fault_injected", "pending", "firing", "delivered", "remediated", "recovered", "resolved")


def reset() -> None:
    current = run.current()
    with current.lock:
        current.marks.clear()


def mark(event: str, at: float | None = None, **detail: Any) -> float:
    """Record ``event`` at ``at`` (default: now); returns the time recorded."""
    when = time.time() if at is None else at
    current = run.current()
    with current.lock:
        current.marks.append({"event": event, "at": when, **detail})
    return when


def marks() -> list[dict[str, Any]]:
    current = run.current()
    with current.lock:
        return sorted((dict(m) for m in current.marks), key=lambda m: float(m["at"]))


def _times(event: str) -> list[float]:
    current = run.current()
    with current.lock:
        return [float(m["at"]) for m in current.marks if m["event"] == event]


def first(event: str) -> float | None:
    """The time of the first ``event`` (e.g. when the fault was injected), or None."""
    return min(_times(event), default=None)


def last(event: str) -> float | None:
    return max(_times(event), default=None)
