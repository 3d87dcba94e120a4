"""The sandbox app's Prometheus metrics (served at ``/metrics``)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template and status code.",
            ["method", "handler", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time spent answering HTTP requests, by route template.",
            ["method", "handler"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # the same latencies in milliseconds, as some applications export them (MagicSaaS's http_request_duration_ms):
        # what the SLO checks' duration_unit and the PromQL thresholds' unit are tested on
        self.duration_ms = Histogram(
            "http_request_duration_ms",
            "Time spent answering HTTP requests, in milliseconds, by route template.",
            ["method", "handler"],
            buckets=tuple(b * 1000 for b in LATENCY_BUCKETS),
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "app_dependency_up",
            "Whether a dependency answered its last check (1) or not (0).",
            ["dependency"],
            registry=self.registry,
        )
        self.info = Gauge(
            "app_info", "The running release (value is always 1).", ["version"], registry=self.registry
        )

    def declare(self, routes: Iterable[tuple[str, str]]) -> None:
        """Every route's latency series exists from the start, at 0 (Prometheus' "avoid missing metrics"): a
        route's first requests then show in rate() at the next scrape. Without it the series appears with them and
        rate() needs a second scrape — a latency alert on a route not used since start-up came one scrape later."""
        for method, handler in routes:
            if handler != "/metrics":  # not observed (scraping must not create traffic)
                self.duration.labels(method, handler)
                self.duration_ms.labels(method, handler)

    def observe(self, method: str, handler: str, status: int, seconds: float) -> None:
        self.requests.labels(method, handler, str(status)).inc()
        self.duration.labels(method, handler).observe(seconds)
        self.duration_ms.labels(method, handler).observe(seconds * 1000)

    def set_version(self, version: str) -> None:
        self.info.clear()
        self.info.labels(version).set(1)
