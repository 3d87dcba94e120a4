"""Prometheus: `curl $PROM/api/v1/targets`, `/api/v1/rules`, `/api/v1/alerts` — read-only HTTP API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsproof.alert_severity import describe, split_by_threshold
from opsproof.inventory import Prometheus
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity


def api(target: Target[Any], conns: Connections, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """GET a Prometheus or Alertmanager API path and return its decoded JSON (``data`` for Prometheus)."""
    cfg = target.config
    response = conns.http().get(cfg.url.rstrip("/") + path, params=params, headers=cfg.headers,
                                timeout=cfg.timeout_s)
    response.raise_for_status()
    body = response.json()
    if isinstance(body, dict) and "status" in body and "data" in body:
        if body["status"] != "success":
            raise RuntimeError(f"{path}: {body.get('error', body['status'])}")
        return body["data"]
    return body


@probe("prometheus.targets", "prometheus", Severity.HIGH, "curl $PROM/api/v1/targets  # up == 1 per job",
       applies=lambda cfg: bool(cfg.jobs_up), expected=lambda cfg: f"every target of jobs {', '.join(cfg.jobs_up)} up")
def targets(target: Target[Prometheus], conns: Connections) -> Outcome:
    """Every listed scrape job has targets, and all of them are up."""
    active = api(target, conns, "/api/v1/targets?state=active")["activeTargets"]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for t in active:
        by_job.setdefault(t["labels"].get("job", t.get("scrapePool", "?")), []).append(t)
    problems: list[str] = []
    for job in target.config.jobs_up:
        members = by_job.get(job, [])
        if not members:
            problems.append(f"job {job} has no targets")
        for t in members:
            if t["health"] != "up":
                problems.append(f"job {job} target {t['labels'].get('instance')} is {t['health']}"
                                + (f" ({t['lastError']})" if t.get("lastError") else ""))
    evidence = {job: [{"instance": t["labels"].get("instance"), "health": t["health"]} for t in by_job.get(job, [])]
                for job in target.config.jobs_up}
    counts = ", ".join(f"{j} {len(by_job.get(j, []))}/{len(by_job.get(j, []))} up" for j in target.config.jobs_up)
    return Outcome(not problems, "; ".join(problems) or counts, evidence)


@probe("prometheus.rules", "prometheus", Severity.HIGH, "curl $PROM/api/v1/rules  # the alert rules are loaded",
       applies=lambda cfg: bool(cfg.rules), expected=lambda cfg: f"loaded: {', '.join(cfg.rules)}")
def rules(target: Target[Prometheus], conns: Connections) -> Outcome:
    """The alert rules the runbooks rely on are loaded (and healthy)."""
    groups = api(target, conns, "/api/v1/rules?type=alert")["groups"]
    loaded = {r["name"]: r.get("health", "ok") for g in groups for r in g["rules"]}
    missing = [r for r in target.config.rules if r not in loaded]
    unhealthy = [f"{r} ({loaded[r]})" for r in target.config.rules if loaded.get(r) not in (None, "ok", "unknown")]
    problems = ([f"not loaded: {', '.join(missing)}"] if missing else []) + (
        [f"unhealthy: {', '.join(unhealthy)}"] if unhealthy else [])
    return Outcome(not problems, "; ".join(problems) or f"all {len(target.config.rules)} rules loaded",
                   {"loaded": sorted(loaded)})


@probe("prometheus.alerts", "prometheus", Severity.CRITICAL, "curl $PROM/api/v1/alerts  # nothing firing",
       applies=lambda cfg: cfg.no_alerts_at_or_above is not None,
       expected=lambda cfg: alerts_expected(cfg.no_alerts_at_or_above))
def alerts(target: Target[Prometheus], conns: Connections) -> Outcome:
    """No alert is firing at or above the configured severity."""
    threshold = target.config.no_alerts_at_or_above
    assert threshold is not None
    firing = [a for a in api(target, conns, "/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    ok, observed, _expected = judge_alerts(firing, threshold, target.config.severity_map)  # expected: declared
    return Outcome(ok, observed, {"firing": [{"labels": a["labels"], "activeAt": a.get("activeAt")} for a in firing]})


def alerts_expected(threshold: Severity | None) -> str:
    return f"no alert firing at severity ≥ {threshold}"


def judge_alerts(firing: list[dict[str, Any]], threshold: Severity,
                 severity_map: Mapping[str, Severity]) -> tuple[bool, str, str]:
    """(ok, observed, expected) for the firing alerts: those at/above the threshold fail, the rest are listed."""
    pairs = [(f"{a['labels'].get('alertname')}", a["labels"].get("severity")) for a in firing]
    severe, rest = split_by_threshold(pairs, threshold, severity_map)
    observed = (f"{len(severe)} firing at ≥ {threshold}: {describe(severe, severity_map)}" if severe
                else f"nothing firing at ≥ {threshold}")
    if rest:
        observed += f"; also firing: {describe(rest, severity_map)}"
    return not severe, observed, alerts_expected(threshold)


@probe("prometheus.ready", "prometheus", Severity.HIGH, "curl -f $PROM/-/ready",
       expected=lambda cfg: "HTTP 200", root=True)
def ready(target: Target[Prometheus], conns: Connections) -> Outcome:
    """Prometheus is up and ready to serve queries."""
    cfg = target.config
    response = conns.http().get(cfg.url.rstrip("/") + "/-/ready", headers=cfg.headers, timeout=cfg.timeout_s)
    return Outcome(response.status_code == 200, f"GET /-/ready → HTTP {response.status_code}",
                   {"body": response.text[:200]})
