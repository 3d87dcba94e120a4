"""Prometheus: `curl $PROM/api/v1/targets`, `/api/v1/rules`, `/api/v1/alerts` — read-only HTTP API."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import httpx

from opsproof.alert_ignores import Sorted, partition
from opsproof.alert_severity import describe, split_by_threshold
from opsproof.inventory import Prometheus, human_duration
from opsproof.probes import answers
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity
from opsproof.util.durations import seconds
from opsproof.util.errors import BadAnswer


def api(target: Target[Any], conns: Connections, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """GET a Prometheus or Alertmanager API path and return its decoded JSON (``data`` of Prometheus' envelope,
    the ``/api/v1/`` paths); an answer that is not what the API promises raises :class:`BadAnswer`."""
    cfg = target.config
    response = answers.get(conns.http(), cfg.url.rstrip("/") + path, params=params, headers=cfg.headers,
                           timeout=cfg.timeout_s, max_bytes=cfg.max_answer_bytes, path=path)
    return answer(response, path.split("?")[0])


def answer(response: httpx.Response, path: str) -> Any:
    """The JSON of an API answer; an HTTP error, a body that is not JSON, or (on Prometheus' ``/api/v1/`` paths)
    an envelope with ``status: error`` or no ``data`` is a :class:`BadAnswer` that says so — with Prometheus' own
    error text, which comes without ``data`` and often with HTTP 4xx/5xx."""
    try:
        body, parsed = response.json(), True
    except ValueError:
        body, parsed = None, False
    envelope = path.startswith("/api/v1/")
    if envelope and isinstance(body, dict) and body.get("status", "success") != "success":
        raise BadAnswer(f"answered status={body['status']}: {body.get('error') or 'no error text'} (from {path})")
    if not response.is_success:
        raise BadAnswer(f"answered badly: HTTP {response.status_code} from {path}")
    if not parsed:
        raise BadAnswer(f"answered with invalid JSON from {path}")
    if not envelope:
        return body
    if not isinstance(body, dict) or "data" not in body:
        raise BadAnswer(f"answered without data from {path}")
    return body["data"]


@probe("prometheus.targets", "prometheus", Severity.HIGH, "curl $PROM/api/v1/targets  # up == 1 per job",
       applies=lambda cfg: bool(cfg.jobs_up), expected=lambda cfg: f"every target of jobs {', '.join(cfg.jobs_up)} up")
def targets(target: Target[Prometheus], conns: Connections) -> Outcome:
    """Every listed scrape job has targets, and all of them are up."""
    active = api(target, conns, "/api/v1/targets?state=active")["activeTargets"]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for t in active:
        by_job.setdefault(t["labels"].get("job", t.get("scrapePool", "?")), []).append(t)
    problems: list[str] = []
    counts: list[str] = []
    for job in target.config.jobs_up:
        members = by_job.get(job, [])
        if not members:
            problems.append(f"job {job} has no targets")
        for t in members:
            if t["health"] != "up":
                problems.append(f"job {job} target {t['labels'].get('instance')} is {t['health']}"
                                + (f" ({t['lastError']})" if t.get("lastError") else ""))
        counts.append(f"{job} {sum(t['health'] == 'up' for t in members)}/{len(members)} up")
    evidence = {job: [{"instance": t["labels"].get("instance"), "health": t["health"]} for t in by_job.get(job, [])]
                for job in target.config.jobs_up}
    return Outcome(not problems, "; ".join([*problems, ", ".join(counts)]), evidence)


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
    ok, observed, _expected, evidence = judge_alerts(firing, threshold, target.config)  # expected: declared
    return Outcome(ok, observed, evidence)


def alerts_expected(threshold: Severity | None) -> str:
    return f"no alert firing at severity ≥ {threshold}"


def judge_alerts(firing: list[dict[str, Any]], threshold: Severity,
                 cfg: Prometheus) -> tuple[bool, str, str, dict[str, Any]]:
    """(ok, observed, expected, evidence) for the firing alerts: those at/above the threshold fail, the rest are
    listed, and so are those the entry's ``ignore_alerts`` accept."""
    sorted_ = partition([a["labels"] for a in firing], cfg.ignore_alerts)
    pairs: list[tuple[str, object]] = [(f"{labels.get('alertname')}", labels.get("severity"))
                                       for labels in sorted_.judged]
    severe, rest = split_by_threshold(pairs, threshold, cfg.severity_map)
    observed = (f"{len(severe)} firing at ≥ {threshold}: {describe(severe, cfg.severity_map)}" if severe
                else f"nothing firing at ≥ {threshold}")
    if rest:
        observed += f"; also firing: {describe(rest, cfg.severity_map)}"
    evidence = {"firing": [{"labels": a["labels"], "activeAt": a.get("activeAt")} for a in firing],
                **sorted_.evidence()}
    return not severe, observed + sorted_.note(), alerts_expected(threshold), evidence


def _deploy(cfg: Prometheus, now: float) -> tuple[float, str]:
    when = cfg.deploy_time(now)
    if when is None:
        raise ValueError("no deploy time: set deployed_at: on the prometheus entry (or on an slo entry)")
    return when


@probe("prometheus.new_alerts", "prometheus", Severity.CRITICAL,
       "no new critical alert since the deploy (max_over_time(ALERTS{alertstate=\"firing\"}[…]))",
       applies=lambda cfg: cfg.deploy_time(0.0) is not None,
       expected=lambda cfg: f"no alert at severity ≥ {cfg.no_alerts_at_or_above or Severity.CRITICAL} newly "
                            "firing since the deploy")
def new_alerts(target: Target[Prometheus], conns: Connections) -> Outcome:
    """No alert at or above the entry's threshold started firing since the deploy (even if resolved since). The
    deploy is the entry's ``deployed_at``, else the earliest of its slo entries' (so one check per Prometheus)."""
    cfg = target.config
    threshold = cfg.no_alerts_at_or_above or Severity.CRITICAL
    end = time.time()
    since, written = _deploy(cfg, end)
    seconds = max(1, math.ceil(end - since))

    def severe(promql: str, at: float) -> tuple[dict[frozenset[tuple[str, str]], tuple[str, object]], Sorted]:
        """The alerts at/above the threshold, by identity (their labels), and how the ignores sorted them."""
        vector = api(target, conns, "/api/v1/query", {"query": promql, "time": f"{at:.3f}"})["result"]
        kept = partition([v["metric"] for v in vector], cfg.ignore_alerts)
        found: dict[frozenset[tuple[str, str]], tuple[str, object]] = {}
        for labels in kept.judged:
            pair: tuple[str, object] = (labels.get("alertname", "?"), labels.get("severity"))
            if split_by_threshold([pair], threshold, cfg.severity_map)[0]:
                found[frozenset((k, v) for k, v in labels.items() if k not in ("alertstate", "__name__"))] = pair
        return found, kept

    during, ignored = severe(f'max_over_time(ALERTS{{alertstate="firing"}}[{seconds}s])', end)
    before, _ = severe('ALERTS{alertstate="firing"}', since)
    new = {key: pair for key, pair in during.items() if key not in before}  # the same name on other labels is new
    earlier = sorted({name for name, _ in before.values()})
    observed = (f"{len(new)} fired since the deploy: " + describe(sorted(new.values(), key=lambda p: p[0]),
                                                                  cfg.severity_map)
                if new else f"none in the {seconds} s since the deploy"
                + (f" (already firing before it: {', '.join(earlier)})" if earlier else ""))
    return Outcome(not new, observed + ignored.note(),
                   {"new": [dict(key) for key in new], "firing_before": earlier, "window_s": seconds,
                    "deploy_from": written, **ignored.evidence()})


@probe("prometheus.ready", "prometheus", Severity.HIGH, "curl -f $PROM/-/ready",
       expected=lambda cfg: "HTTP 200", root=True)
def ready(target: Target[Prometheus], conns: Connections) -> Outcome:
    """Prometheus is up and ready to serve queries."""
    cfg = target.config
    response = answers.get(conns.http(), cfg.url.rstrip("/") + "/-/ready", headers=cfg.headers, timeout=cfg.timeout_s,
                           max_bytes=cfg.max_answer_bytes, path="/-/ready")
    return Outcome(response.status_code == 200, f"GET /-/ready → HTTP {response.status_code}",
                   {"body": response.text[:200]})


# --- curl $PROM/api/v1/status/flags: storage.tsdb.retention.time ----------------------------------------

DEFAULT_RETENTION = "15d"  # Prometheus' when neither retention.time nor retention.size is set
_PROM_UNITS = {"y": 365 * 86400, "w": 7 * 86400}


def prometheus_duration(text: str) -> float:
    """Seconds in a Prometheus duration (``15d``, ``2w``, ``1y``, ``1h30m``)."""
    total, rest = 0.0, text.strip()
    for unit, size in _PROM_UNITS.items():  # the units the inventory's grammar lacks, which lead when present
        number, sep, tail = rest.partition(unit)
        if sep and number.isdigit():
            total, rest = total + int(number) * size, tail
    return total + (seconds(rest) if rest else 0.0)


def _retention(flags: Mapping[str, Any]) -> tuple[str, str]:
    """The retention time in effect, and where it comes from (the flag, the deprecated flag, the default)."""
    for flag in ("storage.tsdb.retention.time", "storage.tsdb.retention"):
        value = str(flags.get(flag) or "")
        if value and prometheus_duration(value) > 0:
            return value, flag
    size = str(flags.get("storage.tsdb.retention.size") or "0")
    if size.rstrip("B") not in ("", "0"):
        return "0s", f"none by time (storage.tsdb.retention.size {size} alone)"
    return DEFAULT_RETENTION, "the default (no retention flag set)"


@probe("prometheus.retention", "prometheus", Severity.MEDIUM,
       "curl $PROM/api/v1/status/flags  # storage.tsdb.retention.time",
       applies=lambda cfg: cfg.min_retention is not None,
       expected=lambda cfg: f"storage.tsdb.retention.time ≥ {human_duration(cfg.min_retention or 0)}")
def retention(target: Target[Prometheus], conns: Connections) -> Outcome:
    """Samples are kept at least ``min_retention`` ("scale up monitoring retention" before a maintenance): the
    retention time the server runs with, read from its flags; a size-only retention keeps no set time."""
    flags = api(target, conns, "/api/v1/status/flags")
    if not isinstance(flags, dict):
        raise BadAnswer("answered flags that are not a mapping (from /api/v1/status/flags)")
    value, source = _retention(flags)
    kept = prometheus_duration(value)
    want = target.config.min_retention or 0
    evidence = {"retention": value, "source": source, "retention_s": kept,
                "retention_size": flags.get("storage.tsdb.retention.size")}
    if kept == 0:  # kept until the size limit: how long depends on the ingest rate, not on a setting
        return Outcome(None, f"no retention time to judge: {source}", evidence)
    shown = value if source.startswith("storage.") else f"{value} ({source})"
    return Outcome(kept >= want, f"storage.tsdb.retention.time {shown}", evidence)
