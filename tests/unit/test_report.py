"""The readiness report: typed records read with file:line errors, evidence collected from every suite's files (real
ones, written by a sandbox run: tests/unit/data/report), judged go/no-go with its reasons, rendered. It reads files
only — this tier forbids sockets, so any contact with a target would fail these tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from opsproof.records import Recorder
from opsproof.report import RecordError, Verdict, parse, read_jsonl
from opsproof.report.cli import since_time
from opsproof.report.collect import collect
from opsproof.report.judge import decide
from opsproof.report.policy import PolicyError, default_policy, loads_policy
from opsproof.report.render import Report, render_all
from opsproof.result import Severity

DATA = Path(__file__).parent / "data" / "report"


def evidence_root(tmp_path: Path) -> Path:
    """An output root as the suites leave it: a run's records, a drill, a chaos experiment, a load run."""
    root = tmp_path / "reports"
    for folder, name in (("runs", "smoke.jsonl"), ("drills", "drill.json"), ("chaos", "chaos.json"),
                         ("load", "load.json")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / name, root / folder / name)
    return root


def a_record(**changes: Any) -> dict[str, Any]:
    record = json.loads((DATA / "smoke.jsonl").read_text().splitlines()[0])
    record.update(changes)
    return record


def write_run(root: Path, name: str, *records: dict[str, Any]) -> None:
    (root / "runs").mkdir(parents=True, exist_ok=True)
    (root / "runs" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


# --- records -----------------------------------------------------------------------------------------
def test_a_record_of_a_real_run_reads_as_its_typed_form() -> None:
    records = list(read_jsonl(DATA / "smoke.jsonl"))
    assert len(records) == 6
    first = records[0]
    assert (first.check, first.target, first.suite, first.verdict) == ("http.health", "http[app]", "smoke",
                                                                       Verdict.PASS)
    assert first.severity is Severity.CRITICAL
    assert first.environment == "sandbox"
    assert first.run
    assert first.at


@pytest.mark.parametrize(("change", "problem"), [
    ({"verdict": "maybe"}, "key 'verdict': 'maybe' is not one of pass, fail, no-data"),
    ({"severity": "urgent"}, "key 'severity': 'urgent' is not one of critical, high, medium, low"),
    ({"target": 7}, "key 'target': int, not text"),
    ({"schema": 2}, "schema 2 is not one this opsproof reads (it reads schema 1)"),
    ({"evidence": [1]}, "key 'evidence': list, not an object"),
])
def test_a_record_it_cannot_use_is_an_error_naming_file_line_and_key(tmp_path: Path, change: dict[str, Any],
                                                                      problem: str) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(a_record()) + "\n" + json.dumps(a_record(**change)) + "\n")
    with pytest.raises(RecordError, match=f"^{path}:2: ") as caught:
        list(read_jsonl(path))
    assert problem in str(caught.value)


def test_a_missing_key_and_a_cut_off_last_line_are_named(tmp_path: Path) -> None:
    record = a_record()
    del record["check"], record["verdict"]  # a check's record without its verdict
    with pytest.raises(RecordError, match="x:1: key 'verdict': missing"):
        parse({**record, "check": "http.health"}, "x:1")
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(a_record()) + "\n" + json.dumps(a_record())[:40])
    with pytest.raises(RecordError, match=f"{path}:2: the line is cut off"):
        list(read_jsonl(path))


def test_each_run_keeps_its_records_under_runs(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    for run in ("host-1", "host-2"):
        recorder = Recorder(results, run, lambda: "staging")
        recorder.write(parse(a_record(environment=None, run=None), "x:1"), str)
        recorder.close()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["host-1.jsonl", "host-2.jsonl"]
    first = json.loads((tmp_path / "runs" / "host-1.jsonl").read_text())
    assert (first["schema"], first["run"], first["environment"], first["suite"]) == (1, "host-1", "staging", "smoke")
    assert json.loads(results.read_text())["run"] == "host-2"


# --- collect and judge -------------------------------------------------------------------------------
def test_every_suites_evidence_is_collected_and_a_healthy_change_is_go(tmp_path: Path) -> None:
    root = evidence_root(tmp_path)
    shutil.copy(DATA / "smoke.jsonl", root / "results.jsonl")  # the same run under its second name: once only
    evidence = collect([root])
    decision = decide(evidence.records, default_policy(require=("gates", "dr-drill", "chaos", "load")))
    assert decision.go, decision.reasons
    assert {name: len(area.records) for name, area in decision.areas.items()} == {
        "gates": 6, "post-maintenance": 0, "dr-drill": 8, "chaos": 2, "load": 4}
    assert decision.missing == ["post-maintenance"]
    assert sorted(s.kind for s in evidence.sources) == ["chaos", "drill", "load", "run"]
    rto = next(r for r in decision.areas["dr-drill"].records if r.check == "drill.rto")
    assert rto.evidence["target_s"] == 300
    assert rto.verdict is Verdict.PASS


def test_a_failure_makes_the_change_no_go_and_a_later_pass_fixes_it(tmp_path: Path) -> None:
    root = evidence_root(tmp_path)
    down = a_record(run="r2", at=2e9, verdict="fail", ok=False, outcome="failed",
                    observed="unreachable (ConnectError: connection refused)")
    write_run(root, "r2", down)
    decision = decide(collect([root]).records)
    assert not decision.go
    assert decision.reasons == ["gates: http.health fail (critical) — http[app]: unreachable (ConnectError: "
                                "connection refused), expected HTTP 200 with status='ok'"]
    write_run(root, "r3", a_record(run="r3", at=2e9 + 60))
    assert decide(collect([root]).records).go


def test_below_the_gate_and_waived_failures_are_listed_not_counted(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    waiver = {"owner": "sre", "ticket": "OPS-1", "expires": "2027-01-01", "reason": "known", "check": "http.*"}
    write_run(root, "r", a_record(check="http.latency", severity="low", verdict="fail", at=2e9),
              a_record(check="http.ready", verdict="waived", waived=waiver, at=2e9))
    decision = decide(collect([root]).records)
    assert decision.go
    assert [r.check for r in decision.below] == ["http.latency"]
    assert [r.check for r in decision.waived] == ["http.ready"]
    assert "owner sre, ticket OPS-1, until 2027-01-01" in render_all(Report(decision, collect([root])), str)["md"]


def test_no_evidence_and_a_missing_required_area_are_no_go(tmp_path: Path) -> None:
    assert decide([]).reasons == ["no evidence: no record of any check was found"]
    root = tmp_path / "reports"
    write_run(root, "r", a_record())
    assert decide(collect([root]).records, default_policy(require=("gates", "dr-drill"))).reasons == [
        "dr-drill: required, and no evidence of it was found"]


def test_another_environment_and_older_evidence_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    write_run(root, "old", a_record(run="old", at=1e9, verdict="fail"))
    write_run(root, "prod", a_record(run="prod", at=2e9, environment="production", verdict="fail"))
    write_run(root, "new", a_record(run="new", at=2e9))
    evidence = collect([root], environment="sandbox", since=1.5e9)
    assert [r.run for r in evidence.records] == ["new"]
    assert len(evidence.skipped) == 2


def test_since_takes_a_time_or_an_age() -> None:
    assert since_time("2026-12-01T00:00") == since_time("2026-12-01T00:00+00:00")
    import datetime as dt

    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    assert since_time("36h", now) == now.timestamp() - 36 * 3600
    with pytest.raises(RecordError, match="--since 'yesterday'"):
        since_time("yesterday")


# --- render ------------------------------------------------------------------------------------------
def test_the_html_is_self_contained_and_escapes_what_targets_said(tmp_path: Path) -> None:
    root = evidence_root(tmp_path)
    write_run(root, "r2", a_record(run="r2", at=2e9, verdict="fail", observed="<script>alert(1)</script>"))
    evidence = collect([root])
    rendered = render_all(Report(decide(evidence.records), evidence, "CHG-42", "sandbox"), str)
    page = rendered["html"]
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "src=" not in page
    assert "http://" not in page.split("<section id=evidence>")[0].split("</style>")[0]
    assert page.index("NO-GO") < page.index("<section")  # the verdict first
    change = json.loads(rendered["json"])
    assert change["verdict"] == "no-go"
    assert change["change"] == "CHG-42"
    assert set(change) >= {"test_plan", "test_results", "backout_plan_tested", "risk_and_impact", "evidence_files"}
    assert all(len(f["sha256"]) == 64 for f in change["evidence_files"])


def test_secrets_are_masked_in_every_format(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    write_run(root, "r", a_record(verdict="fail", observed="login failed for s3cr3t-canary"))
    evidence = collect([root])
    for text in render_all(Report(decide(evidence.records), evidence),
                           lambda t: t.replace("s3cr3t-canary", "***")).values():
        assert "s3cr3t-canary" not in text
        assert "***" in text


# --- the command -------------------------------------------------------------------------------------
def test_the_exit_status_gates_a_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from opsproof.cli import main

    root = evidence_root(tmp_path)
    assert main(["report", "--out", str(root), "--change", "CHG-7"]) == 0
    assert (root / "readiness" / "readiness.html").is_file()
    assert (root / "readiness" / "readiness.md").is_file()
    write_run(root, "r2", a_record(run="r2", at=2e9, verdict="fail"))
    assert main(["report", "--out", str(root)]) == 1
    assert "readiness NO-GO" in capsys.readouterr().out
    (root / "runs" / "r3.jsonl").write_text("{not json\n")
    assert main(["report", "--out", str(root)]) == 2
    assert f"{root / 'runs' / 'r3.jsonl'}:1: not JSON" in capsys.readouterr().err
    assert main(["report", "--out", str(root), "--require", "gates,drills"]) == 2
    assert "--require drills: not an area" in capsys.readouterr().err
    (root / "runs" / "r3.jsonl").unlink()
    policy = tmp_path / "policy.yaml"
    policy.write_text("fail_on: critical\ngates: {max_age: 100000d}\n")
    assert main(["report", "--out", str(root), "--policy", str(policy)]) == 1  # r2's failure is critical
    policy.write_text("gates:\n  max_age: 1d\n  maxage: 2d\n")
    assert main(["report", "--out", str(root), "--policy", str(policy)]) == 2
    assert f"{policy}:3: gates.maxage: unknown key 'maxage'. Fix: did you mean 'max_age'" in capsys.readouterr().err


# --- the policy --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "problem"), [
    ("fail_on: urgent\n", "<policy>:1: fail_on: Input should be 'critical', 'high', 'medium' or 'low'"),
    ("gates: {}\ndr_drill:\n  max_age: soon\n", "<policy>:3: dr_drill.max_age: 'soon' is not a duration"),
    ("gates: {}\nchaos: {alert: [HighLatency]}\n", "<policy>:2: chaos.alert: unknown key 'alert'. Fix: did you "
     "mean 'alerts'"),
    ("gate: {}\n", "<policy>:1: gate: unknown key 'gate'. Fix: did you mean 'gates'"),
    ("- gates\n", "<policy>:1: (top level): expected a mapping, got a list"),
    ("gates: {}\ngates: {}\n", "<policy>:2: gates: duplicate key 'gates', also at line 1"),
])
def test_a_policy_with_a_typo_is_an_error_naming_line_key_and_fix(text: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        loads_policy(text)
    assert problem in str(caught.value)


DAY = 86400.0


def test_stale_evidence_and_an_unproven_alert_are_no_go(tmp_path: Path) -> None:
    records = collect([evidence_root(tmp_path)]).records
    chaos_at = max(r.at or 0 for r in records if r.suite == "chaos")
    policy = loads_policy("gates: {}\ndr_drill: {max_age: 35d}\nchaos: {max_age: 90d, alerts: [HighLatency, "
                          "PostgresDown]}\n")
    assert decide(records, policy, now=chaos_at + DAY).reasons == [
        "chaos: alert PostgresDown not proven by an experiment within 90 d (never proven)"]
    late = decide(records, policy, now=chaos_at + 100 * DAY).reasons
    assert late[0].startswith("dr-drill: the latest evidence is 100 d old (policy: within 35 d)")
    assert "chaos: the latest evidence is 100 d old (policy: within 90 d)" in late
    assert "chaos: alert HighLatency not proven by an experiment within 90 d (last pass: alert[HighLatency]: " \
           "fired after" in " | ".join(late)


def test_a_waiver_that_expired_since_the_run_counts_again(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    waiver = {"owner": "sre", "ticket": "OPS-1", "expires": "2026-12-31", "reason": "known", "check": "http.*"}
    write_run(root, "r", a_record(check="http.ready", verdict="waived", waived=waiver, at=2e9))
    records = collect([root]).records
    assert decide(records, now=1_798_675_200.0).go  # 2026-12-31: the last day it holds
    reasons = decide(records, now=1_798_761_600.0).reasons  # 2027-01-01
    assert reasons == ["gates: http.ready waived until 2026-12-31, which has passed (critical) — http[app]: GET "
                       "/health → HTTP 200 with status='ok', expected HTTP 200 with status='ok'"]


def test_each_experiment_gets_its_timeline_against_its_budget(tmp_path: Path) -> None:
    evidence = collect([evidence_root(tmp_path)])
    page = render_all(Report(decide(evidence.records), evidence), str)["html"]
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "budget 6.5 s" in svg
    for stage in ("fault +0.00 s (pgproxy latency 520 ms)", "firing +3.63 s (HighLatency)", "recovered +4.79 s",
                  "resolved +6.63 s"):
        assert stage in svg
    loads = {r.target for r in decide(evidence.records).areas["load"].records}
    assert loads == {"load[browse]", "load[browse/item]"}


def test_the_trend_names_new_failures_fixes_and_measured_changes(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from opsproof.cli import main

    root = evidence_root(tmp_path)
    assert main(["report", "--out", str(root)]) == 0
    previous = tmp_path / "previous.json"
    shutil.move(root / "readiness" / "readiness.json", previous)
    drill = json.loads((root / "drills" / "drill.json").read_text())
    rto = next(p for p in drill["phases"] if p["phase"] == "rto")
    rto["evidence"]["measured_s"] = 41.5  # the restore took longer this time
    (root / "drills" / "drill.json").write_text(json.dumps(drill))
    write_run(root, "r2", a_record(run="r2", at=2e9, verdict="fail"))
    assert main(["report", "--out", str(root), "--previous", str(previous)]) == 1
    change = json.loads((root / "readiness" / "readiness.json").read_text())["trend"]
    assert change["new_failures"] == ["http.health@http[app]"]
    assert {"check": "drill.rto", "target": "backups[app]", "before": 3.459, "after": 41.5, "change": "up"} in \
        change["values"]
    assert "drill.rto@backups[app]: 3.459 → 41.5 (up)" in (root / "readiness" / "readiness.md").read_text()
    (tmp_path / "bad.json").write_text("[]")
    assert main(["report", "--out", str(root), "--previous", str(tmp_path / "bad.json")]) == 2
    assert "not the readiness.json of an opsproof report" in capsys.readouterr().err


def test_a_load_run_reads_as_its_thresholds_and_its_latency_chart(tmp_path: Path) -> None:
    evidence = collect([evidence_root(tmp_path)])
    p95 = next(r for r in evidence.records if r.check == "load.p(95)")
    assert p95.explain() == "load[browse]: p(95) 20.2 ms over 658 requests (expected < 300 ms)"
    page = render_all(Report(decide(evidence.records), evidence), str)["html"]
    chart = page[page.index("latency by percentile</figcaption>"):]
    assert "<polyline" in chart
    assert "item: p95 19.8 ms, p99 29.1 ms" in chart  # from the run's exact histograms


def test_drills_and_experiments_of_several_clusters_each_count(tmp_path: Path) -> None:
    """A drill's and an experiment's document name their environment: two clusters' `backups[app]` are two drills,
    and a pytest run's records of a drill its document covers are not counted twice."""
    root = tmp_path / "reports"
    for cluster in ("eu", "us"):
        for folder, name in (("drills", "drill.json"), ("chaos", "chaos.json")):
            (root / folder).mkdir(parents=True, exist_ok=True)
            doc = {**json.loads((DATA / name).read_text()), "environment": f"prod-{cluster}"}
            (root / folder / f"{cluster}-{name}").write_text(json.dumps(doc))
    drill = json.loads((DATA / "drill.json").read_text())
    write_run(root, "eu-pytest", a_record(test="checks/dr_drill/test_drill.py::test_04_restore[backups[app]]",
                                          check="drill.restore", target=drill["drill"], environment="prod-eu",
                                          suite="dr-drill", verdict="fail"))
    decision = decide(collect([root]).records, default_policy(require=("dr-drill", "chaos")))
    assert decision.go, decision.reasons  # eu's document stands for its pytest records
    by_env = {env: sum(1 for r in decision.areas["dr-drill"].records if r.environment == env)
              for env in ("prod-eu", "prod-us")}
    assert by_env == {"prod-eu": 8, "prod-us": 8}
    assert {r.environment for r in decision.areas["chaos"].records} == {"prod-eu", "prod-us"}
    assert len(decision.areas["chaos"].records) == 4


def test_the_trend_is_per_environment() -> None:
    from opsproof.report.trend import lines, trend

    def result(env: str | None, verdict: str, value: float | None = None) -> dict[str, Any]:
        return {"check": "http.health", "target": "http[app]", "verdict": verdict, "value": value,
                "environment": env}

    previous = {"verdict": "go", "results": [result("prod-eu", "pass", 1.0), result("prod-us", "pass")]}
    current = {"results": [result("prod-eu", "pass", 2.0), result("prod-us", "fail")]}
    change = trend(current, previous)
    assert change["new_failures"] == ["http.health@http[app] (prod-us)"]
    assert "http.health@http[app] (prod-eu): 1 → 2 (up)" in lines(change)
    older = {"results": [{k: v for k, v in r.items() if k != "environment"} for r in previous["results"][:1]]}
    assert trend({"results": [result("prod-eu", "fail")]}, older)["new_failures"] == ["http.health@http[app]"]
