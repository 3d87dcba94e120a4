"""Exact response times: one HdrHistogram per request name, in microseconds, mergeable across Locust processes.

Five significant digits: every value up to 262 ms is kept to the microsecond, and larger ones within 0.001 %
(1 s ± 8 µs); the range is 1 µs to 10 minutes. A histogram travels between processes as HdrHistogram's own
compressed encoding (base64 text), so a worker's report is a few kB whatever the number of requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000  # 10 minutes: a response time above it is recorded as 10 minutes
DIGITS = 5
PERCENTILES = (50, 90, 95, 99, 99.9, 100)


def new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def micros(response_time_ms: float) -> int:
    """Locust's response time (ms, a float from perf_counter) as whole microseconds within the histogram's range."""
    return min(max(round(response_time_ms * 1000), LOWEST_US), HIGHEST_US)


@dataclass
class Tally:
    """What one request name (or a whole scenario) saw in one process, or merged from many."""

    histogram: HdrHistogram = field(default_factory=new)
    requests: int = 0
    failures: int = 0

    def record(self, response_time_ms: float, failed: bool) -> None:
        self.histogram.record_value(micros(response_time_ms))
        self.requests += 1
        self.failures += failed

    def add(self, other: Tally) -> None:
        self.histogram.add(other.histogram)
        self.requests += other.requests
        self.failures += other.failures

    def encode(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures,
                "histogram": self.histogram.encode().decode("ascii") if self.requests else ""}

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Tally:
        histogram = HdrHistogram.decode(data["histogram"].encode("ascii")) if data["histogram"] else new()
        return cls(histogram, int(data["requests"]), int(data["failures"]))

    def latency_us(self, metric: str, percentile: float | None = None) -> float:
        """An exact latency figure in µs: p(N), avg, med, min or max."""
        h = self.histogram
        if percentile is not None:
            return float(h.get_value_at_percentile(percentile))
        if metric == "avg":
            return float(h.get_mean_value())
        if metric == "med":
            return float(h.get_value_at_percentile(50))
        if metric == "min":
            return float(h.get_min_value())
        if metric == "max":
            return float(h.get_max_value())
        raise ValueError(f"not a latency metric: {metric}")

    def summary(self) -> dict[str, Any]:
        """Figures for the record (µs); a tally with no request has none."""
        out: dict[str, Any] = {"requests": self.requests, "failures": self.failures}
        if self.histogram.get_total_count():
            values = self.histogram.get_percentile_to_value_dict(list(PERCENTILES))  # one pass over the counts
            out["us"] = {f"p({p:g})": float(values[p]) for p in PERCENTILES}
            out["us"] |= {m: self.latency_us(m) for m in ("min", "avg", "max")}
        return out


def merge(reports: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, Tally]:
    """Encoded per-name tallies from any number of reports (workers, intervals) merged by name."""
    merged: dict[str, Tally] = {}
    for report in reports:
        for name, data in report.items():
            if name not in merged:
                merged[name] = Tally()
            merged[name].add(Tally.decode(data))
    return merged


def total(tallies: Iterable[Tally]) -> Tally:
    out = Tally()
    for t in tallies:
        out.add(t)
    return out
