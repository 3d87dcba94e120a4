"""The readiness report on a real run: a healthy sandbox's smoke run is go; the same sandbox with Redis stopped is
no-go, and the report names the failing checks — read from the records alone, while Redis is still down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import SandboxHelper, run_suite

from opsproof.cli import main

pytestmark = pytest.mark.integration


def test_a_broken_target_turns_the_report_no_go(healthy: SandboxHelper, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    assert run_suite(healthy.inventory, out).code == 0
    assert main(["report", "--out", str(out), "--inventory", str(healthy.inventory)]) == 0
    healthy.box.stop_service("redis")
    assert run_suite(healthy.inventory, out).code == 1
    assert main(["report", "--out", str(out), "--inventory", str(healthy.inventory), "--change", "CHG-1"]) == 1
    printed = capsys.readouterr().out
    assert "readiness NO-GO" in printed
    assert "gates: redis.ping fail (critical) — redis[cache]: unreachable (ConnectionError" in printed
    change = json.loads((out / "readiness" / "readiness.json").read_text())
    failing = {(f["check"], f["verdict"]) for f in change["risk_and_impact"]["failing"]}
    assert ("redis.ping", "fail") in failing
    assert ("http.health", "fail") in failing  # the app reports itself degraded
    assert len(change["evidence_files"]) == 2  # both runs, each under runs/ (results.jsonl is the second's)
    assert "CHG-1" in (out / "readiness" / "readiness.html").read_text()


def test_runs_of_several_clusters_merge_each_record_keeping_where_it_ran(healthy: SandboxHelper,
                                                                        tmp_path: Path) -> None:
    """Two "clusters" (the sandbox under two environment names, as two Kubernetes Jobs' inventories name theirs),
    one of them run with pytest-xdist, each into its own folder: one report of both, every record once, each with
    its environment and run — and one cluster's failure is not hidden by the other's pass."""
    inventory = yaml.safe_load(healthy.inventory.read_text())
    folders = {}
    for cluster, extra in (("eu", ()), ("us", ("-n", "2"))):
        path = tmp_path / f"{cluster}.yaml"
        path.write_text(yaml.safe_dump({**inventory, "environment": f"sandbox-{cluster}"}))
        folders[cluster] = tmp_path / cluster
        run = run_suite(path, folders[cluster], *extra)
        assert run.code == 0, run.output
    eu, us = ([json.loads(line) for line in (folders[c] / "results.jsonl").read_text().splitlines()]
              for c in ("eu", "us"))
    checks = {(r["check"], r["target"]) for r in eu}
    assert len(eu) == len(checks) == len(us), "xdist: every worker's records once, none lost"
    assert {(r["check"], r["target"]) for r in us} == checks
    readiness = tmp_path / "readiness"
    # the us folder given twice (a re-uploaded artifact): nothing counted twice
    args = [str(folders["eu"]), str(folders["us"]), str(folders["us"]), "--report-dir", str(readiness)]
    assert main(["report", *args]) == 0
    doc = json.loads((readiness / "readiness.json").read_text())
    assert doc["environment"] == "sandbox-eu, sandbox-us"
    where = {(r["environment"], r["run"]) for r in doc["results"]}
    assert {env for env, _ in where} == {"sandbox-eu", "sandbox-us"}
    assert len(where) == 2, where  # one run per cluster, whatever the number of xdist workers
    assert eu[0]["run"] != us[0]["run"]
    assert len(doc["results"]) == 2 * len(checks)
    assert sorted(f["records"] for f in doc["evidence_files"]) == [len(checks)] * 2
    assert "sandbox-us · " in (readiness / "readiness.html").read_text()
    # us fails later on: the report is no-go for us, though eu's same check still passes
    failed = {**us[0], "verdict": "fail", "observed": "unreachable", "at": us[0]["at"] + 60, "run": "us-later"}
    (folders["us"] / "runs" / "us-later.jsonl").write_text(json.dumps(failed) + "\n")
    assert main(["report", *args]) == 1
    doc = json.loads((readiness / "readiness.json").read_text())
    [failing] = doc["risk_and_impact"]["failing"]
    assert (failing["environment"], failing["run"], failing["check"]) == ("sandbox-us", "us-later", us[0]["check"])
