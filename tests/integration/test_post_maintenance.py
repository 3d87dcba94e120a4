"""Baseline before a maintenance window, real changes during it, and a diff that names exactly what moved."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import REPO, SandboxHelper, run_suite, traffic

from opsproof.baseline import compare
from opsproof.cli import main
from opsproof.inventory import Inventory, load
from opsproof.probes import Connections, Target, postgres
from opsproof.probes.slo import Window
from opsproof.result import Result
from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration


def baseline_file(out: Path) -> Path:
    """Where `opsproof baseline capture --out OUT --label pre-maint` writes."""
    return out / "baselines" / "pre-maint.json"


def since(moment: float) -> dict[str, str]:
    """The SLO window starts at ``moment``: only this test's own traffic is judged (earlier tests on this sandbox —
    latency faults, slow deploys — would otherwise move p95 between the two captures)."""
    return {"OPSPROOF_DEPLOYED_AT": dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()}


def cli(helper: SandboxHelper, tmp_path: Path, action: str, window: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsproof.cli", "baseline", action, "--label", "pre-maint",
         "--inventory", str(helper.inventory), "--out", str(tmp_path)],
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
    document = json.loads(baseline_file(tmp_path).read_text())
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
        suite = run_suite(healthy.inventory, tmp_path / "suite", "--baseline", str(baseline_file(tmp_path)),
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
    # the readiness report reads the diff the suite wrote (no probe: Redis's exporter is still down now)
    readiness = tmp_path / "readiness"
    assert main(["report", str(tmp_path / "suite"), "--inventory", str(healthy.inventory), "--report-dir",
                 str(readiness), "--require", "gates,post-maintenance"]) == 1
    [reported] = json.loads((readiness / "readiness.json").read_text())["post_maintenance_diff"]
    assert set(reported["regressed"]) == flagged, reported
    assert reported["environment"] == "sandbox"
    assert reported["summary"].startswith("2 flipped, 3 moved beyond tolerance")
    page = (readiness / "readiness.html").read_text()
    assert "<b>Checks that regressed:</b> " in page
    assert "tolerance -0" in page


def test_nothing_changed_passes_the_checklist(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.wait_quiet()  # both windows hold this test's traffic only
    start = time.time()
    traffic(healthy.box.url("app"), 3)  # the SLO figures of both captures come from this same traffic
    assert cli(healthy, tmp_path, "capture", since(start)).returncode == 0
    run = run_suite(healthy.inventory, tmp_path / "suite", "--baseline", str(baseline_file(tmp_path)),
                    suite="checks/post_maintenance", env=since(start))
    assert run.code == 0, run.output
    assert "0 flipped, 0 moved beyond tolerance" in run.output
    diff = json.loads((tmp_path / "suite" / "baseline-diff-pre-maint.json").read_text())
    assert (diff["schema"], diff["kind"], diff["label"]) == (1, "baseline-diff", "pre-maint")
    assert diff["changes"]
    assert all(c["ok"] for c in diff["changes"]), diff["changes"]


def test_an_unknown_baseline_is_a_clear_error(healthy: SandboxHelper, tmp_path: Path) -> None:
    done = cli(healthy, tmp_path, "diff", since(time.time()))
    assert done.returncode == 2
    assert "baseline 'pre-maint': cannot read" in done.stderr
    assert "Fix: capture it first with `opsproof baseline capture --label …`." in done.stderr


def test_rows_hidden_by_row_level_security_are_counted_or_no_data(healthy: SandboxHelper, tmp_path: Path) -> None:
    """As the monitoring role, count(*) on a table under RLS is what its policies let that role see (0 here):
    that is no count. Counted as a role with BYPASSRLS (``count_dsn``), a table emptied during the window moves."""
    with healthy.superuser() as c:
        c.execute("CREATE TABLE public.rls_canary (id int, tenant int)")
        c.execute("ALTER TABLE public.rls_canary ENABLE ROW LEVEL SECURITY")
        c.execute("CREATE POLICY only_tenant_1 ON public.rls_canary USING "
                  "(tenant = nullif(current_setting('app.tenant', true), '')::int)")
        c.execute("INSERT INTO public.rls_canary SELECT g, 1 + g % 10 FROM generate_series(1, 1000) g")
        c.execute("GRANT SELECT ON public.rls_canary TO opsproof_monitor")
    try:
        as_monitor = _tables(helper_inventory(healthy, tmp_path / "monitor", count_dsn=None))
        assert as_monitor.evidence["rows"] == {"public.rls_canary": None}
        assert as_monitor.observed == ("public.rls_canary: rows hidden from role opsproof_monitor by row-level "
                                       "security (policies: only_tenant_1); set count_dsn to a role with BYPASSRLS "
                                       "to count them")
        counting = helper_inventory(healthy, tmp_path / "backup")
        before = _tables(counting)
        assert before.evidence["rows"] == {"public.rls_canary": 1000}
        with healthy.superuser() as c:
            c.execute("DELETE FROM public.rls_canary")
        [change] = [c for c in compare(_doc(before), _doc(_tables(counting))) if c.key.startswith("row count")]
        assert (change.kind, change.explain()) == (
            "moved", "row count@postgres[main]:public.rls_canary: 1000 → 0 (-1000, tolerance -0)")
        [hidden] = [c for c in compare(_doc(before), _doc(as_monitor)) if c.key.startswith("row count")]
        assert (hidden.kind, hidden.ok) == ("no-data", False)
    finally:
        with healthy.superuser() as c:
            c.execute("DROP TABLE public.rls_canary")


def helper_inventory(healthy: SandboxHelper, out: Path, **changes: object) -> Inventory:
    return load(healthy.derive(out, {"postgres.main.count_tables": ["public.rls_canary"],
                                     **{f"postgres.main.{k}": v for k, v in changes.items()}}))


def _tables(inventory: Inventory) -> Result:
    with Connections() as conns:
        return postgres.tables(Target("postgres", "main", inventory.postgres["main"]), conns)


def _doc(result: Result) -> dict[str, Any]:
    return {"results": {f"{result.check}@{result.target}": result.to_record()}}


def test_windows_count_exactly_what_was_served(healthy: SandboxHelper) -> None:
    """The mechanism of the no-change false alarm (p95 6.0 → 80.4 ms): after a restart and slow traffic, the fast
    buckets of the latency histogram are near 0 and the slow ones large, and PromQL's increase() extrapolates each
    series on its own — so a window of fast requests only showed dozens between 50 and 100 ms. The windows count
    the scraped values at both ends instead: every window of this traffic holds exactly the requests sent, and no
    more slow ones than the clients themselves saw."""
    box, app = healthy.box, healthy.box.url("app")
    box.stop_service("app")
    box.start_service("app")
    healthy.wait_healthy()
    httpx.post(app + "/admin/release", json={"version": "v1", "latency_ms": 60}, timeout=5).raise_for_status()
    try:
        traffic(app, 3)  # slow: only the buckets ≥ 100 ms grow
    finally:
        httpx.post(app + "/admin/release", json={"version": "v1", "latency_ms": 0}, timeout=5).raise_for_status()
    healthy.wait_quiet()
    start = time.time()
    seen: list[tuple[float, float]] = []
    sent = traffic(app, 3, timeline=seen)
    slow_at_client = sum(1 for _, took in seen if took > 0.05)
    inventory = load(healthy.inventory)
    target = Target("slo", "app", inventory.slo["app"])
    with Connections() as conns:
        wait_for(lambda: Window(target, conns, time.time(), math.ceil(time.time() - start)).requests >= sent, 15,
                 "the traffic's last requests were never scraped")
        now = time.time()
        for end in (now + step * 0.25 for step in range(12)):  # windows of other lengths and phases to the scrapes
            window = Window(target, conns, end, math.ceil(end - start))
            buckets = window.cumulative()
            slow = buckets[math.inf] - buckets[0.05]
            assert (window.requests, buckets[math.inf]) == (sent, sent), window.evidence()
            assert slow <= slow_at_client, f"{slow} requests > 50 ms in the window, {slow_at_client} at the client"
