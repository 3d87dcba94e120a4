"""Prometheus and Alertmanager — the monitoring the runbooks rely on is itself working."""

import pytest

from opsproof import verify
from opsproof.probes import alertmanager, prometheus, rule_content
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(prometheus.ready)
def test_prometheus_ready(result: Result) -> None:
    """`curl -f $PROM/-/ready` — Prometheus is up."""
    verify(result)


@pytest.mark.check(prometheus.targets)
def test_scrape_targets_up(result: Result) -> None:
    """`curl $PROM/api/v1/targets` — every target of the listed jobs is up."""
    verify(result)


@pytest.mark.check(prometheus.rules)
def test_alert_rules_loaded(result: Result) -> None:
    """`curl $PROM/api/v1/rules` — the alert rules the runbooks depend on are loaded."""
    verify(result)


@pytest.mark.check(rule_content.rule_content)
def test_alert_rule_content(result: Result) -> None:
    """`curl $PROM/api/v1/rules` — each rule the runbook relies on has its threshold, `for:` and severity."""
    verify(result)


@pytest.mark.check(prometheus.alerts)
def test_no_severe_alert_firing(result: Result) -> None:
    """`curl $PROM/api/v1/alerts` — nothing is firing at or above the configured severity."""
    verify(result)


@pytest.mark.check(alertmanager.ready)
def test_alertmanager_ready(result: Result) -> None:
    """`curl $AM/api/v2/status` — Alertmanager runs with a loaded configuration."""
    verify(result)


@pytest.mark.check(alertmanager.receivers)
def test_alert_receivers_exist(result: Result) -> None:
    """`amtool config routes` — the receivers alerts are routed to exist."""
    verify(result)


@pytest.mark.check(prometheus.retention)
def test_prometheus_keeps_samples_long_enough(result: Result) -> None:
    """`curl $PROM/api/v1/status/flags` — storage.tsdb.retention.time at least the runbook's retention."""
    verify(result)
