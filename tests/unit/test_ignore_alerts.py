"""One noisy alert accepted on its own (``ignore_alerts:``), and "no new alert since the deploy" without an slo
entry (issue 9, part 5)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from opsproof.alert_ignores import matches, partition
from opsproof.inventory import IgnoredAlert, InventoryError, loads
from opsproof.probes import prometheus
from opsproof.probes.base import Target
from opsproof.probes.connections import Connections

TODAY = dt.date(2026, 12, 2)


def ignore(**kw: Any) -> IgnoredAlert:
    return IgnoredAlert(**{"alertname": "NoisyAlert", "reason": "flaps", **kw})


def entry(extra: str, rest: str = "") -> Any:
    return loads(f"environment: t\nprometheus:\n  main:\n    url: http://prom:9090\n{extra}{rest}", "inv.yaml")


def test_an_ignore_names_an_alert_by_name_and_every_label_it_gives() -> None:
    noisy = {"alertname": "NoisyAlert", "instance": "x", "severity": "critical"}
    assert matches(ignore(), noisy)
    assert matches(ignore(labels={"instance": "x"}), noisy)
    assert not matches(ignore(labels={"instance": "y"}), noisy)
    assert not matches(ignore(labels={"instance": "x", "job": "db"}), noisy)  # all must match
    assert matches(ignore(alertname="Noisy*", labels={"instance": "x*"}), noisy)  # globs
    assert not matches(ignore(alertname="Noisy"), noisy)  # exact without a glob


def test_an_expired_ignore_no_longer_applies_and_says_so() -> None:
    alerts = [{"alertname": "NoisyAlert", "instance": "x"}]
    held = partition(alerts, [ignore(labels={"instance": "x"}, until=TODAY)], TODAY)  # the last day still holds
    assert (held.judged, held.note()) == ([], "; ignored: NoisyAlert{instance=x} (flaps, until 2026-12-02)")
    gone = partition(alerts, [ignore(labels={"instance": "x"}, until=dt.date(2026, 12, 1))], TODAY)
    assert gone.judged == alerts
    assert gone.note() == "; ignore expired, judged again: NoisyAlert{instance=x} (flaps, expired 2026-12-01)"
    assert gone.evidence()["expired_ignores"] == [{"labels": alerts[0], "reason": "flaps", "until": "2026-12-01"}]


def test_an_ignore_without_a_reason_is_an_inventory_error_at_its_line() -> None:
    with pytest.raises(InventoryError, match=r"^inv\.yaml:6: prometheus\.main\.ignore_alerts\.0\.reason: required "
                                             r"key is missing\. Fix: add 'reason:'\.$"):
        entry("    ignore_alerts:\n      - alertname: NoisyAlert\n")
    with pytest.raises(InventoryError, match=r"^inv\.yaml:8: prometheus\.main\.ignore_alerts\.0\.until: .*"
                                             r"\(got 'soon'\)\. Fix: write it like 2027-01-31\.$"):
        entry("    ignore_alerts:\n      - alertname: NoisyAlert\n        reason: flaps\n        until: soon\n")


def firing(*instances: str) -> httpx.MockTransport:
    body = {"status": "success", "data": {"alerts": [
        {"state": "firing", "labels": {"alertname": "NoisyAlert", "instance": i, "severity": "critical"}}
        for i in instances]}}
    return httpx.MockTransport(lambda request: httpx.Response(200, json=body))


IGNORE_X = ("    ignore_alerts:\n"
            "      - {alertname: NoisyAlert, labels: {instance: x}, reason: flaps, until: 2999-01-31}\n")


def alerts(transport: httpx.MockTransport) -> Any:
    with Connections(http_transport=transport) as conns:
        return prometheus.alerts(Target("prometheus", "main", entry(IGNORE_X).prometheus["main"]), conns)


def test_the_ignored_alert_passes_but_is_listed() -> None:
    res = alerts(firing("x"))
    assert res.ok is True
    assert res.observed == "nothing firing at ≥ critical; ignored: NoisyAlert{instance=x} (flaps, until 2999-01-31)"
    assert [i["labels"]["instance"] for i in res.evidence["ignored"]] == ["x"]


def test_the_same_alert_with_other_labels_is_still_judged() -> None:
    res = alerts(firing("x", "y"))
    assert res.ok is False
    assert res.observed == ("1 firing at ≥ critical: NoisyAlert (critical); "
                            "ignored: NoisyAlert{instance=x} (flaps, until 2999-01-31)")


def test_new_alerts_needs_a_deploy_time_its_own_or_an_slo_entrys() -> None:
    assert not prometheus.new_alerts.applies(entry("").prometheus["main"])
    own = entry("    deployed_at: 2026-12-02T10:00:00Z\n").prometheus["main"]
    assert own.deploy_time(0) == (dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC).timestamp(), "deployed_at")
    two_slos = entry("", "slo:\n  a: {prometheus: main, deployed_at: -5m}\n  b: {prometheus: main, deployed_at: -9m}\n")
    assert two_slos.prometheus["main"].deploy_time(1000.0) == (1000.0 - 540, "slo.b.deployed_at")  # the earliest
    assert prometheus.new_alerts.applies(two_slos.prometheus["main"])  # one check for the Prometheus, not one per slo


def test_new_alerts_skips_an_ignored_alert_and_judges_the_other() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        during = "max_over_time" in request.url.params["query"]
        vector = [{"metric": {"alertname": "NoisyAlert", "instance": i, "severity": "critical"}, "value": [0, "1"]}
                  for i in (("x", "y") if during else ())]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": vector}})

    inv = entry(IGNORE_X + "    deployed_at: -5m\n")
    with Connections(http_transport=httpx.MockTransport(answer)) as conns:
        res = prometheus.new_alerts(Target("prometheus", "main", inv.prometheus["main"]), conns)
    assert res.ok is False
    assert res.observed == ("1 fired since the deploy: NoisyAlert (critical); "
                            "ignored: NoisyAlert{instance=x} (flaps, until 2999-01-31)")
    assert res.evidence["deploy_from"] == "deployed_at"


def test_new_alerts_tells_series_of_one_name_apart() -> None:
    """NoisyAlert{instance=x} firing before the deploy does not hide NoisyAlert{instance=y} starting after it."""
    def answer(request: httpx.Request) -> httpx.Response:
        during = "max_over_time" in request.url.params["query"]
        vector = [{"metric": {"alertname": "NoisyAlert", "instance": i, "severity": "critical", "alertstate": "firing"},
                   "value": [0, "1"]} for i in (("x", "y") if during else ("x",))]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": vector}})

    inv = entry("    deployed_at: -5m\n")
    with Connections(http_transport=httpx.MockTransport(answer)) as conns:
        res = prometheus.new_alerts(Target("prometheus", "main", inv.prometheus["main"]), conns)
    assert res.ok is False
    assert res.evidence["new"] == [{"alertname": "NoisyAlert", "instance": "y", "severity": "critical"}]
