"""Accepted noisy alerts and "no new alert since the deploy" on the sandbox's real Prometheus: a test rule makes
``NoisyAlert`` fire for the instances a test asks (one series each), and the rules are put back afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import SandboxHelper, run_suite

from opsproof.inventory import load
from opsproof.probes import Connections, Target, prometheus
from opsproof.result import Result
from opsproof.sandbox import configs
from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration


def noisy_rule(instances: tuple[str, ...]) -> dict[str, object]:
    series = " or ".join(f'label_replace(vector(1), "instance", "{i}", "", "")' for i in instances)
    return {"alert": "NoisyAlert", "expr": series, "labels": {"severity": "critical"},
            "annotations": {"summary": "a test alert"}}


@pytest.fixture
def noisy(healthy: SandboxHelper) -> Iterator[Callable[..., None]]:
    """``noisy("x", "y")``: NoisyAlert{instance=x} and {instance=y} fire until the test ends."""
    rules = healthy.box.dir / "prometheus" / "rules.yml"
    original = rules.read_text()

    def firing_instances() -> set[str]:
        return {a["labels"].get("instance", "") for a in healthy.prometheus("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "NoisyAlert" and a["state"] == "firing"}

    def reload(text: str, want: set[str]) -> None:
        rules.write_text(text)
        httpx.post(healthy.box.url("prometheus") + "/-/reload", timeout=5).raise_for_status()
        wait_for(lambda: firing_instances() == want, 20, f"NoisyAlert not firing for exactly {want}")

    def fire(*instances: str) -> None:
        reload(configs.rules_yaml([*configs.RULES, noisy_rule(instances)]), set(instances))

    try:
        yield fire
    finally:
        reload(original, set())


IGNORE_X = {"alertname": "NoisyAlert", "labels": {"instance": "x"}, "reason": "flaps on backup nights"}


def alerts_check(helper: SandboxHelper, tmp_path: Path, ignores: list[dict[str, Any]]) -> Result:
    inv = load(helper.derive(tmp_path, {"prometheus.main.ignore_alerts": ignores}))
    with Connections() as conns:
        return prometheus.alerts(Target("prometheus", "main", inv.prometheus["main"]), conns)


def test_the_ignored_alert_passes_and_is_listed(noisy: Callable[..., None], healthy: SandboxHelper,
                                                tmp_path: Path) -> None:
    noisy("x")
    res = alerts_check(healthy, tmp_path, [{**IGNORE_X, "until": "2999-01-31"}])
    assert res.ok is True, res.observed
    assert res.observed == ("nothing firing at ≥ critical; "
                            "ignored: NoisyAlert{instance=x} (flaps on backup nights, until 2999-01-31)")
    assert [i["labels"]["instance"] for i in res.evidence["ignored"]] == ["x"]


def test_the_same_alert_on_another_instance_still_fails(noisy: Callable[..., None], healthy: SandboxHelper,
                                                        tmp_path: Path) -> None:
    noisy("x", "y")
    res = alerts_check(healthy, tmp_path, [IGNORE_X])
    assert res.ok is False
    assert res.observed == ("1 firing at ≥ critical: NoisyAlert (critical); "
                            "ignored: NoisyAlert{instance=x} (flaps on backup nights)")
    assert sorted(a["labels"]["instance"] for a in res.evidence["firing"]) == ["x", "y"]


def test_an_expired_ignore_fails_and_says_it_expired(noisy: Callable[..., None], healthy: SandboxHelper,
                                                     tmp_path: Path) -> None:
    noisy("x")
    res = alerts_check(healthy, tmp_path, [{**IGNORE_X, "until": "2020-01-31"}])
    assert res.ok is False
    assert res.observed == ("1 firing at ≥ critical: NoisyAlert (critical); ignore expired, judged again: "
                            "NoisyAlert{instance=x} (flaps on backup nights, expired 2020-01-31)")


def prometheus_only(helper: SandboxHelper, tmp_path: Path) -> Path:
    """The sandbox's Prometheus entry and nothing else, its deploy time from OPSPROOF_DEPLOYED_AT: no slo entry."""
    prom = yaml.safe_load(helper.inventory.read_text())["prometheus"]["main"]
    path = tmp_path / "prometheus-only.yaml"
    path.write_text(yaml.safe_dump({"environment": "prometheus-only", "prometheus": {"main": {
        "url": prom["url"], "timeout_s": 3, "deployed_at": "${OPSPROOF_DEPLOYED_AT}"}}}))
    return path


def post_deploy_alerts(helper: SandboxHelper, tmp_path: Path, deployed_at: str) -> Any:
    return run_suite(prometheus_only(helper, tmp_path), tmp_path / "out", "-rA",
                     suite="checks/post_deploy/test_04_alerts.py", env={"OPSPROOF_DEPLOYED_AT": deployed_at})


def test_new_alerts_runs_without_an_slo_entry_and_fails_on_an_alert_after_the_deploy(
        noisy: Callable[..., None], healthy: SandboxHelper, tmp_path: Path) -> None:
    at = dt.datetime.now(dt.UTC).isoformat()
    noisy("after-deploy")  # a series of its own: another test's NoisyAlert may linger in instant queries
    run = post_deploy_alerts(healthy, tmp_path, at)
    assert run.code == 1, run.output
    record = run.record("prometheus.new_alerts")
    assert record["target"] == "prometheus[main]"
    assert record["observed"] == "1 fired since the deploy: NoisyAlert (critical)", record


def test_new_alerts_without_an_slo_entry_passes_when_nothing_fired(healthy: SandboxHelper, tmp_path: Path) -> None:
    at = dt.datetime.now(dt.UTC).isoformat()
    healthy.wait_scrapes(2)  # a window that Prometheus has evaluated
    run = post_deploy_alerts(healthy, tmp_path, at)
    assert run.code == 0, run.output
    assert run.record("prometheus.new_alerts")["outcome"] == "passed"
    assert "deselected" not in run.output
