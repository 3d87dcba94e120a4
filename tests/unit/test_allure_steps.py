"""Allure steps after the fact (opsproof.report.allure_steps): a drill's phases and a chaos run's timeline stages,
each with its own times and status, from the evidence documents; and written into allure-pytest's results of a
real in-process run (pytester), where ``--alluredir`` is given — and nothing where it is not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsproof.report.allure_steps import FAILED, PASSED, SKIPPED, Step, chaos_steps, drill_step, phase_step

pytest_plugins = ("pytester",)

T0 = 1796409691.0


def phase(name: str, start: float, end: float, verdict: str = "pass", **extra: Any) -> dict[str, Any]:
    import datetime as dt

    iso = [dt.datetime.fromtimestamp(t, dt.UTC).isoformat() for t in (start, end)]
    return {"phase": name, "start": iso[0], "end": iso[1], "duration_s": end - start, "verdict": verdict,
            "observed": f"{name} observed", "expected": f"{name} expected", **extra}


def test_a_phase_is_a_step_with_its_times_and_verdict() -> None:
    step = phase_step(phase("restore", T0, T0 + 2.5))
    assert (step.name, step.status, step.message) == ("drill.restore", PASSED, None)
    assert (step.start, step.stop) == pytest.approx((T0, T0 + 2.5))
    failed = phase_step(phase("verify", T0, T0 + 1, "fail"))
    assert (failed.status, failed.message) == (FAILED, "verify observed, expected verify expected")
    assert phase_step(phase("rto", T0, T0, "no-verdict")).status == SKIPPED


def test_the_drill_is_one_step_holding_its_phases_in_order() -> None:
    doc = {"drill": "backups[app]", "verdict": "FAIL", "rto": {"measured_s": 3.2, "target_s": 300},
           "rpo": {"measured_s": 10.0, "target_s": 86400},
           "phases": [phase("found", T0, T0 + 1), phase("restore", T0 + 1, T0 + 4, "fail"),
                      phase("teardown", T0 + 4, T0 + 5)]}
    step = drill_step(doc)
    assert (step.name, step.status) == ("DR drill backups[app] — FAIL", FAILED)
    assert [c.name for c in step.children] == ["drill.found", "drill.restore", "drill.teardown"]
    assert (step.start, step.stop) == pytest.approx((T0, T0 + 5))
    assert step.message == "drill.restore: restore observed, expected restore expected"
    assert step.parameters == {"RTO": "3.2 s (target 300 s)", "RPO": "10 s (target 86400 s)"}


def chaos_doc(truth: float = 2.8, recovery: float = 4.4, fired: bool = True) -> dict[str, Any]:
    marks = [{"event": "fault_injected", "at": T0, "fault": "kill redis (SIGKILL)"},
             {"event": "pending", "at": T0 + 0.8, "alert": "RedisDown"},
             {"event": "firing", "at": T0 + truth, "alert": "RedisDown"},
             {"event": "delivered", "at": T0 + truth + 1, "alert": "RedisDown"},
             {"event": "remediated", "at": T0 + truth + 1.3, "action": "restart redis"},
             {"event": "recovered", "at": T0 + recovery, "target": "http[app]"},
             {"event": "resolved", "at": T0 + recovery + 0.7, "alert": "RedisDown"}]
    if not fired:
        marks = [m for m in marks if m["event"] not in ("firing", "delivered", "resolved")]
    return {"experiment": "Redis down", "status": "completed", "ok": truth <= 5 and recovery <= 30 and fired,
            "failures": [] if fired else ["alert_fires: RedisDown did not fire"], "timeline": list(reversed(marks)),
            "detections": [{"alert": "RedisDown", "truth_s": truth if fired else None,
                            "detected_s": truth + 0.1 if fired else None, "budget_s": 5.0}],
            "recovery": {"target": "http[app]", "recovery_s": recovery, "target_s": 30.0}}


def test_each_stage_is_a_step_until_the_next_judged_against_the_budget() -> None:
    steps = chaos_steps(chaos_doc())
    assert [s.name for s in steps] == ["fault_injected kill redis (SIGKILL)", "pending RedisDown", "firing RedisDown",
                                       "delivered RedisDown", "remediated restart redis", "recovered http[app]",
                                       "resolved RedisDown", "verdict: PASS (completed)"]
    assert all(s.status == PASSED for s in steps)
    assert (steps[0].start, steps[0].stop) == pytest.approx((T0, T0 + 0.8))  # a stage lasts until the next one
    assert steps[2].parameters == {"after the fault": "+2.80 s", "budget": "5 s", "measured": "2.80 s"}
    assert steps[5].parameters["target"] == "30 s"


def test_a_stage_over_its_budget_fails_and_says_by_how_much() -> None:
    steps = {s.name: s for s in chaos_steps(chaos_doc(truth=7.5, recovery=40))}
    assert steps["firing RedisDown"].status == FAILED
    assert steps["firing RedisDown"].message == "RedisDown firing after 7.50 s, over its budget of 5 s"
    assert steps["recovered http[app]"].message == "http[app] recovered after 40.00 s, over its target of 30 s"
    assert steps["verdict: FAIL (completed)"].status == FAILED


def test_an_alert_that_never_fired_is_a_failed_step() -> None:
    steps = chaos_steps(chaos_doc(fired=False))
    assert [(s.name, s.status) for s in steps[-2:]] == [("firing RedisDown", FAILED),
                                                        ("verdict: FAIL (completed)", FAILED)]
    assert steps[-2].message == "RedisDown never fired (budget 5 s)"
    assert steps[-1].message == "alert_fires: RedisDown did not fire"


TEST_FILE = """
from opsproof.report import allure_steps

def test_drill(request):
    steps = [allure_steps.Step("whole", {t0}, {t0} + 3, "failed", "restore failed",
                               {{"RTO": "3 s"}}, (allure_steps.Step("one", {t0}, {t0} + 1, "passed"),
                                                  allure_steps.Step("two", {t0} + 1, {t0} + 3, "failed", "why")))]
    assert allure_steps.write(steps) == (3 if allure_steps.active(request.config) else 0)
    allure_steps.attach_json({{"verdict": "PASS"}}, "evidence")
"""


PLAIN = ("-p", "no:cacheprovider", "-p", "no:opsproof", "-p", "no:kmock", "-p", "no:locust")


@pytest.fixture
def written(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_steps=TEST_FILE.format(t0=T0))
    return pytester


def test_steps_land_in_the_running_tests_result(written: pytest.Pytester) -> None:
    run = written.runpytest_inprocess("--alluredir", "allure", *PLAIN)
    run.assert_outcomes(passed=1)
    [result] = [json.loads(p.read_text()) for p in Path(written.path / "allure").glob("*-result.json")]
    [whole] = result["steps"]
    assert (whole["name"], whole["status"], whole["statusDetails"]["message"]) == ("whole", "failed",
                                                                                  "restore failed")
    assert (whole["start"], whole["stop"]) == (round(T0 * 1000), round((T0 + 3) * 1000))
    assert [(s["name"], s["status"], s["start"]) for s in whole["steps"]] == [
        ("one", "passed", round(T0 * 1000)), ("two", "failed", round((T0 + 1) * 1000))]
    assert whole["parameters"] == [{"name": "RTO", "value": "3 s"}]
    [attachment] = result["attachments"]
    assert json.loads((written.path / "allure" / attachment["source"]).read_text()) == {"verdict": "PASS"}


def test_without_alluredir_nothing_is_written(written: pytest.Pytester) -> None:
    written.makepyfile(test_steps=TEST_FILE.format(t0=T0).replace(
        '    allure_steps.attach_json({"verdict": "PASS"}, "evidence")\n', ""))
    run = written.runpytest_inprocess(*PLAIN)
    run.assert_outcomes(passed=1)
    assert not (written.path / "allure").exists()


def test_a_step_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Step("x", 0, 0, PASSED).name = "y"  # type: ignore[misc]
