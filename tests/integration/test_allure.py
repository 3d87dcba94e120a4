"""Allure, done fully: each check's test carries severity, suite, check, target and environment labels and its
evidence; the results folder gets environment.properties and categories.json (blocked, waived, timed out, …); and
Allure 3 (npm, no Java) renders it. On a real run with Redis stopped: a failed root cause, blocked checks. A DR drill's
phases and a chaos experiment's timeline stages are steps with their own times and statuses, the evidence attached."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import REPO, SandboxHelper, run_suite

pytestmark = pytest.mark.integration


def results(folder: Path) -> dict[str, dict[str, Any]]:
    found = (json.loads(p.read_text()) for p in folder.glob("*-result.json"))
    return {r["name"]: r for r in found}


def labels(result: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:
        out.setdefault(label["name"], []).append(label["value"])
    return out


def test_allure_results_carry_what_a_reviewer_filters_by(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.box.stop_service("redis")
    allure_dir = tmp_path / "allure"
    run = run_suite(healthy.inventory, tmp_path / "out", "--alluredir", str(allure_dir))
    assert run.code == 1, run.output
    found = results(allure_dir)
    ping = found["test_ping[redis[cache]]"]
    assert ping["status"] == "failed"
    assert labels(ping) | {"severity": ["blocker"]} == labels(ping)  # critical → Allure's blocker
    for name, value in (("parentSuite", "smoke"), ("suite", "redis"), ("subSuite", "redis[cache]"),
                        ("opsproof_check", "redis.ping"), ("environment", "sandbox")):
        assert labels(ping)[name] == [value], (name, labels(ping))
    assert "redis[cache]" in labels(ping)["tag"]
    evidence = [a for a in ping["attachments"] if a["name"] == "evidence redis[cache]"]
    assert json.loads((allure_dir / evidence[0]["source"]).read_text())["check"] == "redis.ping"
    blocked = [r for r in found.values() if r["status"] == "skipped"
               and "blocked by redis[cache]" in r.get("statusDetails", {}).get("message", "")]
    assert blocked, "the other Redis checks are blocked by the root cause"
    properties = (allure_dir / "environment.properties").read_text()
    assert "environment=sandbox\n" in properties
    assert all(p not in properties for p in healthy.box.meta["passwords"].values())
    categories = json.loads((allure_dir / "categories.json").read_text())
    assert {c["name"].split(" (")[0] for c in categories} >= {"Blocked by a failing dependency", "Waived",
                                                               "Timed out", "No data", "Flaky"}
    render(allure_dir, tmp_path / "html")


def test_drill_phases_and_chaos_stages_are_steps(healthy: SandboxHelper, tmp_path: Path) -> None:
    """The cache's drill (a fresh RDB: seconds) and redis-down on the sandbox, into one results folder."""
    allure_dir, out = tmp_path / "allure", tmp_path / "out"
    drill = run_suite(healthy.inventory, out, "--alluredir", str(allure_dir), "-k", "cache", suite="checks/dr_drill")
    assert drill.code == 0, drill.output
    done = subprocess.run([sys.executable, "-m", "pytest", "chaos", "-p", "no:cacheprovider", "-q",
                           "--sandbox-dir", str(healthy.box.dir), "--opsproof-out", str(out), "--alluredir",
                           str(allure_dir), "--experiments", str(REPO / "chaos" / "experiments" / "redis-down.yaml")],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    found = results(allure_dir)
    phases = ["found", "integrity", "provision", "restore", "verify", "rpo", "rto", "teardown"]
    restore = found["test_04_restore[backups[cache]]"]
    [step] = restore["steps"]
    assert (step["name"], step["status"]) == ("drill.restore", "passed")
    assert restore["start"] <= step["start"] <= step["stop"] <= restore["stop"]
    last = found["test_08_scratch_torn_down[backups[cache]]"]
    whole = last["steps"][-1]
    assert (whole["name"], whole["status"]) == ("DR drill backups[cache] — PASS", "passed")
    assert [(s["name"], s["status"]) for s in whole["steps"]] == [(f"drill.{p}", "passed") for p in phases]
    starts = [s["start"] for s in whole["steps"]]
    assert starts == sorted(starts)
    assert all(s["start"] <= s["stop"] for s in whole["steps"])
    assert {p["name"] for p in whole["parameters"]} == {"RTO", "RPO"}
    [attached] = [a for a in last["attachments"] if a["name"] == "drill evidence backups[cache]"]
    drill_doc = json.loads((allure_dir / attached["source"]).read_text())
    assert (drill_doc["verdict"], drill_doc["environment"]) == ("PASS", "sandbox")
    [written] = (out / "drills").glob("cache-*.json")
    assert json.loads(written.read_text())["environment"] == "sandbox"  # several clusters' drills merge

    chaos = found["test_experiment[redis-down]"]
    events = [s["name"].split()[0] for s in chaos["steps"]]
    expected = ["fault_injected", "pending", "firing", "delivered", "remediated", "recovered", "resolved"]
    assert set(expected) <= set(events), events
    assert sorted(expected, key=events.index) == expected, events
    assert chaos["steps"][-1]["name"] == "verdict: PASS (completed)"
    assert all(s["status"] == "passed" for s in chaos["steps"]), chaos["steps"]
    firing = next(s for s in chaos["steps"] if s["name"] == "firing RedisDown")
    assert {p["name"] for p in firing["parameters"]} == {"after the fault", "budget", "measured"}
    starts = [s["start"] for s in chaos["steps"]]
    assert starts == sorted(starts)
    [attached] = [a for a in chaos["attachments"] if a["name"].startswith("chaos evidence ")]
    doc = json.loads((allure_dir / attached["source"]).read_text())
    assert doc["ok"]
    assert doc["environment"] == "sandbox"
    assert doc["timeline"][0]["event"] == "fault_injected"
    for secret in healthy.box.meta["passwords"].values():
        assert all(secret not in p.read_text() for p in allure_dir.iterdir() if p.is_file())
    summary = render(allure_dir, tmp_path / "html", failed=0)
    assert summary["stats"]["passed"] >= len(phases) + 1, summary["stats"]


def render(results_dir: Path, out: Path, failed: int | None = None) -> dict[str, Any]:
    """Allure 3 (npm) renders the results: the report's summary counts the failed root cause (or ``failed``)."""
    if shutil.which("node") is None:
        pytest.skip("Node is not installed: Allure 3 rendering is not tested here")
    allure = REPO / "node_modules" / ".bin" / "allure"
    assert allure.exists(), "Allure 3 is not installed: run `make deps` (npm install)"
    done = subprocess.run([str(allure), "generate", str(results_dir), "-o", str(out)], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    if failed is None:
        assert summary["stats"]["failed"] >= 1, summary["stats"]
    else:
        assert summary["stats"].get("failed", 0) == failed, summary["stats"]
    assert (out / "index.html").is_file()
    return summary
