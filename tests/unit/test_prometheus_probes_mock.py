"""The Prometheus and Alertmanager probes on an injected httpx.MockTransport: each check's pass and its fail with
the finding (target, observed, expected), and malformed answers — HTTP 500, no JSON, keys missing — as failed
checks with a reason, never a traceback."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from opsproof.inventory import loads
from opsproof.probes import ProbeSpec, Target, alertmanager, prometheus

if TYPE_CHECKING:  # the fixtures' types (tests/unit/conftest.py)
    from tests.unit.conftest import Answer, Serve

INV = loads("""environment: t
prometheus:
  main: {url: "http://prom.test", jobs_up: [app, redis], rules: [ServiceDown, RedisDown], no_alerts_at_or_above: high}
alertmanager:
  main: {url: "http://am.test", receivers: [oncall]}
""")
PROM = Target("prometheus", "main", INV.prometheus["main"])
AM = Target("alertmanager", "main", INV.alertmanager["main"])


def api(data: Any) -> Answer:
    """Prometheus' envelope: ``{"status": "success", "data": …}``."""
    return lambda request: httpx.Response(200, json={"status": "success", "data": data})


def plain(body: Any) -> Answer:
    return lambda request: httpx.Response(200, json=body)


def scrape_target(job: str, instance: str, health: str = "up", error: str = "") -> dict[str, Any]:
    return {"labels": {"job": job, "instance": instance}, "scrapePool": job, "health": health, "lastError": error}


def alert(name: str, severity: str, state: str = "firing") -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity}, "state": state, "activeAt": "2026-12-01T10:00:00Z"}


# --- prometheus.targets --------------------------------------------------------------------------------------


def test_targets_pass_when_every_job_is_up(serve: Serve) -> None:
    up = [scrape_target("app", "app:8000"), scrape_target("redis", "exp:9121"), scrape_target("other", "x:1", "down")]
    result = prometheus.targets(PROM, serve({"/api/v1/targets": api({"activeTargets": up})}))
    assert (result.ok, result.target, result.check) == (True, "prometheus[main]", "prometheus.targets")
    assert (result.observed, result.expected) == ("app 1/1 up, redis 1/1 up", "every target of jobs app, redis up")


def test_targets_fail_naming_the_down_instance_and_its_error(serve: Serve) -> None:
    active = [scrape_target("app", "app:8000"), scrape_target("redis", "exp:9121", "down", "connection refused")]
    result = prometheus.targets(PROM, serve({"/api/v1/targets": api({"activeTargets": active})}))
    assert result.ok is False
    assert result.explain() == ("prometheus[main]: job redis target exp:9121 is down (connection refused); "
                                "app 1/1 up, redis 0/1 up, expected every target of jobs app, redis up")


def test_targets_count_the_targets_that_are_up_of_all(serve: Serve) -> None:
    """Each job's count is its up targets of all of them, once (it read 3/3 with one of three down)."""
    active = [scrape_target("app", "a:1"), scrape_target("app", "b:1", "down"), scrape_target("app", "c:1"),
              scrape_target("redis", "exp:9121", "unknown")]
    result = prometheus.targets(PROM, serve({"/api/v1/targets": api({"activeTargets": active})}))
    assert result.ok is False
    assert result.observed == ("job app target b:1 is down; job redis target exp:9121 is unknown; "
                               "app 2/3 up, redis 0/1 up")


def test_targets_fail_on_a_job_with_no_targets(serve: Serve) -> None:
    result = prometheus.targets(PROM, serve({"/api/v1/targets": api({"activeTargets": [
        scrape_target("app", "app:8000")]})}))
    assert result.ok is False
    assert result.observed == "job redis has no targets; app 1/1 up, redis 0/0 up"


# --- prometheus.rules ----------------------------------------------------------------------------------------


def groups(*rules: tuple[str, str]) -> Answer:
    return api({"groups": [{"name": "g", "rules": [{"name": n, "health": h, "type": "alerting"} for n, h in rules]}]})


def test_rules_pass_when_every_rule_is_loaded_and_healthy(serve: Serve) -> None:
    result = prometheus.rules(PROM, serve({"/api/v1/rules": groups(("ServiceDown", "ok"), ("RedisDown", "unknown"))}))
    assert (result.ok, result.target, result.check) == (True, "prometheus[main]", "prometheus.rules")
    assert (result.observed, result.expected) == ("all 2 rules loaded", "loaded: ServiceDown, RedisDown")


def test_rules_fail_naming_the_missing_and_the_unhealthy(serve: Serve) -> None:
    result = prometheus.rules(PROM, serve({"/api/v1/rules": groups(("ServiceDown", "err"), ("Other", "ok"))}))
    assert result.ok is False
    assert result.explain() == ("prometheus[main]: not loaded: RedisDown; unhealthy: ServiceDown (err), "
                                "expected loaded: ServiceDown, RedisDown")


# --- prometheus.alerts ---------------------------------------------------------------------------------------


def test_alerts_pass_with_only_pending_and_low_alerts(serve: Serve) -> None:
    firing = [alert("Slow", "critical", state="pending"), alert("DiskFilling", "info")]
    result = prometheus.alerts(PROM, serve({"/api/v1/alerts": api({"alerts": firing})}))
    assert (result.ok, result.target, result.check) == (True, "prometheus[main]", "prometheus.alerts")
    assert (result.observed, result.expected) == ("nothing firing at ≥ high; also firing: DiskFilling (info → low)",
                                                  "no alert firing at severity ≥ high")


def test_alerts_fail_naming_what_fires_at_the_threshold(serve: Serve) -> None:
    firing = [alert("RedisDown", "critical"), alert("DiskFilling", "info")]
    result = prometheus.alerts(PROM, serve({"/api/v1/alerts": api({"alerts": firing})}))
    assert result.ok is False
    assert result.explain() == ("prometheus[main]: 1 firing at ≥ high: RedisDown (critical); also firing: "
                                "DiskFilling (info → low), expected no alert firing at severity ≥ high")


# --- prometheus.ready ----------------------------------------------------------------------------------------


def test_prometheus_ready_passes_on_200(serve: Serve) -> None:
    result = prometheus.ready(PROM, serve({"/-/ready": lambda r: httpx.Response(200, text="Prometheus is Ready.")}))
    assert (result.ok, result.target, result.check) == (True, "prometheus[main]", "prometheus.ready")
    assert result.observed == "GET /-/ready → HTTP 200"


def test_prometheus_ready_fails_while_starting(serve: Serve) -> None:
    answer = serve({"/-/ready": lambda r: httpx.Response(503, text="Service Unavailable")})
    result = prometheus.ready(PROM, answer)
    assert result.ok is False
    assert result.explain() == "prometheus[main]: GET /-/ready → HTTP 503, expected HTTP 200"


# --- alertmanager --------------------------------------------------------------------------------------------


def status(cluster: str = "ready", config: str = "route:\n  receiver: oncall\n") -> Answer:
    return plain({"cluster": {"status": cluster}, "config": {"original": config}, "uptime": "2026-12-01T10:00:00Z",
                  "versionInfo": {"version": "0.25.0"}})


@pytest.mark.parametrize("cluster", ["ready", "disabled"])
def test_alertmanager_ready_passes_with_a_ready_cluster_and_a_config(serve: Serve, cluster: str) -> None:
    result = alertmanager.ready(AM, serve({"/api/v2/status": status(cluster)}))
    assert (result.ok, result.target, result.check) == (True, "alertmanager[main]", "alertmanager.ready")
    assert (result.observed, result.expected) == (f"cluster {cluster}, config loaded, version 0.25.0",
                                                  "cluster ready or disabled, config loaded")


@pytest.mark.parametrize(("answer", "observed"), [
    (status("settling"), "cluster settling, config loaded, version 0.25.0"),
    (status(config=""), "cluster ready, config missing, version 0.25.0"),
], ids=["settling", "no config"])
def test_alertmanager_ready_fails_naming_what_is_not_ready(serve: Serve, answer: Answer, observed: str) -> None:
    result = alertmanager.ready(AM, serve({"/api/v2/status": answer}))
    assert result.ok is False
    assert result.explain() == f"alertmanager[main]: {observed}, expected cluster ready or disabled, config loaded"


def test_receivers_pass_when_configured(serve: Serve) -> None:
    result = alertmanager.receivers(AM, serve({"/api/v2/receivers": plain([{"name": "oncall"}, {"name": "x"}])}))
    assert (result.ok, result.target, result.check) == (True, "alertmanager[main]", "alertmanager.receivers")
    assert (result.observed, result.expected) == ("receivers present: oncall", "receivers oncall configured")


def test_receivers_fail_naming_the_missing_and_the_configured(serve: Serve) -> None:
    result = alertmanager.receivers(AM, serve({"/api/v2/receivers": plain([{"name": "team-b"}, {"name": "null"}])}))
    assert result.ok is False
    assert result.explain() == ("alertmanager[main]: missing receivers: oncall (configured: null, team-b), "
                                "expected receivers oncall configured")


# --- malformed answers: a failed check with the reason -------------------------------------------------------

PATHS = {prometheus.targets: "/api/v1/targets", prometheus.rules: "/api/v1/rules", prometheus.alerts: "/api/v1/alerts",
         alertmanager.ready: "/api/v2/status", alertmanager.receivers: "/api/v2/receivers"}
MALFORMED: dict[str, tuple[Answer, str]] = {  # the answer → what the finding must name
    "HTTP 500": (lambda r: httpx.Response(500, text="internal error"), r"\b500\b"),
    "not JSON": (lambda r: httpx.Response(200, text="<html>maintenance</html>"), r"JSON|Expecting value"),
    "truncated JSON": (lambda r: httpx.Response(200, text='{"status": "succ'), r"JSON|Unterminated string"),
}
# a JSON answer without the keys each API promises → the key (or the thing) the finding must name
MISSING_KEYS: dict[ProbeSpec, tuple[Answer, str]] = {
    prometheus.targets: (api({}), "activeTargets"),
    prometheus.rules: (api({"groups": [{"name": "g"}]}), "rules"),
    prometheus.alerts: (api({"alerts": [{"labels": {}}]}), "state"),
    alertmanager.ready: (plain({}), "config missing"),
    alertmanager.receivers: (plain([{"title": "oncall"}]), "name"),
}


def spec_target(spec: ProbeSpec) -> Target[Any]:
    return PROM if spec.kind == "prometheus" else AM


def assert_failed_with(result: Any, spec: ProbeSpec, reason: str) -> None:
    __tracebackhide__ = True
    target = spec_target(spec)
    assert (result.ok, result.target, result.check) == (False, target.id, spec.check), result
    assert result.expected  # which text: the declaration's (the probe seam's tests hold every probe to it)
    assert "Traceback" not in result.observed
    assert re.search(reason, result.observed), f"{result.observed!r} does not name {reason!r}"


@pytest.mark.parametrize("case", MALFORMED, ids=str)
@pytest.mark.parametrize("spec", PATHS, ids=lambda s: s.check)
def test_a_malformed_answer_is_a_failed_check_with_the_reason(serve: Serve, spec: ProbeSpec, case: str) -> None:
    answer, reason = MALFORMED[case]
    assert_failed_with(spec(spec_target(spec), serve({PATHS[spec]: answer})), spec, reason)


@pytest.mark.parametrize("spec", MISSING_KEYS, ids=lambda s: s.check)
def test_an_answer_without_the_promised_keys_is_a_failed_check_naming_them(serve: Serve, spec: ProbeSpec) -> None:
    answer, reason = MISSING_KEYS[spec]
    assert_failed_with(spec(spec_target(spec), serve({PATHS[spec]: answer})), spec, reason)


def test_prometheus_ready_on_a_server_error_names_the_status(serve: Serve) -> None:
    result = prometheus.ready(PROM, serve({"/-/ready": MALFORMED["HTTP 500"][0]}))
    assert_failed_with(result, prometheus.ready, r"HTTP 500")
