"""Each chaos fault and probe against the real sandbox: it does what it says, its rollback undoes it, the audit sees
what is left, and when it cannot do or see what it should it fails with a message naming the target, what it
observed and what it expected — never a traceback, never a secret."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import SandboxHelper, traffic

from opsproof.chaos import alerts, faults, pgfaults, probes, proxy, redisfaults, timeline
from opsproof.chaos.audit import audit
from opsproof.chaos.context import ChaosError

pytestmark = pytest.mark.integration


@pytest.fixture
def cfg(healthy: SandboxHelper) -> Iterator[dict[str, Any]]:
    timeline.reset()
    configuration = {"opsproof_sandbox_dir": str(healthy.box.dir)}
    yield configuration
    steps: list[Callable[[], object]] = [
        *(partial(faults.ensure_running, s, configuration=configuration) for s in ("app", "redis", "redis_exporter")),
        *(partial(proxy.proxy_clear, name, configuration) for name in proxy.PROXIES),
        partial(pgfaults.release_connections, configuration=configuration),
        partial(redisfaults.release_memory, configuration=configuration),
        partial(redisfaults.unpause_clients, configuration=configuration)]
    failed = []
    for step in steps:  # every step, even after one fails: the next test must find the sandbox whole
        try:
            step()
        except Exception as e:
            failed.append(f"{step}: {e}")
    assert not failed, failed


def health(box: Any) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(box.url("app") + "/health", timeout=5).json()
    return body


def test_unknown_and_stopped_services_are_named(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    with pytest.raises(ChaosError, match=r"^service\[nope\]: no such sandbox service, expected one of postgres, "):
        faults.kill_service("nope", configuration=cfg)
    healthy.box.stop_service("redis_exporter")
    with pytest.raises(ChaosError, match=r"^service\[redis_exporter\]: not running, expected a running process "
                                         r"to inject the fault into$"):
        faults.stop_service("redis_exporter", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^service\[redis\]: has no supervisor of its own, expected service app"):
        faults.disable_supervisor("redis", configuration=cfg)


def test_stop_resume_and_the_audit(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    out = faults.stop_service("redis_exporter", configuration=cfg)
    assert faults.proc_state(out["pid"]) == "T"
    report = audit(cfg)
    assert report.problems == [f"stopped processes: redis_exporter (pid {out['pid']})"]
    assert faults.resume_service("redis_exporter", configuration=cfg)["resumed"] is True
    assert audit(cfg).clean


def test_supervisor_disabled_is_found_and_restored(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    faults.disable_supervisor(configuration=cfg)
    killed = faults.kill_service("app", configuration=cfg)
    report = audit(cfg)
    assert "app supervisor: restarts disabled (hold file present)" in report.problems
    assert "services running: not running: app" in report.problems
    with pytest.raises(ChaosError, match=r"^http\[app\]: not recovered 0\.5 s after the fault \(unreachable "
                                         r"\(ConnectError: .*\)\), expected HTTP 200 with status='ok' within 0\.5 s$"):
        alerts.recovers_within(0.5, configuration=cfg)
    out = faults.ensure_running("app", configuration=cfg)
    assert out["actions"] == ["supervisor enabled", "waited for the keeper to restart it"]
    assert faults.service_pid(healthy.box, "app") not in (None, killed["pid"])
    alerts.recovers_within(30, configuration=cfg)
    assert audit(cfg).clean


def test_connections_held_then_released(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    out = pgfaults.exhaust_connections(ratio=0.5, configuration=cfg)
    assert out["ratio"] >= 0.5
    assert pgfaults.chaos_connections(configuration=cfg) == out["held"] > 0
    assert audit(cfg).problems == [f"postgres[main] held connections: {out['held']} connection(s) held by "
                                   "opsproof-chaos"]
    assert pgfaults.release_connections(configuration=cfg)["released"] == out["held"]
    assert audit(cfg).clean


def test_connections_beyond_the_limit_fail_and_hold_nothing(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    with pytest.raises(ChaosError, match=r"^postgres\[main\]: could hold only \d+ connection\(s\) \(.*\), "
                                         r"expected 100% of max_connections in use$") as err:
        pgfaults.exhaust_connections(ratio=1.0, configuration=cfg)
    assert healthy.box.meta["passwords"]["opsproof_monitor"] not in str(err.value)
    assert pgfaults.chaos_connections(configuration=cfg) == 0


def test_connections_short_of_the_ratio_fail_and_hold_nothing(cfg: dict[str, Any], healthy: SandboxHelper,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The holding stops at its cap before the ratio is reached: a fault that did not happen is not reported
    as injected."""
    monkeypatch.setattr(pgfaults, "MAX_HELD", 2)
    with pytest.raises(ChaosError, match=r"^postgres\[main\]: \d+ of \d+ connections in use after holding 2 \(the "
                                         r"limit of 2\), expected 90% of max_connections in use$"):
        pgfaults.exhaust_connections(ratio=0.9, configuration=cfg)
    assert pgfaults.chaos_connections(configuration=cfg) == 0
    assert timeline.first("fault_injected") is None


def test_terminate_backends_needs_the_right(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    with pytest.raises(ChaosError, match=r"^postgres\[main\]: could not terminate backends of 'opsproof-sandbox-app' "
                                         r"\(.*pg_signal_backend\), expected every backend terminated$") as err:
        pgfaults.terminate_backends("opsproof-sandbox-app", configuration=cfg)
    assert healthy.box.meta["passwords"]["opsproof_monitor"] not in str(err.value)
    admin = {**cfg, "opsproof_pg_dsn": healthy.box.dsn("postgres")}
    out = pgfaults.terminate_backends("opsproof-sandbox-app", configuration=admin)
    assert out["terminated"]
    alerts.recovers_within(30, configuration=cfg)  # the app's pool reconnects by itself
    with pytest.raises(ChaosError, match=r"^postgres\[main\]: terminated 0 of 0 backend\(s\) of 'nobody', "
                                         r"expected at least one backend, all of them terminated$"):
        pgfaults.terminate_backends("nobody", configuration=admin)


def test_redis_pause_and_fill(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    redisfaults.pause_clients(seconds=20, mode="WRITE", configuration=cfg)
    assert redisfaults.paused(configuration=cfg)
    assert "redis[cache] client pause: clients paused" in audit(cfg).problems
    redisfaults.unpause_clients(configuration=cfg)
    out = redisfaults.fill_memory(ratio=0.9, configuration=cfg)
    assert out["ratio"] >= 0.9
    keys = redisfaults.filled_keys(configuration=cfg)
    assert audit(cfg).problems == [f"redis[cache] filled memory: {keys} filled key(s) left"]
    assert redisfaults.release_memory(configuration=cfg)["deleted"] == keys
    assert audit(cfg).clean
    with pytest.raises(ChaosError, match=r"^redis\[nope\]: no such inventory entry, expected one of cache in redis$"):
        redisfaults.fill_memory(target="nope", configuration=cfg)


def test_proxy_faults_reach_the_app(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    proxy.proxy_fault("blackhole", configuration=cfg)
    assert probes.app_reports("degraded", configuration=cfg)["status"] == "degraded"
    assert "Timeout" in str(health(healthy.box)["checks"]["redis"]["error"])
    assert audit(cfg).problems == ["fault proxy proxy: fault blackhole still set"]
    proxy.proxy_fault("reset", configuration=cfg)
    assert "reset" in str(health(healthy.box)["checks"]["redis"]["error"]).lower()
    proxy.proxy_fault("latency", latency_ms=200, proxy="pgproxy", configuration=cfg)
    assert proxy.proxy_state("pgproxy", cfg)["latency_ms"] == 200
    assert health(healthy.box)["checks"]["postgres"]["latency_ms"] >= 200
    for name in proxy.PROXIES:
        proxy.proxy_clear(name, cfg)
    probes.app_reports("ok", configuration=cfg)
    assert audit(cfg).clean
    with pytest.raises(ChaosError, match=r"^proxy\[http://127\.0\.0\.1:\d+\]: refused the change \(mode 'bogus' is "
                                         r"not one of none, latency, reset, blackhole\), expected fault "):
        proxy.proxy_fault("bogus", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^proxy\[nope\]: no such fault proxy, expected one of proxy, pgproxy$"):
        proxy.proxy_fault("reset", proxy="nope", configuration=cfg)


def test_alert_probes_fail_with_their_reasons(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    with pytest.raises(ChaosError, match=r"^alert NoSuchAlert never fired within 1 s \(budget [\d.]+ s: scrape 5 "
                                         r"\+ evaluation 1 \+ for 0 \+ group_wait 1\); rule NoSuchAlert is not loaded"):
        alerts.alert_fires("NoSuchAlert", within=1, configuration=cfg)
    with pytest.raises(ChaosError, match=r"^webhook\[http://127\.0\.0\.1:\d+\]: no firing RedisDown delivered within "
                                         r"0\.3 s, expected a delivery of RedisDown$"):
        alerts.alert_delivered("RedisDown", within=0.3, configuration=cfg)
    with pytest.raises(ChaosError, match=r"^http\[app\]: GET /health → HTTP 200, status='ok' after 0\.3 s, expected "
                                         r"HTTP < 500 with status='degraded'$"):
        probes.app_reports("degraded", within=0.3, configuration=cfg)
    with pytest.raises(ChaosError, match=r"^http\[app\]: GET /items/999999 → HTTP 404, expected HTTP 200$"):
        probes.app_serves("/items/999999", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^no opsproof probe 'http.nope'; known: "):
        probes.check("http.nope", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^prometheus\[main\]: sum\(up\) = \d+ after 0\.2 s, expected ≤ 0$"):
        alerts.query_settles("sum(up)", 0, within=0.2, configuration=cfg)
    # no result is "not known yet", not 0 (rate() of a series without two samples in its window has none)
    with pytest.raises(ChaosError, match=r"^prometheus\[main\]: sum\(rate\(no_such_metric\[10s\]\)\) = no result "
                                         r"after 0\.2 s, expected ≤ 1$"):
        alerts.query_settles("sum(rate(no_such_metric[10s]))", 1, within=0.2, configuration=cfg)
    assert alerts.query_settles("sum(rate(no_such_metric[10s])) or vector(0)", 1, within=1,
                                configuration=cfg)["value"] == 0


def test_a_burst_not_yet_scraped_is_not_quiet(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    """The added-latency experiment's quiet baseline: a burst that ended just before the call is not in Prometheus
    yet; held for 2 s (two scrapes), the check sees it and waits until it has left the rule's 10 s window."""
    query = 'sum(rate(http_request_duration_seconds_bucket{le="+Inf",handler!~"/health|/ready"}[10s]))'
    assert traffic(healthy.box.url("app"), 1, concurrency=4) > 20
    called = time.time()
    settled = alerts.query_settles(query, 2, within=30, for_s=2, configuration=cfg)
    returned = time.time()
    assert settled["held_s"] >= 2
    # judged afterwards on what Prometheus now holds (the burst long scraped): the burst was there while the check
    # ran, and the stretch it held for quiet really was quiet — a check that took the not-yet-scraped burst for
    # quiet would have held across it
    assert at(healthy, f"max_over_time(({query})[{ms(returned - called)}:250ms])", returned) > 2
    assert at(healthy, f"max_over_time(({query})[{ms(settled['held_s'])}:250ms])", returned) <= 2, settled


def ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def at(sandbox: SandboxHelper, query: str, when: float) -> float:
    """The value of a PromQL ``query`` as evaluated at the instant ``when`` (an epoch time)."""
    data = httpx.get(sandbox.box.url("prometheus") + "/api/v1/query", params={"query": query, "time": when},
                     timeout=5).json()["data"]
    return max((float(r["value"][1]) for r in data["result"]), default=float("nan"))


def test_a_blind_prometheus_is_named(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    """Redis dies while its exporter is frozen: RedisDown cannot fire, and the failure says why — the rule's job
    was not being scraped — instead of leaving a bare "never fired"."""
    faults.stop_service("redis_exporter", configuration=cfg)
    try:
        faults.kill_service("redis", configuration=cfg)
        with pytest.raises(ChaosError, match=r"^alert RedisDown never fired within 4 s \(budget 5 s: .*\); "
                                             r"job redis: [2-9] of [2-9] scrapes failed \(slowest [\d.]+ s\)$"):
            alerts.alert_fires("RedisDown", within=4, configuration=cfg)
        health = alerts.scrape_health(alerts.Apis(alerts.Context.of(cfg)), ("redis", "app"), *_last(4))
        assert health["redis"]["failed"] >= 2, health
        assert health["app"]["failed"] == 0, health
    finally:
        faults.resume_service("redis_exporter", configuration=cfg)


def _last(seconds: float) -> tuple[float, float]:
    now = time.time()
    return now - seconds, now


def test_an_alert_that_fires_then_does_not_resolve(cfg: dict[str, Any], healthy: SandboxHelper) -> None:
    faults.kill_service("redis", configuration=cfg)
    fired = alerts.alert_fires("RedisDown", configuration=cfg)
    assert fired["truth_s"] <= fired["budget_s"]
    assert fired["budget_s"] == 5 + fired["budget"]["scrape_duration_s"]  # 1 + 1 + 2 + 1 and the scrape measured
    assert fired["budget"]["scrape_duration_s"] == round(fired["scrapes"]["redis"]["slowest_s"], 1)
    timeline.reset()
    timeline.mark("fault_injected", fault="a second fault while RedisDown is still active")
    with pytest.raises(ChaosError, match=r"^alert\[RedisDown\]: already active since \S+, before the fault \(\S+Z\), "
                                         r"expected an alert that fires because of the fault$"):
        alerts.alert_fires("RedisDown", within=2, configuration=cfg)
    assert list(fired["budget"]["jobs"]) == ["redis"]
    # seen after it started (how close behind is bench/bench_chaos.py's detection figure, not an assertion)
    assert fired["truth_s"] <= fired["detected_s"], fired
    with pytest.raises(ChaosError, match=r"^http\[app\]: GET /health → status='degraded', expected HTTP 200 with "
                                         r"status='ok'$"):
        probes.check("http.health", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^alertmanager\[main\]: unexpected alert\(s\) active: .*RedisDown.*, "
                                         r"expected only AppDependencyDown$"):
        alerts.no_unexpected_alerts(["AppDependencyDown"], configuration=cfg)
    with pytest.raises(ChaosError, match=r"^alert\[RedisDown\]: still active 0\.3 s later \(since .*\), "
                                         r"expected resolved$"):
        alerts.alert_resolves("RedisDown", within=0.3, configuration=cfg)
    faults.restart_service("redis", configuration=cfg)
    resolved = alerts.alert_resolves("RedisDown", within=30, configuration=cfg)
    assert resolved["source"] in ("endsAt of the resolved notification", "alertmanager (observed)")


def test_budgets_come_from_the_live_configuration(cfg: dict[str, Any]) -> None:
    from opsproof.chaos.context import Context

    with alerts.Apis(Context.of(cfg)) as apis:
        budgets = {name: alerts.detection_budget(apis, name) for name in
                   ("ServiceDown", "PostgresDown", "DatabaseConnectionsHigh", "HighLatency", "RedisDown")}
    assert {n: (b.total_s, b.jobs) for n, b in budgets.items()} == {
        "ServiceDown": (5, ("app",)), "PostgresDown": (9, ("postgres",)),
        "DatabaseConnectionsHigh": (9, ("postgres",)), "HighLatency": (5, ("app",)), "RedisDown": (5, ("redis",))}
    assert budgets["PostgresDown"].explain() == "scrape 5 + evaluation 1 + for 2 + group_wait 1"


def test_unreachable_monitoring_is_a_reason(tmp_path: Path, healthy: SandboxHelper) -> None:
    inventory = healthy.derive(tmp_path, {"prometheus.main.url": "http://127.0.0.1:9", "http.app.url":
                                          "http://127.0.0.1:9"})
    cfg = {"opsproof_inventory": str(inventory)}
    with pytest.raises(ChaosError, match=r"^prometheus\[main\]: unreachable \(ConnectError: .*\), expected an answer "
                                         r"to GET /api/v1/status/config$"):
        alerts.alert_fires("RedisDown", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^http\[app\]: GET /items/1 unreachable \(ConnectError\), "
                                         r"expected HTTP 200$"):
        probes.app_serves(configuration=cfg)


def test_chaos_probes_verify_tls_like_the_checks(cfg: dict[str, Any], healthy: SandboxHelper, tmp_path: Path) -> None:
    """An https service with a private CA: the chaos probes use the entry's verify_tls, as the smoke checks do."""
    https = {"url": f"https://127.0.0.1:{healthy.box.port('app_tls')}", "health": "/health",
             "verify_tls": str(healthy.box.dir / "tls" / "ca.pem")}
    own_ca = {**cfg, "opsproof_inventory": str(healthy.derive(tmp_path / "ca", {"http.app_tls": https}))}
    assert probes.app_reports("ok", target="app_tls", configuration=own_ca)["status"] == "ok"
    system_cas = {**cfg, "opsproof_inventory": str(healthy.derive(tmp_path / "system",
                                                                    {"http.app_tls": {**https, "verify_tls": True}}))}
    with pytest.raises(ChaosError, match=r"^http\[app_tls\]: GET /health → unreachable \(ConnectError\) after 0\.3 s"):
        probes.app_reports("ok", within=0.3, target="app_tls", configuration=system_cas)


def test_durations() -> None:
    assert [alerts.duration_s(t) for t in ("1s", "900ms", "1m30s", "5m", 2)] == [1, 0.9, 90, 300, 2]
    with pytest.raises(ValueError, match=r"^'5 minutes' is not a duration \(write it like 90s, 15m, 4h or 1d\)$"):
        alerts.duration_s("5 minutes")
    assert timeline.EVENTS == ("fault_injected", "pending", "firing", "delivered", "remediated", "recovered",
                               "resolved")
