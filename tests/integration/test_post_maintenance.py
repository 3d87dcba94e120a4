"""Baseline before a maintenance window, real changes during it, and a diff that names exactly what moved."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import REPO, SandboxHelper, run_suite, traffic

from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration
def since(moment: float) -> dict[str, str]:
    """The SLO window starts at ``moment``: only this test's own traffic is judged (earlier tests on this sandbox —
    latency faults, slow deploys — would otherwise move p95 between the two captures)."""
    return {"OPSPROOF_DEPLOYED_AT": dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()}


def cli(helper: SandboxHelper, tmp_path: Path, action: str, window: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsproof.cli", "baseline", action, "--label", "pre-maint",
         "--inventory", str(helper.inventory), "--dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **window})


def test_the_diff_names_exactly_what_moved(healthy: SandboxHelper, tmp_path: Path) -> None:
    app = healthy.box.url("app")
    with healthy.superuser() as c:
        c.execute("INSERT INTO audit_log (line) SELECT 'before maintenance ' || g FROM generate_series(1, 25) g")
    healthy.wait_quiet()  # the baseline's window holds this test's traffic only
    before = time.time()
    traffic(app, 8)
    captured = cli(healthy, tmp_path, "capture", since(before))
    assert captured.returncode == 0, captured.stderr
    document = json.loads((tmp_path / "pre-maint.json").read_text())
    assert document["results"]["postgres.tables@postgres[main]"]["evidence"]["rows"]["public.audit_log"] >= 25
    assert "slo.canary_errors@slo[app]" not in document["results"]
    r = healthy.redis()
    try:
        # the maintenance window: rows lost, an exporter not brought back, Redis memory grown, errors creeping in
        with healthy.superuser() as c:
            c.execute("DELETE FROM audit_log WHERE line LIKE 'before maintenance %'")
        healthy.box.stop_service("redis_exporter")
        for i in range(150):
            r.set(f"maint:{i}", "x" * 100_000)
        httpx.post(app + "/admin/release", json={"version": "v2", "error_rate": 0.04, "latency_ms": 0}, timeout=5)
        after = time.time()
        traffic(app, 12)
        wait_for(lambda: healthy.target_health("redis") == "down", 15, "exporter still seen up")
        diff = cli(healthy, tmp_path, "diff", since(after))
        suite = run_suite(healthy.inventory, tmp_path / "suite", "--baseline", str(tmp_path / "pre-maint.json"),
                          suite="checks/post_maintenance", env=since(after))
    finally:
        httpx.post(app + "/admin/release", json={"version": "v1", "error_rate": 0, "latency_ms": 0}, timeout=5)
        for key in r.scan_iter("maint:*", count=500):
            r.unlink(key)
        r.close()
    assert diff.returncode == 1, diff.stdout + diff.stderr
    flagged = {line.split(": ")[0].split(maxsplit=1)[1] for line in diff.stdout.splitlines()
               if line.startswith(("  FLIPPED", "  MOVED"))}
    assert flagged == {"prometheus.targets@prometheus[main]", "slo.error_ratio@slo[app]",
                       "error ratio@slo[app]", "row count@postgres[main]:public.audit_log",
                       "Redis memory@redis[cache]"}, diff.stdout
    assert "2 flipped, 3 moved beyond tolerance" in diff.stdout
    assert "row count@postgres[main]:public.audit_log: " in diff.stdout
    assert "tolerance -0)" in diff.stdout  # any lost row is a finding
    # the same, as the post-maintenance suite: the checklist fails, and the diff is printed at the end
    assert suite.code == 1
    assert "post-maintenance diff against baseline 'pre-maint': 2 flipped, 3 moved beyond tolerance" in suite.output
    assert "FAILED checks/post_maintenance/test_20_against_baseline.py::test_no_check_flipped" in suite.output
    assert "FAILED checks/post_maintenance/test_20_against_baseline.py::test_values_within_tolerance" in suite.output
    assert "prometheus.targets@prometheus[main]" in suite.failed


def test_nothing_changed_passes_the_checklist(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.wait_quiet()  # both windows hold this test's traffic only
    start = time.time()
    traffic(healthy.box.url("app"), 3)  # the SLO figures of both captures come from this same traffic
    assert cli(healthy, tmp_path, "capture", since(start)).returncode == 0
    run = run_suite(healthy.inventory, tmp_path / "suite", "--baseline", str(tmp_path / "pre-maint.json"),
                    suite="checks/post_maintenance", env=since(start))
    assert run.code == 0, run.output
    assert "0 flipped, 0 moved beyond tolerance" in run.output
    assert json.loads((tmp_path / "suite" / "baseline-diff-pre-maint.json").read_text())


def test_an_unknown_baseline_is_a_clear_error(healthy: SandboxHelper, tmp_path: Path) -> None:
    done = cli(healthy, tmp_path, "diff", since(time.time()))
    assert done.returncode == 2
    assert "baseline 'pre-maint': cannot read" in done.stderr
    assert "Fix: capture it first with `opsproof baseline capture --label …`." in done.stderr
