"""The open model's schedule: requests at a constant arrival rate, independent of how fast the service answers.

Locust's own pacing (``constant_throughput``, ``constant_pacing``) is a closed loop per user: a user waits
``max(0, interval - time its task took)``, so a slow answer delays that user's next request, the request that
should have gone meanwhile is never sent, and the latency it would have seen is never measured — coordinated
omission. A ``LoadTestShape`` changes how many users run, not when requests leave. So opsproof keeps Locust's
users as the pool of requests in flight (``users`` = the most at once) and gives each process one schedule: slot
``k`` is due at ``t0 + k / rate``; whichever user of the process is free takes the next slot, sleeps until it is
due and sends. The slot's due time rides along in Locust's request ``context`` and the plugin measures latency
from it (wrk2's correction). A slot taken more than ``LATE_S`` after it was due is *late* — every user was busy,
the generator could not hold its rate — and a slot that fell due but was never taken before the run ended is
*unsent*; both are counted, and a run with more than ``LATE_ALLOWED`` of them fails its ``rps`` thresholds.

Plain code (no Locust import): the users module drives it, the plugin reads it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

LATE_S = 0.05  # a request sent this long after it was due was late (gevent's scheduling jitter stays well below)
LATE_ALLOWED = 0.01  # more than 1 % of the due requests late or unsent: the rate was not held
INTENDED = "opsproof_intended"  # the key of a request's due time (epoch s) in Locust's request context


@dataclass
class Schedule:
    """One process's share of the arrival rate: ``rate`` requests per second, whoever is free sends the next."""

    rate: float
    clock: Callable[[], float] = time.time
    start: float | None = None  # when the slot ``base`` was due (the first slot, or the one after a rate change)
    base: int = 0
    taken: int = 0  # slots handed out
    stopped: float | None = None  # when the run stopped: no slot is due after it
    late: int = 0  # of them, taken more than LATE_S after they were due
    late_at: list[float] = field(default_factory=list)  # when each late slot was due (per-second series)

    def take(self) -> float:
        """The due time (epoch s) of the next slot; counts it late if it is already LATE_S overdue."""
        now = self.clock()
        if self.start is None:
            self.start = now
        due = self._due_of(self.taken)
        self.taken += 1
        if now - due > LATE_S:
            self.late += 1
            self.late_at.append(due)
        return due

    def _due_of(self, slot: int) -> float:
        assert self.start is not None
        return self.start + (slot - self.base) / self.rate

    def set_rate(self, rate: float) -> None:
        """A new rate from the next slot on (users of this process joined or left): slots already due keep their
        times, the next is due one new interval after the last one handed out."""
        if self.start is not None and self.taken:
            self.start, self.base = self._due_of(self.taken - 1) + 1 / rate, self.taken
        self.rate = rate

    def due(self, until: float | None = None) -> int:
        """How many slots fell due by ``until`` (default now) less the tolerance: what should have been sent."""
        if self.start is None:
            return 0
        moment = (self.stopped or self.clock()) if until is None else until
        moment -= LATE_S
        return self.base + int((moment - self.start) * self.rate) + 1 if moment >= self.start else self.base

    def unsent(self, until: float | None = None) -> int:
        """Slots due by ``until`` that no user took: the generator fell behind and never caught up."""
        return max(self.due(until) - self.taken, 0)

    def report(self, until: float | None = None) -> dict[str, int]:
        return {"due": max(self.due(until), self.taken), "late": self.late, "unsent": self.unsent(until)}


def held(due: int, late: int, unsent: int) -> bool:
    """Whether the generator held its rate: at most LATE_ALLOWED of the due requests late or never sent."""
    return due > 0 and (late + unsent) <= LATE_ALLOWED * due


def share(rate: float, users_here: int, users: int) -> float:
    """The arrival rate of one process that runs ``users_here`` of the scenario's ``users``."""
    return rate * users_here / users if users else 0.0
