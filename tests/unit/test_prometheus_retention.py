"""How prometheus.retention reads a server's flags: Prometheus' durations, the deprecated flag, the default."""

from __future__ import annotations

import pytest

from opsproof.probes.prometheus import _retention, prometheus_duration


@pytest.mark.parametrize(("text", "seconds"), [("15d", 15 * 86400), ("2w", 14 * 86400), ("1y", 365 * 86400),
                                               ("1y2w3d", (365 + 17) * 86400), ("1h30m", 5400), ("0s", 0)])
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert prometheus_duration(text) == seconds


@pytest.mark.parametrize(("flags", "seen"), [
    ({"storage.tsdb.retention.time": "30d", "storage.tsdb.retention.size": "0B"},
     ("30d", "storage.tsdb.retention.time")),
    ({"storage.tsdb.retention.time": "0s", "storage.tsdb.retention": "7d"}, ("7d", "storage.tsdb.retention")),
    ({"storage.tsdb.retention.time": "0s", "storage.tsdb.retention.size": "0B"},
     ("15d", "the default (no retention flag set)")),
    ({"storage.tsdb.retention.time": "0s", "storage.tsdb.retention.size": "50GB"},
     ("0s", "none by time (storage.tsdb.retention.size 50GB alone)")),
], ids=["time", "deprecated", "default", "size-only"])
def test_the_retention_in_effect(flags: dict[str, str], seen: tuple[str, str]) -> None:
    assert _retention(flags) == seen
