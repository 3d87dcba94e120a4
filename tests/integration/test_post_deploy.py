"""The post-deploy gate against the sandbox, with real traffic through the reference application and a
"deploy" simulated by the app's /admin/release (the new release answers errors or slowly, as a bad build would)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import SandboxHelper, run_suite, traffic

from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration

GATE = "checks/post_deploy"


@pytest.fixture
def app(healthy: SandboxHelper) -> Iterator[str]:
    url = healthy.box.url("app")
    yield url
    httpx.post(url + "/admin/release", json={"version": "v1", "error_rate": 0, "latency_ms": 0}, timeout=5)


# Both releases take ≥ 60 ms per request, as a real service's database work would: p95 ≈ 100 ms, judged by the
# canary at the 250 ms bucket bound. Without it p95 is a few ms of queueing on 2 cores, and the other xdist
# worker's load alone could put 5 % of one window's requests past 25 ms — a regression of the machine, not the app.
SERVICE_MS = 60


def deploy(helper: SandboxHelper, app: str, before_s: float = 6, **release: float | str) -> str:
    """Traffic before, the release, and returns the deploy time (ISO) to pass as OPSPROOF_DEPLOYED_AT. The window
    before the deploy reaches back past this traffic: it starts only once earlier tests' requests are out of it."""
    helper.wait_quiet(6)  # the before-window reaches ≈ 4 s before this traffic (its length + whole seconds + a scrape)
    httpx.post(app + "/admin/release", json={"version": "v1", "latency_ms": SERVICE_MS}, timeout=5).raise_for_status()
    traffic(app, before_s)
    helper.wait_scrapes(1)  # the before-window ends with the deploy: Prometheus has this traffic
    at = dt.datetime.now(dt.UTC).isoformat()
    httpx.post(app + "/admin/release", json={"version": "v2", "latency_ms": SERVICE_MS, **release},
               timeout=5).raise_for_status()
    return at


def settle(helper: SandboxHelper) -> None:
    helper.wait_scrapes(2)  # Prometheus has seen the last requests of the window (one more scrape for ingestion)


def gate(helper: SandboxHelper, tmp_path: Path, deployed_at: str, *args: str, inventory: Path | None = None):  # type: ignore[no-untyped-def]
    return run_suite(inventory or helper.inventory, tmp_path, *args, suite=GATE,
                     env={"OPSPROOF_DEPLOYED_AT": deployed_at})


def test_a_clean_deploy_passes_the_gate(healthy: SandboxHelper, app: str, tmp_path: Path) -> None:
    at = deploy(healthy, app)
    traffic(app, 6)
    settle(healthy)
    run = gate(healthy, tmp_path, at, "-rA")
    assert run.code == 0, run.output
    checks = {r["check"] for r in run.records if r["outcome"] == "passed"}
    assert {"slo.error_ratio", "slo.latency_p95", "prometheus.new_alerts", "slo.canary_errors",
            "slo.canary_latency", "http.health", "postgres.ready"} <= checks
    canary = run.record("slo.canary_errors")
    assert "exact conditional binomial test" in canary["observed"]


def test_a_burst_of_5xx_fails_the_slo_and_the_baseline_comparison(healthy: SandboxHelper, app: str,
                                                                   tmp_path: Path) -> None:
    at = deploy(healthy, app, error_rate=0.2)
    # keep the bad release serving until the HighErrorRate alert (critical) fires, so the verdict is deterministic
    wait_for(lambda: traffic(app, 1) > 0 and "HighErrorRate" in healthy.firing(), 60, "HighErrorRate did not fire")
    settle(healthy)
    run = gate(healthy, tmp_path, at)
    assert run.code == 1
    assert run.failed_checks == {"slo.error_ratio", "slo.canary_errors", "prometheus.new_alerts",
                                 "prometheus.alerts"}, run.output
    ratio = run.record("slo.error_ratio")
    assert ratio["observed"].startswith("error ratio ")
    assert "requests in the " in ratio["observed"]
    assert ratio["expected"] == "error ratio ≤ 1.00% with ≥ 100 requests"
    canary = run.record("slo.canary_errors")
    assert canary["evidence"]["p_value"] < 1e-6
    assert "vs 0.00% before" in canary["observed"]
    assert "HighErrorRate (critical)" in run.record("prometheus.new_alerts")["observed"]
    # back to health for the next test: the good release dilutes the errors out of the alert's window
    httpx.post(app + "/admin/release", json={"version": "v3", "error_rate": 0, "latency_ms": 0}, timeout=5)
    wait_for(lambda: traffic(app, 1) > 0 and "HighErrorRate" not in healthy.firing(), 90, "HighErrorRate stuck")


def test_a_latency_regression_fails(healthy: SandboxHelper, app: str, tmp_path: Path) -> None:
    inventory = healthy.derive(tmp_path, {"slo.app.min_requests": 40})
    at = deploy(healthy, app, latency_ms=400)
    traffic(app, 6, concurrency=16)
    settle(healthy)
    run = gate(healthy, tmp_path, at, inventory=inventory)
    assert run.failed_checks == {"slo.latency_p95", "slo.canary_latency"}, run.output
    for check in ("slo.latency_p95", "slo.canary_latency"):  # 400 ms and queueing: the 250–500 ms bucket or next
        p95 = re.match(r"p95 (\d+) ms", run.record(check)["observed"])
        assert p95, run.record(check)
        assert 400 <= int(p95[1]) < 1000, run.record(check)
    canary = run.record("slo.canary_latency")
    assert canary["expected"] == "p95 after ≤ 2 × p95 before (at bucket resolution)"
    share = re.search(r": (\d+\.\d)% of requests slower than \d+ ms after \(\d+/\d+\) vs \d", canary["observed"])
    assert share, canary
    assert float(share[1]) >= 90, canary


@pytest.mark.parametrize("outcome", ["fail", "skip"])
def test_too_little_traffic_is_no_data(healthy: SandboxHelper, app: str, tmp_path: Path, outcome: str) -> None:
    inventory = healthy.derive(tmp_path, {"slo.app.no_data": outcome})
    at = deploy(healthy, app)  # and nobody calls the new release
    settle(healthy)
    run = gate(healthy, tmp_path, at, "-rs", inventory=inventory)
    slo_checks = {"slo.error_ratio", "slo.latency_p95", "slo.canary_errors", "slo.canary_latency"}
    for check in slo_checks:
        record = run.record(check)
        assert re.match(r"^no data: \d requests in the \d+ s (since|before) the deploy", record["observed"]), record
        assert record["outcome"] == ("failed" if outcome == "fail" else "skipped")
    assert run.record("prometheus.new_alerts")["outcome"] == "passed"  # alerts need no traffic to judge
    assert run.code == (1 if outcome == "fail" else 0), run.output
