"""The records' pipeline (opsproof.report.pipeline): each processor on its own — collect, waive, judge, gate, render —
then the chain as the plugin runs it, and the results file it writes: byte for byte the lines the plugin wrote
before the pipeline existed (tests/unit/data/report/governance.jsonl and smoke.jsonl were written by the plugin at
1ea5db0: a broken sandbox under waivers, a test whose setup errored, a no-data check, a spent time budget)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from opsproof import records
from opsproof.governance import Blocked, Gate, Judgement, Waiver, Waivers
from opsproof.records import Recorder
from opsproof.report import pipeline
from opsproof.report.pipeline import Gating, Pipeline, Render, Seen, Waive, collect, judge
from opsproof.report.records import RecordError, parse
from opsproof.result import Result, Severity, Verdict

DATA = Path(__file__).parent / "data" / "report"
NODE = "smoke/test_redis.py::test_memory[redis[cache]]"
FAILED = Result("redis[cache]", "redis.memory", False, "used_memory 93% of maxmemory", "≤ 90%",
                {"used": 93, "when": dt.date(2026, 12, 4)}, 0.25)
TODAY = dt.date(2026, 12, 4)


def waiver(check: str = "redis.memory@redis[cache]", expires: str = "2026-12-31") -> Waiver:
    return Waiver(check=check, reason="cache warming", owner="alice", ticket="OPS-1",
                  expires=dt.date.fromisoformat(expires))


def seen_as(judgement: Judgement | None, outcome: str = "failed", when: str = "call") -> Seen:
    return Seen(NODE, when, outcome, judgement)


# --- each processor -------------------------------------------------------------------------------------------


def test_collect_makes_the_record_of_the_result_with_the_probes_own_verdict() -> None:
    record = collect(seen_as(Judgement(FAILED, Verdict.BLOCKED)), Severity.HIGH)
    assert (record.key, record.suite, record.severity, record.verdict, record.ok, record.test) == (
        "redis.memory@redis[cache]", "smoke", Severity.HIGH, Verdict.FAIL, False, NODE)
    assert record.evidence == {"used": 93, "when": "2026-12-04"}  # as its JSON has it, whichever process reads it


def test_collect_without_a_result_makes_the_record_of_a_test_that_errored() -> None:
    record = collect(seen_as(None, when="setup"), Severity.CRITICAL)
    assert (record.has_result, record.check, record.target, record.verdict) == (False, "setup", NODE, Verdict.FAIL)
    assert record.carried() == {"severity": "critical"}


def test_a_check_skipped_before_it_had_a_result_is_no_data_not_a_failure() -> None:
    """``@pytest.mark.skip`` on a check: the gate does not count it, so the readiness report must not either."""
    line = {"schema": 1, "test": "smoke/test_x.py::test_y[http[app]]", "outcome": "skipped", "severity": "critical"}
    assert parse(line, "x:1").verdict is Verdict.NO_DATA
    assert parse({**line, "outcome": "failed"}, "x:1").verdict is Verdict.FAIL
    assert collect(seen_as(None, "skipped", "setup"), Severity.HIGH).verdict is Verdict.NO_DATA


def test_waive_gives_a_failed_check_its_waiver_and_an_expired_one_its_message() -> None:
    waive = Waive(Waivers((waiver(),), today=TODAY))
    failed = seen_as(Judgement(FAILED, Verdict.FAIL))
    held = waive(collect(failed, Severity.HIGH), failed)
    assert (held.waiver, held.waiver_expired, held.verdict) == (waiver().to_record(), None, Verdict.FAIL)
    expired = Waive(Waivers((waiver(expires="2026-12-03"),), today=TODAY))(collect(failed, Severity.HIGH), failed)
    assert (expired.waiver, expired.waiver_expired) == (None, waiver(expires="2026-12-03").to_record())
    assert expired.message == "waiver for redis.memory@redis[cache] (alice, OPS-1) expired on 2026-12-03"


@pytest.mark.parametrize(("judged", "outcome", "when"), [
    (Verdict.TIMED_OUT, "failed", "call"),  # a waiver never hides a spent time budget
    (Verdict.FAIL, "passed", "call"),
    (Verdict.BLOCKED, "skipped", "setup"),
    (Verdict.FAIL, "failed", "setup"),
])
def test_waive_leaves_every_other_check_alone(judged: Verdict, outcome: str, when: str) -> None:
    seen = seen_as(Judgement(FAILED, judged), outcome, when)
    record = collect(seen, Severity.HIGH)
    assert Waive(Waivers((waiver(),), today=TODAY))(record, seen) is record
    assert Waive(Waivers((waiver("other@x"),), today=TODAY))(record, seen_as(Judgement(FAILED, Verdict.FAIL))) == record


def test_judge_makes_the_verdict_waived_blocked_flaky_or_the_judgements() -> None:
    blocked = Blocked("redis[cache]", "redis.ping@redis[cache]", "unreachable")
    seen = seen_as(Judgement(FAILED, Verdict.BLOCKED, blocked), "skipped", "setup")
    record = judge(collect(seen, Severity.HIGH), seen)
    assert (record.verdict, record.blocked_by, record.root_cause) == (
        Verdict.BLOCKED, "redis[cache]", "redis.ping@redis[cache]")
    passed = replace(FAILED, ok=True, attempts=3)
    flaky = seen_as(Judgement(passed, Verdict.FLAKY), "passed")
    assert (judge(collect(flaky, Severity.LOW), flaky).verdict, judge(collect(flaky, Severity.LOW), flaky).flaky) == (
        Verdict.FLAKY, True)
    failed = seen_as(Judgement(FAILED, Verdict.FAIL))
    waived = judge(replace(collect(failed, Severity.HIGH), waiver=waiver().to_record()), failed)
    assert (waived.verdict, pipeline.xfail_reason(waived)) == (
        Verdict.WAIVED, "waived: cache warming (alice, OPS-1, until 2026-12-31)")
    assert pipeline.xfail_reason(judge(collect(failed, Severity.HIGH), failed)) is None
    errored = seen_as(None, when="setup")
    assert judge(collect(errored, Severity.HIGH), errored) == collect(errored, Severity.HIGH)


def test_gating_counts_every_report_for_the_exit_status_and_the_summary() -> None:
    gate = Gate(Severity.HIGH)
    gating = Gating(gate)
    failed = seen_as(Judgement(FAILED, Verdict.FAIL))
    below = replace(collect(failed, Severity.MEDIUM), outcome="failed")
    assert gating(below, failed) is below
    assert gate.exit_status(1) == 0  # a medium failure under --fail-on=high
    assert gating(None, Seen("tests/test_plain.py::test_x", "call", "failed")) is None  # not a check: it counts
    assert gate.exit_status(1) == 1
    assert [line for line, _ in gate.summary()][1] == (
        "opsproof: 1 failed check(s) below --fail-on=high (medium: redis[cache] redis.memory) do not fail the run")


def test_render_writes_the_record_stamped_as_one_line_the_report_reads_back(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "results.jsonl", "host-1", lambda: "staging")
    failed = seen_as(Judgement(FAILED, Verdict.FAIL))
    record = judge(collect(failed, Severity.HIGH), failed)
    assert Render(recorder, lambda text: text.replace("maxmemory", "***"))(record, failed) is record
    assert Render(recorder, str)(None, failed) is None
    recorder.close()
    line = (tmp_path / "results.jsonl").read_text()
    assert "maxmemory" not in line  # secrets are masked on the way out
    read = parse(json.loads(line), "results.jsonl:1")
    assert read.at is not None
    assert read == replace(record, observed="used_memory 93% of ***", run="host-1", environment="staging", at=read.at)


# --- the chain, as the plugin runs it ---------------------------------------------------------------------------

STAMP = ["schema", "environment", "run", "commit", "suite", "at", "test", "outcome", "severity"]
RESULT = ["target", "check", "ok", "observed", "expected", "evidence", "duration_s", "attempts", "error", "verdict"]


@pytest.mark.parametrize(("judgement", "outcome", "when", "waivers", "keys", "verdict"), [
    (Judgement(FAILED, Verdict.FAIL), "failed", "call", (), RESULT, "fail"),
    (Judgement(FAILED, Verdict.FAIL), "failed", "call", (waiver(),), [*RESULT, "waived"], "waived"),
    (Judgement(FAILED, Verdict.FAIL), "failed", "call", (waiver(expires="2026-01-01"),),
     [*RESULT, "waiver_expired", "message"], "fail"),
    (Judgement(FAILED, Verdict.BLOCKED, Blocked("redis[cache]", "redis.ping@redis[cache]", "down")), "skipped",
     "setup", (waiver(),), [*RESULT, "blocked_by", "root_cause"], "blocked"),
    (Judgement(replace(FAILED, ok=True), Verdict.FLAKY), "passed", "call", (), [*RESULT, "flaky"], "flaky"),
    (Judgement(FAILED, Verdict.TIMED_OUT), "failed", "call", (waiver(),), RESULT, "timed-out"),
    (None, "failed", "setup", (waiver(),), ["message"], None),
])
def test_the_chain_writes_the_keys_the_results_file_always_had(
        tmp_path: Path, judgement: Judgement | None, outcome: str, when: str, waivers: tuple[Waiver, ...],
        keys: list[str], verdict: str | None) -> None:
    recorder = Recorder(tmp_path / "results.jsonl", "host-1")
    chain = Pipeline(Waivers(waivers, today=TODAY), Gate(), recorder, str)
    seen = seen_as(judgement, outcome, when)
    record = chain.at_test(seen, Severity.HIGH)
    report = pytest.TestReport(NODE, ("smoke/test_redis.py", 1, "test_memory"), {}, outcome,
                               "E   RuntimeError: the fixture broke" if outcome == "failed" else None, when,
                               user_properties=[(records.KEY, records.encode(record, str).text)])
    chain.at_report(seen, records.carried(report))
    recorder.close()
    line = json.loads((tmp_path / "results.jsonl").read_text())
    assert list(line) == [*STAMP, *keys]
    assert line.get("verdict") == verdict


def test_the_record_a_worker_sends_is_the_record_this_process_keeps() -> None:
    """Under xdist the controller parses the user property; alone, it keeps the object: the same record."""
    seen = seen_as(Judgement(FAILED, Verdict.FAIL))
    record = Pipeline(Waivers((waiver(expires="2026-01-01"),), today=TODAY), Gate(), Recorder(Path("x"), "r"),
                      str).at_test(seen, Severity.HIGH)
    encoded = records.encode(record, str)
    report = pytest.TestReport(NODE, ("f", 1, "t"), {}, "failed", "E   x", "call",
                               user_properties=[(records.KEY, encoded.text)])
    assert records.carried(report, encoded) == records.carried(report) == record
    errored = pytest.TestReport(NODE, ("f", 1, "t"), {}, "failed", "fixture\nE   RuntimeError: broke", "setup",
                                user_properties=[(records.KEY, records.encode(collect(seen_as(None), Severity.LOW),
                                                                              str).text)])
    found = records.carried(errored)
    assert found is not None
    assert (found.message, found.observed) == ("E   RuntimeError: broke",) * 2


@pytest.mark.parametrize("name", ["governance.jsonl", "smoke.jsonl"])
def test_a_line_the_plugin_wrote_is_read_and_written_back_byte_for_byte(name: str) -> None:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        record = parse(json.loads(line), f"{name}:{number}")
        assert json.dumps(record.line(), default=str, ensure_ascii=False) + "\n" == line
        assert parse(json.loads(json.dumps(record.line())), "again") == record


@pytest.mark.parametrize(("key", "value", "error"), [
    ("ok", "yes", r"^x:1: key 'ok': str, not bool$"),
    ("flaky", 1, r"^x:1: key 'flaky': int, not bool$"),
    ("waiver_expired", "2026-01-01", r"^x:1: key 'waiver_expired': str, not dict$"),
    ("attempts", 1.5, r"^x:1: key 'attempts': float, not a whole number$"),
    ("duration_s", "0.1", r"^x:1: key 'duration_s': str, not a number of seconds$"),
    ("outcome", 0, r"^x:1: key 'outcome': int, not str$"),
])
def test_a_record_with_a_key_of_the_wrong_type_is_refused_naming_it(key: str, value: object, error: str) -> None:
    data = json.loads((DATA / "governance.jsonl").read_text().splitlines()[0])
    with pytest.raises(RecordError, match=error):
        parse({**data, key: value}, "x:1")


def test_every_verdict_is_its_string_in_the_json() -> None:
    assert [v.value for v in Verdict] == ["pass", "fail", "no-data", "flaky", "waived", "blocked", "timed-out"]
    assert json.dumps({"verdict": Verdict.TIMED_OUT}) == '{"verdict": "timed-out"}'
    assert Verdict.of(None) is Verdict.NO_DATA
    assert Result("t", "c", True, "", "").verdict is Verdict.PASS
