"""Allure, done fully: each check's test carries severity, suite, check, target and environment labels and its
evidence; the results folder gets environment.properties and categories.json (blocked, waived, timed out, …); and
Allure 3 (npm, no Java) renders it. On a real run with Redis stopped: a failed root cause, blocked checks."""

from __future__ import annotations

import json
import shutil
import subprocess
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


def render(results_dir: Path, out: Path) -> None:
    """Allure 3 (npm) renders the results: the report's summary counts the failed root cause."""
    if shutil.which("node") is None:
        pytest.skip("Node is not installed: Allure 3 rendering is not tested here")
    allure = REPO / "node_modules" / ".bin" / "allure"
    assert allure.exists(), "Allure 3 is not installed: run `make deps` (npm install)"
    done = subprocess.run([str(allure), "generate", str(results_dir), "-o", str(out)], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stats"]["failed"] >= 1, summary["stats"]
    assert (out / "index.html").is_file()
