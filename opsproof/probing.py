"""How a run's probes run: every selected probe ahead of time on probe threads (one client per target, so a run
of 500 checks takes about as long as its slowest targets, not their sum), or on demand; every wait for a result
bounded by what is left of the time budget, and ``retry`` entries polled until they pass.

Nothing ever waits for a probe in flight once its test has stopped waiting: the probe threads are daemon threads
of their own (not a ``ThreadPoolExecutor``, whose workers ``concurrent.futures`` joins at interpreter exit), and
the clients are closed only when no probe uses them any more — at the end of the run, or by the last abandoned
probe when it ends. A run whose budget is spent exits at once, whatever its targets do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any

from opsproof import governance
from opsproof.inventory import address_of
from opsproof.probes import Connections, ProbeSpec, Target, prepare, run
from opsproof.result import Result


@dataclass(eq=False)
class _Job:
    """One check's probe: its result to come, when a thread started it, and — never started once the budget ran
    out — how many unfinished checks were ahead of it."""

    spec: ProbeSpec
    target: Target[Any]
    future: Future[Result] = field(default_factory=Future)
    started: float | None = None  # time.monotonic() when a thread took it
    behind: int | None = None


class Prober:
    """The run's clients, its probe threads and the probes it has run, keyed by ``check:target``."""

    def __init__(self, budget: governance.Budget, concurrency: int) -> None:
        self.budget = budget
        self.concurrency = concurrency
        self.conns = Connections()
        self.jobs: dict[str, _Job] = {}
        self.roots: dict[str, _Job] = {}  # target id → the job of its reachability check
        self.queued: deque[_Job] = deque()  # prefetched, not started
        self.stopping = threading.Event()  # set once the time budget is spent: polling loops end, no probe starts
        self._lock = threading.Lock()  # guards queued, the jobs' start, in_flight and closed
        self.in_flight = 0  # probes started and not ended
        self._closed = False  # the run is over: the last probe to end closes the clients

    def fetch(self, spec: ProbeSpec, target: Target[Any]) -> Result:
        """A probe's result, prefetched or run now. Once it is ready it is the check's, budget spent or not;
        until then this waits at most what is left of the time budget, and then raises TimedOut saying what the
        check was waiting for."""
        job = self._job(spec, target)
        try:
            if job.future.done() or not self.budget.exhausted():
                return job.future.result(timeout=self.budget.remaining())
        except (TimeoutError, CancelledError, governance.TimedOut):  # TimedOut: a retry poll the budget ended
            pass
        self.expire()
        raise governance.TimedOut(self._waiting(job))

    def _job(self, spec: ProbeSpec, target: Target[Any]) -> _Job:
        """The check's job; one not prefetched runs now — inline without a budget, else on a thread of its own so
        that waiting for it is bounded by the budget; none starts once the budget is spent."""
        key = f"{spec.check}:{target.id}"
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = self._new(spec, target)
            with self._lock:
                started = self._take(job)
            if started and self.budget.seconds is None:
                self._execute(job)
            elif started:
                prepare([spec.kind])
                threading.Thread(target=self._execute, args=(job,), name="opsproof-on-demand", daemon=True).start()
        return job

    def _new(self, spec: ProbeSpec, target: Target[Any]) -> _Job:
        job = _Job(spec, target)
        if spec.root:
            self.roots.setdefault(target.id, job)
        return job

    def _take(self, job: _Job) -> bool:
        """Mark ``job`` started, unless the run is stopping or its budget is spent (the lock is held); the caller
        then executes it."""
        if self.stopping.is_set() or self.budget.exhausted() or not job.future.set_running_or_notify_cancel():
            return False
        job.started = time.monotonic()
        self.in_flight += 1
        return True

    def _root_first(self, job: _Job) -> None:
        """Wait until the target's reachability check, when it runs in this run, has its result. A target's checks
        share its client (one Redis connection, one PostgreSQL session per entry): run at once, whichever took the
        connection first got the server's behaviour, and the root check — the one that blocks the others — could
        only say it "waited for the entry's connection". Bounded by the root's own deadline (a ``retry`` root: its
        first tries), and by the run's stop; prefetch queues every root check ahead of the others."""
        if job.spec.root:
            return
        root = self.roots.get(job.target.entry.id)  # a named query's: its entry's
        if root is None or root is job or root.future.done():
            return
        timeout = float(getattr(job.target.config, "timeout_s", None) or 30) * 2
        deadline = time.monotonic() + timeout
        while not root.future.done() and not self.stopping.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, CancelledError):
                root.future.exception(timeout=min(0.1, max(0.0, deadline - time.monotonic())))

    def _execute(self, job: _Job) -> None:
        """Run a started job's probe (after its target's reachability check, :meth:`_root_first`), once or until it
        passes as the entry's ``retry`` asks; its result, or its error, goes to whoever waits for it. The last probe
        to end after the run is over closes the clients."""
        self._root_first(job)
        retry = getattr(job.target.config, "retry", None)
        attempt: Callable[[], Result] = lambda: run(job.spec, job.target, self.conns)  # noqa: E731
        try:
            job.future.set_result(attempt() if retry is None else
                                  governance.eventually(attempt, retry, wait=self.stopping.wait))
        except BaseException as e:  # as a pool does: the test that waits for it sees the error
            job.future.set_exception(e)
        finally:
            with self._lock:
                self.in_flight -= 1
                last = self._closed and self.in_flight == 0
            if last:
                self._close_clients()

    def _waiting(self, job: _Job) -> governance.Waiting:
        address = address_of(job.target.config)
        if job.started is None:
            behind = job.behind if job.behind is not None else self.in_flight
            return governance.Waiting(job.target.id, address, None, behind)
        return governance.Waiting(job.target.id, address, time.monotonic() - job.started)

    def expire(self) -> None:
        """The time budget is spent: stop polling and cancel every probe not started (each remembers how many
        unfinished checks were ahead of it); probes in flight are abandoned, never waited for."""
        with self._lock:
            self.stopping.set()
            ahead = self.in_flight
            while self.queued:
                job = self.queued.popleft()
                job.behind, ahead = ahead, ahead + 1
                job.future.cancel()

    def prefetch(self, jobs: list[tuple[ProbeSpec, Target[Any]]]) -> None:
        """Queue every probe; ``concurrency`` daemon threads take them in order. One thread per slot, not per
        probe: starting 9,000 threads, or waking one per probe, takes the GIL from the main thread."""
        workers = max(1, self.concurrency)
        if workers == 1 or not jobs:
            return
        prepare(spec.kind for spec, _ in jobs)
        for spec, target in sorted(jobs, key=lambda job: not job[0].root):  # roots first: see _root_first
            key = f"{spec.check}:{target.id}"
            if key not in self.jobs:
                self.jobs[key] = job = self._new(spec, target)
                self.queued.append(job)
        for n in range(min(workers, len(self.queued))):
            threading.Thread(target=self._drain, name=f"opsproof-probe-{n}", daemon=True).start()

    def _drain(self) -> None:
        """A probe thread: run queued probes until none is left or the run stops."""
        while True:
            with self._lock:
                if not self.queued or not self._take(self.queued[0]):
                    return
                job = self.queued.popleft()
            self._execute(job)

    def close(self) -> None:
        """The run is over: no probe starts any more; the clients are closed now if no probe uses them, else by
        the last abandoned probe when it ends (never from under it). Waits for nothing."""
        self.expire()
        with self._lock:
            self._closed = True
            idle = self.in_flight == 0
        if idle:
            self._close_clients()

    def _close_clients(self) -> None:
        with contextlib.suppress(RuntimeError):  # an abandoned probe ending while the interpreter shuts down
            self.conns.close()
