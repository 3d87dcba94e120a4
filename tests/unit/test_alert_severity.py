"""Prometheus rules say critical/warning/info; opsproof judges critical/high/medium/low (issue 9)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from opsproof.inventory import InventoryError, loads
from opsproof.probes import prometheus
from opsproof.probes.base import Target
from opsproof.probes.connections import Connections


def inventory(prom: str, slo_entry: str = "") -> Any:
    return loads(f"environment: t\nprometheus:\n  main:\n    url: http://prom:9090\n{prom}{slo_entry}")


def alerts_answer(*alerts: tuple[str, str | None]) -> httpx.MockTransport:
    body = {"status": "success", "data": {"alerts": [
        {"state": "firing", "activeAt": "2026-12-02T10:00:00Z",
         "labels": {"alertname": n, **({"severity": s} if s else {})}} for n, s in alerts]}}
    return httpx.MockTransport(lambda request: httpx.Response(200, content=json.dumps(body)))


def run_alerts(prom: str, transport: httpx.MockTransport) -> Any:
    inv = inventory(prom)
    with Connections(http_transport=transport) as conns:
        return prometheus.alerts(Target("prometheus", "main", inv.prometheus["main"]), conns)


def test_the_threshold_accepts_a_rule_set_severity_name() -> None:
    assert inventory("    no_alerts_at_or_above: warning\n").prometheus["main"].no_alerts_at_or_above == "high"


def test_an_unknown_threshold_names_the_fix() -> None:
    with pytest.raises(InventoryError, match=r"(?s)no_alerts_at_or_above.*unknown severity 'sev2'.*severity_map"):
        inventory("    no_alerts_at_or_above: sev2\n")


def test_a_firing_warning_fails_a_warning_threshold_and_names_its_severity() -> None:
    res = run_alerts("    no_alerts_at_or_above: warning\n", alerts_answer(("CmsSlow", "warning")))
    assert res.ok is False
    assert res.observed == "1 firing at ≥ high: CmsSlow (warning → high)"


def test_alerts_below_the_threshold_are_listed_as_also_firing() -> None:
    res = run_alerts("", alerts_answer(("DbDown", "page"), ("CmsSlow", "warning"), ("Note", "info"), ("Bare", None)))
    assert res.ok is False
    assert res.observed == ("1 firing at ≥ critical: DbDown (page → critical); also firing: CmsSlow (warning → high), "
                            "Note (info → low), Bare (no severity label)")


def test_only_lower_alerts_pass_but_are_still_listed() -> None:
    res = run_alerts("", alerts_answer(("CmsSlow", "warning")))
    assert res.ok is True
    assert res.observed == "nothing firing at ≥ critical; also firing: CmsSlow (warning → high)"


def test_severity_map_overrides_the_default() -> None:
    res = run_alerts("    severity_map: {Warning: low, sev1: critical}\n    no_alerts_at_or_above: medium\n",
                     alerts_answer(("CmsSlow", "warning"), ("Custom", "sev1")))
    assert res.ok is False
    assert res.observed == "1 firing at ≥ medium: Custom (sev1 → critical); also firing: CmsSlow (warning → low)"


def test_new_alerts_since_the_deploy_counts_a_mapped_warning() -> None:
    inv = inventory("    no_alerts_at_or_above: warning\n",
                    "slo:\n  app:\n    prometheus: main\n    deployed_at: -5m\n")

    def answer(request: httpx.Request) -> httpx.Response:
        during = "max_over_time" in request.url.params["query"]
        vector = [{"metric": {"alertname": "CmsSlow", "severity": "warning"}, "value": [0, "1"]}] if during else []
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": vector}})

    with Connections(http_transport=httpx.MockTransport(answer)) as conns:
        res = prometheus.new_alerts(Target("prometheus", "main", inv.prometheus["main"]), conns)
    assert res.ok is False
    assert res.observed == "1 fired since the deploy: CmsSlow (warning → high)"
