"""Exact response times: one HdrHistogram per request name, in microseconds, mergeable across Locust processes.

Five significant digits: every value up to 262 ms is kept to the microsecond, and larger ones within 0.001 %
(1 s ± 8 µs); the range is 1 µs to 10 minutes. A histogram travels between processes as HdrHistogram's own
compressed encoding (base64 text), so a worker's report is a few kB whatever the number of requests.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, compress
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
    _cum: list[int] = field(default_factory=list, repr=False)
    _cum_for: int = field(default=-1, repr=False)

    def record(self, response_time_ms: float, failed: bool) -> None:
        self.record_us(micros(response_time_ms), failed)

    def record_us(self, us: int, failed: bool) -> None:
        """One sample, already in whole µs within the histogram's range (``micros``)."""
        self.histogram.record_value(us)
        self.requests += 1
        if failed:
            self.failures += 1

    def add(self, other: Tally) -> None:
        self.histogram.add(other.histogram)
        self.requests += other.requests
        self.failures += other.failures

    def encode(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures,
                "histogram": self.histogram.encode().decode("ascii") if self.requests else ""}

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Tally:
        tally = cls(new(), int(data["requests"]), int(data["failures"]))
        if data["histogram"]:  # a decoded histogram's counts may be cut short: re-homed in a full one
            tally.histogram.add(HdrHistogram.decode(data["histogram"].encode("ascii")))
        return tally

    def _cumulative(self) -> list[int]:
        """Running totals of the counts, computed at C speed (a Python loop over 1.3 million counters per
        percentile, as hdrh's own getters do, takes seconds); recomputed when the histogram changed."""
        h = self.histogram
        if self._cum_for != h.get_total_count():
            self._cum = list(accumulate(h.counts[:h.counts_len]))
            self._cum_for = h.get_total_count()
        return self._cum

    def _value_at_rank(self, rank: int) -> float:
        """The value of the ``rank``-th smallest sample (1-based), as HdrHistogram reports it."""
        h = self.histogram
        return float(h.get_highest_equivalent_value(h.get_value_from_index(bisect_left(self._cumulative(), rank))))

    def latency_us(self, metric: str, percentile: float | None = None) -> float:
        """An exact latency figure in µs: p(N), avg, med, min or max (HdrHistogram's rank rule: the value at rank
        round(N × p / 100), at least 1)."""
        total = self.histogram.get_total_count()
        if not total:
            return math.nan
        if metric == "med":
            percentile = 50
        if percentile is not None:
            return self._value_at_rank(max(int(min(percentile, 100) * total / 100 + 0.5), 1))
        if metric == "min":
            return float(self.histogram.get_lowest_equivalent_value(
                self.histogram.get_value_from_index(bisect_right(self._cumulative(), 0))))
        if metric == "max":
            return self._value_at_rank(total)
        if metric == "avg":
            h, counts = self.histogram, self.histogram.counts
            used = compress(range(h.counts_len), counts[:h.counts_len])  # the counters in use, found at C speed
            return float(sum(counts[i] * _middle(h, h.get_value_from_index(i)) for i in used) / total)
        raise ValueError(f"not a latency metric: {metric}")

    def below(self, bound_us: float, inclusive: bool = False) -> int:
        """How many samples are below ``bound_us`` (at most it, ``inclusive``), at the histogram's resolution —
        a sum over the counters up to the bound's, cheaper than a percentile (for checks made while a run goes)."""
        h = self.histogram
        value = min(max(int(bound_us) - (0 if inclusive else 1), 0), HIGHEST_US)
        if value < LOWEST_US:
            return 0
        return sum(h.counts[:min(h.get_counts_array_index(value), h.counts_len - 1) + 1])

    def summary(self) -> dict[str, Any]:
        """Figures for the record (µs); a tally with no request has none."""
        out: dict[str, Any] = {"requests": self.requests, "failures": self.failures}
        if self.histogram.get_total_count():
            out["us"] = {f"p({p:g})": self.latency_us("p", p) for p in PERCENTILES}
            out["us"] |= {m: self.latency_us(m) for m in ("min", "avg", "max")}
        return out


def _middle(h: HdrHistogram, value: int) -> float:
    """The middle of the values a counter stands for (the value itself below 262 ms)."""
    return float(value + h.get_highest_equivalent_value(value)) / 2


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
