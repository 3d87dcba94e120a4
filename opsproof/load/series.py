"""Per-second figures of a load run, for the readiness report to chart: requests, failures, late sends (open model)
and latency percentiles of each wall-clock second, over every request of the scenario.

Each second keeps a small HdrHistogram of its own (two significant digits — a percentile within 1 %, 3,072
counters, ≈ 25 kB — where the run's exact histograms keep five): a chart needs the shape, the verdicts use the
exact ones. A second more than :data:`SEAL_AFTER_S` older than the newest is kept packed (HdrHistogram's
compressed encoding, a few hundred bytes), so a long soak costs well under 1 kB a second, not 25 kB; it is
unpacked only if something still arrives for it (a worker's late report) and to chart it. A second is keyed by
the epoch second in which its responses ended, so the seconds of many Locust processes (and machines with
synchronised clocks) merge by key, the same way the exact tallies do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from opsproof.load.histogram import HIGHEST_US, LOWEST_US

DIGITS = 2
SHOWN = (50, 95, 99)
SEAL_AFTER_S = 10  # a worker reports every 3 s: a second this old is complete


def _new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


@dataclass
class Second:
    requests: int = 0
    failures: int = 0
    late: int = 0
    histogram: HdrHistogram | None = field(default_factory=_new)  # None while packed
    packed: bytes = b""

    def live(self) -> HdrHistogram:
        """The histogram, unpacked first if the second was sealed."""
        if self.histogram is None:
            self.histogram = HdrHistogram.decode(self.packed) if self.packed else _new()
            self.packed = b""
        return self.histogram

    def seal(self) -> None:
        if self.histogram is not None:
            self.packed = self.histogram.encode() if self.requests else b""
            self.histogram = None

    def encode(self) -> dict[str, Any]:
        packed = self.packed if self.histogram is None else self.histogram.encode() if self.requests else b""
        return {"requests": self.requests, "failures": self.failures, "late": self.late,
                "histogram": packed.decode("ascii")}

    def add(self, data: Mapping[str, Any]) -> None:
        self.requests += int(data["requests"])
        self.failures += int(data["failures"])
        self.late += int(data["late"])
        if data["histogram"]:
            self.live().add(HdrHistogram.decode(data["histogram"].encode("ascii")))


@dataclass
class Series:
    """Seconds of one process since its last report (a worker), or merged (the master, a local run)."""

    seconds: dict[int, Second] = field(default_factory=dict)
    _newest: int = field(default=0, repr=False)
    _open: set[int] = field(default_factory=set, repr=False)  # seconds not sealed yet

    def _at(self, epoch: float) -> Second:
        key = int(epoch)
        second = self.seconds.get(key)
        if second is None:
            second = self.seconds[key] = Second()
            self._open.add(key)
            if key > self._newest:  # once per new second: pack those that are complete
                self._newest = key
                for old in [k for k in self._open if k < key - SEAL_AFTER_S]:
                    self.seconds[old].seal()
                    self._open.discard(old)
        elif second.histogram is None:
            second.live()
            self._open.add(key)
        return second

    def record(self, ended: float, us: int, failed: bool) -> None:
        second = self.seconds.get(int(ended))
        histogram = second.histogram if second is not None else None
        if second is None or histogram is None:
            second = self._at(ended)
            histogram = second.live()
        second.requests += 1
        if failed:
            second.failures += 1
        histogram.record_value(us)

    def clear(self) -> None:
        """Forget every second (a worker, once it has reported them)."""
        self.seconds.clear()
        self._open.clear()

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
                row[f"p{p}_ms"] = (round(s.live().get_value_at_percentile(p) / 1000, 2) if s.requests else None)
            rows.append(row)
        return rows


def merged(reports: Iterable[Mapping[str, Mapping[str, Any]]]) -> Series:
    out = Series()
    for report in reports:
        out.merge(report)
    return out
