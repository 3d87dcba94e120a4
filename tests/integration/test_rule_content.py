"""Alert rule content on real Prometheus servers (issue 14): the sandbox's rules pass the thresholds its
inventory states; a Prometheus the test owns, loaded with a changed copy of the same rules file (a looser
threshold, a shorter for:, another severity, the latency rule gone), fails exactly those rules, each message
naming the rule, what it says and what the runbook expects."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import SandboxHelper, run_suite, stop_process

from opsproof.inventory import load
from opsproof.probes import Connections, rule_content
from opsproof.sandbox import configs
from opsproof.util.poll import wait_until
from opsproof.util.process import find_binary, free_port

pytestmark = pytest.mark.integration

RULE_CHECK = ("-k", "test_alert_rule_content")


def changed_rules() -> list[dict[str, object]]:
    """The sandbox's rules, with HighErrorRate loosened (> 0.1, for 1m, severity warning) and HighLatency gone."""
    rules = [copy.deepcopy(r) for r in configs.RULES if r["alert"] != "HighLatency"]
    for rule in rules:
        if rule["alert"] == "HighErrorRate":
            rule.update({"expr": str(rule["expr"]).replace("> 0.05", "> 0.1"), "for": "1m",
                         "labels": {"severity": "warning"}})
    return rules


@pytest.fixture
def changed_prometheus(tmp_path: Path) -> Iterator[str]:
    """A Prometheus of the test's own that loads the changed rules file (and scrapes nothing); always stopped."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "rules.yml").write_text(configs.rules_yaml(changed_rules()))
    (folder / "prometheus.yml").write_text(yaml.safe_dump({"global": {"evaluation_interval": "1s"},
                                                           "rule_files": [str(folder / "rules.yml")]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([find_binary("prometheus", "prometheus"), f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 60,
                   "the test's Prometheus ready")
        yield url
    finally:
        stop_process(process)


def record(run: Any, target: str) -> dict[str, Any]:
    [found] = [r for r in run.records if r["target"] == target]
    return dict(found)


def message(found: dict[str, Any]) -> str:
    return f"{found['target']}: {found['observed']}, expected {found['expected']}"


def test_the_sandbox_rules_have_their_thresholds(healthy: SandboxHelper) -> None:
    """The sandbox inventory's alert_rules, and a rule found by a piece of its expression, pass on its Prometheus."""
    inv = load(healthy.derive(healthy.box.dir / "rule-content", {"prometheus.main.alert_rules": {
        **yaml.safe_load(healthy.inventory.read_text())["prometheus"]["main"]["alert_rules"],
        "errors_5xx": {"watches": 'http_requests_total{status=~"5.."}', "threshold": "> 5e-2", "for": "5s"}}}))
    with Connections() as conns:
        results = {t.id: rule_content.rule_content(t, conns)
                   for t in rule_content.rule_content.targets("main", inv.prometheus["main"])}
    assert {i: r.ok for i, r in results.items()} == {"prometheus[main] rule HighErrorRate": True,
                                                     "prometheus[main] rule p95_latency": True,
                                                     "prometheus[main] rule errors_5xx": True}, results
    assert results["prometheus[main] rule HighErrorRate"].observed == "compares > 0.05, for 5s, severity=critical"
    assert results["prometheus[main] rule p95_latency"].observed == (
        "HighLatency: compares > 0.5, for 2s, severity=high, expr has histogram_quantile(0.95")
    assert results["prometheus[main] rule errors_5xx"].observed == "HighErrorRate: compares > 0.05, for 5s"


def test_a_changed_rules_file_fails_exactly_the_changed_rules(changed_prometheus: str, tmp_path: Path) -> None:
    """Through the smoke suite: the unchanged rule passes, the loosened one fails naming its threshold, for: and
    severity, the removed one fails listing the rules there are."""
    inventory = tmp_path / "changed.yaml"
    inventory.write_text(yaml.safe_dump({"environment": "changed", "prometheus": {"main": {
        "url": changed_prometheus, "timeout_s": 3, "alert_rules": {
            "HighErrorRate": {"threshold": "> 0.05", "for": "5m", "labels": {"severity": "critical"}},
            "p95_latency": {"watches": "http_request_duration_seconds_bucket", "threshold": "> 0.5"},
            "RedisDown": {"expr_contains": ["redis_up == 0"], "for": "2s", "labels": {"severity": "high"}}}}}}))
    run = run_suite(inventory, tmp_path, *RULE_CHECK)
    assert run.failed == {"prometheus.rule_content@prometheus[main] rule HighErrorRate",
                          "prometheus.rule_content@prometheus[main] rule p95_latency"}, run.output
    assert record(run, "prometheus[main] rule RedisDown")["outcome"] == "passed"
    assert message(record(run, "prometheus[main] rule HighErrorRate")) == (
        "prometheus[main] rule HighErrorRate: compares > 0.1; for 1m; severity=warning, expected compares > 0.05, "
        "for 5m, severity=critical")
    latency = message(record(run, "prometheus[main] rule p95_latency"))
    assert latency.startswith("prometheus[main] rule p95_latency: no rule watches http_request_duration_seconds_bucket "
                              "(rules: AppDependencyDown, DatabaseConnectionsHigh, HighErrorRate, "), latency
    assert latency.endswith(", expected a rule watching http_request_duration_seconds_bucket, compares > 0.5"), \
        latency
    assert "prometheus[main] rule HighErrorRate: compares > 0.1; for 1m; severity=warning" in run.output
    assert "Traceback" not in run.output
