"""How a run's probes run: every selected probe ahead of time in a thread pool (one client per target, so a run
of 500 checks takes about as long as its slowest targets, not their sum), or on demand; every wait for a result
bounded by what is left of the time budget, and ``retry`` entries polled until they pass."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from opsproof import governance
from opsproof.probes import Connections, ProbeSpec, Target, run
from opsproof.result import Result


class Prober:
    """The run's clients, its probe pool and the results it has fetched, keyed by ``check:target``."""

    def __init__(self, budget: governance.Budget, concurrency: int) -> None:
        self.budget = budget
        self.concurrency = concurrency
        self.conns = Connections()
        self.futures: dict[str, Future[Result]] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.queued: deque[tuple[Future[Result], ProbeSpec, Target[Any]]] = deque()  # prefetched, not started
        self._on_demand: ThreadPoolExecutor | None = None
        self.stopping = threading.Event()  # set once the time budget is spent: polling loops end

    def fetch(self, spec: ProbeSpec, target: Target[Any]) -> Result:
        """A probe's result, prefetched or run now; waits at most what is left of the time budget."""
        if self.budget.exhausted():
            self.expire()
            raise governance.TimedOut
        try:
            return self._future(spec, target).result(timeout=self.budget.remaining())
        except (TimeoutError, CancelledError, governance.TimedOut):
            self.expire()
            raise governance.TimedOut from None

    def _future(self, spec: ProbeSpec, target: Target[Any]) -> Future[Result]:
        key = f"{spec.check}:{target.id}"
        if key not in self.futures:
            if self.budget.seconds is not None:  # in a thread, so that waiting for it is bounded by the budget
                if self._on_demand is None:
                    self._on_demand = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsproof-on-demand")
                self.futures[key] = self._on_demand.submit(self._job, spec, target)
            else:
                done: Future[Result] = Future()
                self.futures[key] = done
                try:
                    done.set_result(self._job(spec, target))
                except governance.TimedOut as e:
                    done.set_exception(e)
        return self.futures[key]

    def _job(self, spec: ProbeSpec, target: Target[Any]) -> Result:
        """Run a probe once, or until it passes as the entry's ``retry`` asks."""
        retry = getattr(target.config, "retry", None)
        attempt: Callable[[], Result] = lambda: run(spec, target, self.conns)  # noqa: E731
        return attempt() if retry is None else governance.eventually(attempt, retry, wait=self.stopping.wait)

    def expire(self) -> None:
        """The time budget is spent: stop polling, cancel every probe not started; in-flight ones end on
        their own timeouts."""
        self.stopping.set()
        self._cancel_queued()
        for pool in (self.pool, self._on_demand):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def prefetch(self, jobs: list[tuple[ProbeSpec, Target[Any]]]) -> None:
        """Queue every probe; ``concurrency`` pool threads take them in order. One pool task per thread, not per
        probe: submitting 9,000 tasks wakes a thread each time, which takes the GIL from the main thread."""
        workers = max(1, self.concurrency)
        if workers == 1 or not jobs:
            return
        for spec, target in jobs:
            key = f"{spec.check}:{target.id}"
            if key not in self.futures:
                future: Future[Result] = Future()
                self.futures[key] = future
                self.queued.append((future, spec, target))
        threads = min(workers, len(self.queued))
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="opsproof-probe")
        for _ in range(threads):
            self.pool.submit(self._drain)

    def _drain(self) -> None:
        """A pool thread's task: run queued probes until none is left or the run stops."""
        while not self.stopping.is_set():
            try:
                future, spec, target = self.queued.popleft()
            except IndexError:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(self._job(spec, target))
                except BaseException as e:  # as the pool does: the test that waits for it sees the error
                    future.set_exception(e)

    def _cancel_queued(self) -> None:
        while self.queued:
            try:
                self.queued.popleft()[0].cancel()
            except IndexError:  # a pool thread took the last one meanwhile
                return

    def close(self) -> None:
        self.stopping.set()
        self._cancel_queued()
        for pool in (self.pool, self._on_demand):  # waits only for probes in flight, bounded by their timeouts
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.conns.close()
