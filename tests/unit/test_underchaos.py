"""What users felt during a fault, from a load run's per-second series and the experiment's timeline."""

from __future__ import annotations

from typing import Any

import pytest

from opsproof.load.underchaos import users_felt


def row(at: int, requests: int, failures: int = 0, p95: float | None = 12.0) -> dict[str, Any]:
    return {"at": at, "requests": requests, "failures": failures, "p95_ms": p95 if requests else None}


SERIES = [row(99, 50), row(100, 50), row(101, 40, 40), row(102, 0), row(103, 45, 20, 900.0), row(104, 50),
          row(105, 50), row(106, 50)]
TIMELINE = [{"event": "fault_injected", "at": 100.6}, {"event": "firing", "at": 102.0},
            {"event": "recovered", "at": 104.2}, {"event": "resolved", "at": 106.0}]


def test_the_window_runs_from_the_fault_s_second_to_the_recovery_s() -> None:
    felt = users_felt(TIMELINE, SERIES, ["error_rate < 1%"], {"requests": 335, "failures": 60})
    assert [r["at"] for r in felt["seconds"]] == [100, 101, 102, 103, 104]
    assert (felt["requests"], felt["failures"]) == (185, 60)
    assert felt["error_ratio"] == pytest.approx(60 / 185)
    assert felt["failing_s"] == 3  # 101 to 103, the silent second between them included
    assert felt["p95_max_ms"] == 900.0
    assert felt["window_s"] == 5
    assert felt["until"] == "recovered"
    assert felt["budget"] == {"threshold": "error_rate < 1%", "run_requests": 335, "run_failures": 60,
                              "allowed": 3.4, "burned_percent": pytest.approx(60 / 3.35 * 100, abs=0.1)}


def test_without_a_recovery_the_window_ends_with_the_experiment() -> None:
    timeline = [m for m in TIMELINE if m["event"] != "recovered"]
    felt = users_felt(timeline, SERIES, [], {"requests": 335, "failures": 60})
    assert felt["until"] == "experiment end"
    assert felt["recovered_at"] is None
    assert [r["at"] for r in felt["seconds"]][-1] == 106
    assert felt["budget"] is None  # no error_rate threshold: no budget to burn


def test_a_fault_nobody_felt_is_zero_failures_not_a_missing_figure() -> None:
    quiet = [row(at, 50) for at in range(99, 107)]
    felt = users_felt(TIMELINE, quiet, ["error_rate < 1%"], {"requests": 400, "failures": 0})
    assert (felt["failures"], felt["failing_s"], felt["error_ratio"]) == (0, 0, 0.0)
    assert felt["budget"]["burned_percent"] == 0.0


def test_a_zero_error_budget_with_failures_is_all_of_it() -> None:
    felt = users_felt(TIMELINE, SERIES, ["error_rate <= 0%"], {"requests": 335, "failures": 60})
    assert felt["budget"]["burned_percent"] == "all"
