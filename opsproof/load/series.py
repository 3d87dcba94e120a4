"""Per-second figures of a load run, for the readiness report to chart: requests, failures, late sends (open model)
and latency percentiles of each wall-clock second, over every request of the scenario.

Each second keeps a small HdrHistogram of its own (two significant digits — a percentile within 1 %, 3,072
counters, ≈ 25 kB — where the run's exact histograms keep five): a chart needs the shape, the verdicts use the
exact ones. A second is keyed by the epoch second in which its responses ended, so the seconds of many Locust
processes (and machines with synchronised clocks) merge by key, the same way the exact tallies do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from opsproof.load.histogram import HIGHEST_US, LOWEST_US

DIGITS = 2
SHOWN = (50, 95, 99)


def _new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@dataclass
class Second:
    requests: int = 0
    failures: int = 0
    late: int = 0
    histogram: HdrHistogram = field(default_factory=_new)

    def encode(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures, "late": self.late,
                "histogram": self.histogram.encode().decode("ascii") if self.requests else ""}

    def add(self, data: Mapping[str, Any]) -> None:
        self.requests += int(data["requests"])
        self.failures += int(data["failures"])
        self.late += int(data["late"])
        if data["histogram"]:
            self.histogram.add(HdrHistogram.decode(data["histogram"].encode("ascii")))


@dataclass
class Series:
    """Seconds of one process since its last report (a worker), or merged (the master, a local run)."""

    seconds: dict[int, Second] = field(default_factory=dict)

    def _at(self, epoch: float) -> Second:
        key = int(epoch)
        second = self.seconds.get(key)
        if second is None:
            second = self.seconds[key] = Second()
        return second

    def record(self, ended: float, us: int, failed: bool) -> None:
        second = self.seconds.get(int(ended)) or self._at(ended)
        second.requests += 1
        if failed:
            second.failures += 1
        second.histogram.record_value(us)

    def late(self, due: float) -> None:
        self._at(due).late += 1

    def encode(self) -> dict[str, Any]:
        return {str(k): s.encode() for k, s in self.seconds.items()}

    def merge(self, encoded: Mapping[str, Mapping[str, Any]]) -> None:
        for key, data in encoded.items():
            self._at(int(key)).add(data)

    def rows(self, start: float, stop: float) -> list[dict[str, Any]]:
        """One row per second from the run's start to its stop, and any second a response ended in outside them
        (a second without a response has zeros, not a gap: a chart of an outage must show the outage): t (s since
        the first row), at (its epoch second), requests (= rps), failures, error_ratio, late, and p50/p95/p99 in
        ms (None when nothing ended in that second)."""
        first, last = int(start), int(stop)
        if self.seconds:  # a worker's last answers may end after the master stopped: every second is kept
            first, last = min(first, min(self.seconds)), max(last, max(self.seconds))
        rows = []
        for key in range(first, last + 1):
            s = self.seconds.get(key, Second())
            row: dict[str, Any] = {"t": key - first, "at": key, "requests": s.requests, "failures": s.failures,
                                   "error_ratio": round(s.failures / s.requests, 4) if s.requests else 0.0,
                                   "late": s.late}
            for p in SHOWN:
                row[f"p{p}_ms"] = (round(s.histogram.get_value_at_percentile(p) / 1000, 2) if s.requests else None)
            rows.append(row)
        return rows


def merged(reports: Iterable[Mapping[str, Mapping[str, Any]]]) -> Series:
    out = Series()
    for report in reports:
        out.merge(report)
    return out
