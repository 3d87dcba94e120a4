"""Named queries on the real sandbox (issue 14): PromQL thresholds and read-only SQL assertions pass on a healthy
sandbox and fail, with the finding, when it is broken for real (latency through the fault proxy, an index dropped);
a query that writes, one of two statements, one past its timeout and one on a missing extension fail clearly and
change nothing. The SLO latency check reads a milliseconds histogram as it reads the seconds one."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import SandboxHelper, SuiteRun, run_suite, traffic

from opsproof.chaos import proxy
from opsproof.inventory import load
from opsproof.inventory.base import parse_instant
from opsproof.inventory.entries import Slo
from opsproof.probes import Connections, Target, slo

pytestmark = pytest.mark.integration

QUERY_CHECKS = ("-k", "test_promql_threshold or test_sql_assertion")
SANDBOX_QUERIES = {"prometheus[main] query rule_failures", "postgres[main] query max_connections",
                   "postgres[main] query items_tenant_index", "postgres[main] query vacuum_age"}
# the app's user-facing p95 from its milliseconds histogram, at every evaluation of the last 3 s
P95_MS = {"expr": 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_ms_bucket{job="app",'
                  'handler!~"/health|/ready"}[10s])))',
          "op": "<", "value": "300ms", "unit": "milliseconds", "for": "3s", "step": "1s"}


def by_target(run: SuiteRun) -> dict[str, dict[str, Any]]:
    return {r["target"]: r for r in run.records}


def message(record: dict[str, Any]) -> str:
    return f"{record['target']}: {record['observed']}, expected {record['expected']}"


def with_queries(helper: SandboxHelper, out: Path, pg: dict[str, Any], prom: dict[str, Any],
                 extra: dict[str, Any] | None = None) -> Path:
    """The sandbox inventory with more queries on its entries (and ``extra`` dotted keys)."""
    base = yaml.safe_load(helper.inventory.read_text())
    changes = {"postgres.main.queries": {**base["postgres"]["main"]["queries"], **pg},
               "prometheus.main.queries": {**base["prometheus"]["main"]["queries"], **prom}, **(extra or {})}
    return helper.derive(out, changes)


def audit_rows(helper: SandboxHelper) -> int:
    with helper.superuser() as c:
        [(n,)] = c.execute("SELECT count(*) FROM audit_log").fetchall()
    return int(n)


def test_queries_pass_on_the_healthy_sandbox_and_bad_ones_fail_clearly(healthy: SandboxHelper, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One run: the sandbox's own queries and a latency threshold pass; a query that writes (as a role that may
    write), two statements, a query past its timeout and one on a missing extension each fail with their reason,
    and nothing was written."""
    traffic(healthy.box.url("app"), 2)
    healthy.wait_scrapes(2)
    writer = {"dsn": healthy.box.dsn("app"), "connect_timeout_s": 3, "queries": {
        "writes": {"sql": "INSERT INTO audit_log (line) VALUES ('opsproof was here') RETURNING id", "rows": 1},
        "two_statements": {"sql": "SELECT 1; DELETE FROM audit_log", "value": 1}}}
    inventory = with_queries(healthy, tmp_path, {
        "slow": {"sql": "SELECT pg_sleep(5)", "rows": 1, "timeout": "300ms"},
        "slow_statements": {"sql": "SELECT query FROM pg_stat_statements WHERE mean_exec_time > 1000", "rows": 0},
    }, {"p95_ms": P95_MS, "prometheus_up": {"expr": 'up{job="prometheus"}', "op": "==", "value": 1,
                                            "for": "deploy"}},
        {"postgres.writer": writer, "prometheus.main.deployed_at": "-10m"})
    before = audit_rows(healthy)
    run = run_suite(inventory, tmp_path, *QUERY_CHECKS)
    got = by_target(run)
    assert {t for t, r in got.items() if r["outcome"] == "passed"} == {
        *SANDBOX_QUERIES, "prometheus[main] query p95_ms", "prometheus[main] query prometheus_up"}, run.output
    assert audit_rows(healthy) == before  # the INSERT and the DELETE were refused: nothing changed
    assert message(got["postgres[writer] query writes"]) == (
        "postgres[writer] query writes: refused: cannot execute INSERT in a read-only transaction — the query writes; "
        "postgres.query runs it read-only, expected rows == 1")
    assert message(got["postgres[writer] query two_statements"]) == (
        "postgres[writer] query two_statements: refused by the server: cannot insert multiple commands into a "
        "prepared statement (SQLSTATE 42601), expected == 1")
    slow = got["postgres[main] query slow"]
    assert message(slow) == "postgres[main] query slow: statement timeout after 300 ms, expected rows == 1"
    assert slow["evidence"]["statement_timeout_ms"] == 300
    assert message(got["postgres[main] query slow_statements"]).startswith(
        'postgres[main] query slow_statements: refused by the server: relation "pg_stat_statements" does not exist '
        "(SQLSTATE 42P01) — the extension pg_stat_statements is not usable here")
    assert "Traceback" not in run.output
    # passes read like findings too
    assert got["postgres[main] query max_connections"]["observed"] == "40"
    assert got["postgres[main] query items_tenant_index"]["observed"] == "1 row (first: items_tenant)"
    assert re.fullmatch(r"\d+(\.\d+)? ms over 3s", got["prometheus[main] query p95_ms"]["observed"]), run.output
    assert got["prometheus[main] query p95_ms"]["evidence"]["step_s"] == 1
    assert re.fullmatch(r'1 \(instance="127\.0\.0\.1:\d+", job="prometheus"\) since the deploy \(10m ago\)',
                        got["prometheus[main] query prometheus_up"]["observed"]), run.output
    assert got["prometheus[main] query prometheus_up"]["evidence"]["window_s"] == pytest.approx(600)
    # the SLO latency check on the milliseconds histogram: the same p95 and buckets as on the seconds one
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)).isoformat()
    derived = healthy.derive(tmp_path / "slo", {
        "slo.app.deployed_at": since,
        "slo.app_ms": {"prometheus": "main", "selector": 'job="app",handler!~"/health|/ready"', "min_requests": 100,
                       "duration_metric": "http_request_duration_ms", "deployed_at": since}})
    inv = load(derived)
    # both read the one window, ended 5 s ago (every scrape in it ingested): a window ending at each call's own "now"
    # let requests scraped between the two calls into the second only (a CI run: 32,680 vs 32,713 in each bucket)
    end = dt.datetime.now(dt.UTC).timestamp() - 5
    monkeypatch.setattr(Slo, "window", lambda self, now: (parse_instant(self.deployed_at, end), end))
    with Connections() as conns:
        seconds, millis = (slo.latency_p95(Target("slo", name, inv.slo[name]), conns) for name in ("app", "app_ms"))
    assert seconds.ok is millis.ok is True, (seconds, millis)
    assert millis.evidence["window"]["histogram_unit"] == "milliseconds"
    assert millis.evidence["buckets"] == seconds.evidence["buckets"]
    assert millis.evidence["window"]["p95_ms"] == pytest.approx(seconds.evidence["window"]["p95_ms"], abs=0.2)


def test_a_slow_app_and_a_dropped_index_fail_exactly_their_queries(healthy: SandboxHelper, tmp_path: Path) -> None:
    """Real faults: 400 ms on every Redis round trip of the app (its fault proxy) makes the user-facing p95 cross
    300 ms; the index the runbook relies on is dropped. Exactly those two query checks fail; then both are
    restored."""
    inventory = with_queries(healthy, tmp_path, {}, {"p95_ms": P95_MS})
    configuration = {"opsproof_sandbox_dir": str(healthy.box.dir)}
    # the query's 10 s rate window must hold only this test's slowed traffic: an earlier test's (hundreds of fast
    # requests a second, just before) kept the p95 under 300 ms in a CI run
    healthy.wait_quiet(10)
    proxy.proxy_fault("latency", 400, "proxy", configuration=configuration)
    try:
        traffic(healthy.box.url("app"), 3)
        healthy.wait_scrapes(2)
        with healthy.superuser() as c:
            c.execute("DROP INDEX items_tenant")
        run = run_suite(inventory, tmp_path, *QUERY_CHECKS)
    finally:
        proxy.proxy_clear("proxy", configuration=configuration)
        with healthy.superuser() as c:
            c.execute("CREATE INDEX IF NOT EXISTS items_tenant ON items (tenant_id)")
    assert run.failed == {"prometheus.query@prometheus[main] query p95_ms",
                          "postgres.query@postgres[main] query items_tenant_index"}, run.output
    got = by_target(run)
    assert message(got["postgres[main] query items_tenant_index"]) == (
        "postgres[main] query items_tenant_index: 0 rows, expected rows >= 1")
    p95 = message(got["prometheus[main] query p95_ms"])
    found = re.fullmatch(r"prometheus\[main\] query p95_ms: (\d+(?:\.\d+)?) ms at \d+ of \d+ evaluations over 3s, "
                         r"expected < 300 ms", p95)
    assert found, p95
    assert float(found.group(1)) > 300
    assert f"prometheus[main] query p95_ms: {found.group(1)} ms" in run.output  # what the CI log shows


def test_a_bad_query_stops_the_run_before_anything_is_contacted(tmp_path: Path) -> None:
    """What a user sees from pytest: the file, line, key and fix of each bad query, usage error (exit 4)."""
    inventory = tmp_path / "bad.yaml"
    inventory.write_text("""environment: bad
prometheus:
  main:
    url: http://127.0.0.1:9
    queries:
      pool_usage: {expr: max(db_pool_in_use), op: '=>', value: 0.8}
postgres:
  main:
    dsn: postgresql://u@127.0.0.1:9/db
    queries:
      max_connections: {op: '>=', value: 100}
""")
    run = run_suite(inventory, tmp_path, *QUERY_CHECKS)
    assert run.code == 4, run.output
    assert (f"{inventory}:6: prometheus.main.queries.pool_usage.op: '=>' is not a comparison. Fix: write one of <, "
            "<=, >, >=, ==, != in quotes") in run.output
    assert f"{inventory}:11: postgres.main.queries.max_connections.sql: required key is missing. Fix: add 'sql:'." \
        in run.output
    assert "Traceback" not in run.output
    assert run.records == []
