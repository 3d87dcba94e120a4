"""The app's dependencies (PostgreSQL, Redis): their last known state, the checks, and the background monitor."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg
import redis
from prometheus_client import Gauge

from .base import Redactor, first_line, log
from .pg import PgPool, PgUnavailable

HEALTH_POOL_WAIT_S = 1.0
HEALTH_QUERY_TIMEOUT_S = 1.5
MONITOR_INTERVAL_S = 0.5  # pause between background dependency checks (they feed app_dependency_up)


class DependencyState:
    """Last known up/down state of each dependency; logs changes and feeds the gauge."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._lock = threading.Lock()
        self._up: dict[str, bool] = {}

    def observe(self, name: str, error: str | None) -> None:
        up = error is None
        self._gauge.labels(name).set(1 if up else 0)
        with self._lock:
            changed = self._up.get(name) != up
            self._up[name] = up
        if changed and up:
            log.info("dependency %s is up", name)
        elif changed:
            log.warning("dependency %s is down: %s", name, error)


@dataclass(frozen=True)
class Check:
    status: str  # "ok" | "down"
    latency_ms: float
    error: str | None


class DependencyChecks:
    """The App's checks of its dependencies: each check feeds ``DependencyState`` (and so the gauge)."""

    pg: PgPool
    redis: redis.Redis
    redact: Redactor
    deps: DependencyState

    def check_postgres(self) -> Check:
        started = time.perf_counter()
        error: str | None = None
        try:
            self.pg.query("SELECT 1", timeout=HEALTH_QUERY_TIMEOUT_S, wait=HEALTH_POOL_WAIT_S)
        except (PgUnavailable, psycopg.Error) as exc:
            error = self.redact(str(exc) if isinstance(exc, PgUnavailable) else first_line(exc))
        return self._checked("postgres", started, error)

    def check_redis(self) -> Check:
        started = time.perf_counter()
        error: str | None = None
        try:
            self.redis.ping()
        except (redis.RedisError, OSError) as exc:
            error = self.redact(first_line(exc))
        return self._checked("redis", started, error)

    def _checked(self, name: str, started: float, error: str | None) -> Check:
        self.deps.observe(name, error)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return Check("ok" if error is None else "down", latency_ms, error)

    def check_all(self) -> dict[str, Check]:
        """Check both dependencies concurrently, so the slowest bounds the total."""
        results: dict[str, Check] = {}

        def check_redis() -> None:
            results["redis"] = self.check_redis()

        thread = threading.Thread(target=check_redis, daemon=True)
        thread.start()
        results["postgres"] = self.check_postgres()
        thread.join()  # bounded by the Redis socket timeouts
        return {"postgres": results["postgres"], "redis": results["redis"]}

    def monitor(self, stop: threading.Event, interval: float = MONITOR_INTERVAL_S) -> None:
        """Keep ``app_dependency_up`` current from a thread of its own, so a scrape never waits on a slow or
        frozen dependency: a scrape that did would time out, and the app would look down (``up == 0``) when
        only its database is slow."""
        while not stop.is_set():
            try:
                self.check_all()
            except Exception:  # a monitor that dies silently would freeze the gauge at its last value
                log.exception("dependency check failed")
            stop.wait(interval)
