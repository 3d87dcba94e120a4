"""The alert lifecycle: an alert fires within its budget, reaches Alertmanager, is delivered, and resolves.

Truth comes from Alertmanager's v2 API: an alert's ``startsAt`` is the evaluation at which Prometheus turned it
firing. The detection budget is computed from the live configuration, never assumed:

    budget = scrape interval of the rule's job(s)  (Prometheus /api/v1/status/config)
           + the slowest of their scrapes after the fault, measured (a sample is seen when its scrape ends)
           + the rule group's evaluation interval  (/api/v1/rules)
           + the rule's ``for``                      (/api/v1/rules)
           + Alertmanager's ``group_wait``          (/api/v2/status, the running configuration)

Runbook lines they replace: ``amtool alert query alertname=X``, ``curl $PROM/api/v1/alerts``, watching the pager.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from opsproof.chaos import notifications, timeline

# the detection budget and its readers moved to budget.py; re-exported here for callers of alerts.X
from opsproof.chaos.budget import POLL_S, TIMEOUT_S, _blind_spots, _iso, _iso_of
from opsproof.chaos.budget import Apis as Apis
from opsproof.chaos.budget import Budget as Budget
from opsproof.chaos.budget import detection_budget as detection_budget
from opsproof.chaos.budget import duration_s as duration_s
from opsproof.chaos.budget import scrape_health as scrape_health
from opsproof.chaos.context import ChaosError, Configuration, Context, fail, http
from opsproof.chaos.faults import supervisor_restarts
from opsproof.probes import Connections
from opsproof.probes import http as http_probes


def _pending_since(apis: Apis, name: str) -> float | None:
    for a in apis.prom_get("/api/v1/alerts")["alerts"]:
        if a["labels"].get("alertname") == name and a.get("activeAt"):
            return _iso(a["activeAt"])
    return None


def alert_fires(name: str, labels: Mapping[str, str] | None = None, within: float | None = None,
                allowance_s: float = 0.0, configuration: Configuration = None) -> dict[str, Any]:
    """The alert is active in Alertmanager within ``within`` s (default: twice its budget) of the fault, and
    fired (``startsAt``) within its budget. ``allowance_s`` is added to the budget when the symptom itself takes
    time to be measurable (a request slowed to 0.6 s is observed only when it ends); it is reported."""
    with Apis(Context.of(configuration)) as apis:
        return _fires(apis, name, labels, within, allowance_s)


def _fires(apis: Apis, name: str, labels: Mapping[str, str] | None, within: float | None,
           allowance_s: float) -> dict[str, Any]:
    budget = detection_budget(apis, name, allowance_s)
    wait = float(within) if within else round(2 * budget.total_s, 3)
    injected = timeline.first("fault_injected") or time.time()
    deadline = injected + wait
    while True:
        found = apis.active(name, labels)
        now = time.time()
        if found:
            break
        if now >= deadline:
            note = f"; {'; '.join(budget.notes)}" if budget.notes else ""
            note += _blind_spots(scrape_health(apis, budget.jobs, injected, now))
            raise ChaosError(f"alert {name} never fired within {wait:g} s (budget {budget.total_s:g} s: "
                             f"{budget.explain()}){note}")
        time.sleep(POLL_S)
    alert = min(found, key=lambda a: _iso(a["startsAt"]))
    starts = _iso(alert["startsAt"])
    if starts < injected:
        raise fail(f"alert[{name}]", f"already active since {alert['startsAt']}, before the fault "
                   f"({_iso_of(injected)})", "an alert that fires because of the fault")
    pending = _pending_since(apis, name)
    if pending is not None:
        timeline.mark("pending", at=pending, alert=name)
    timeline.mark("firing", at=starts, alert=name, seen_at=now, starts_at=alert["startsAt"])
    health = scrape_health(apis, budget.jobs, injected, starts)
    slowest = max((float(f.get("slowest_s") or 0) for f in health.values()), default=0.0)
    budget = replace(budget, scrape_duration_s=round(slowest, 1))
    result = {"alert": name, "labels": alert["labels"], "starts_at": alert["startsAt"], "seen_at": now,
              "pending_at": pending, "injected_at": injected, "detected_s": round(now - injected, 3),
              "truth_s": round(starts - injected, 3), "budget_s": budget.total_s, "budget": budget.to_dict(),
              "scrapes": health}
    if starts - injected > budget.total_s:
        went_pending = f", pending {pending - injected:.1f} s after it" if pending is not None else ""
        raise fail(f"alert[{name}]", f"fired {starts - injected:.1f} s after the fault{went_pending}",
                   f"within its budget {budget.total_s:g} s ({budget.explain()}){_blind_spots(health)}")
    return result


def _webhook(ctx: Context, configuration: Configuration) -> str:
    url = (configuration or {}).get("opsproof_webhook_url")
    return str(url).rstrip("/") if url else ctx.sandbox.url("webhook")


def _deliveries(url: str) -> list[dict[str, Any]]:
    try:
        response = http().get(f"{url}/deliveries", timeout=TIMEOUT_S)
        response.raise_for_status()
    except httpx.HTTPError as e:
        raise fail(f"webhook[{url}]", f"unreachable ({type(e).__name__}: {e})", "GET /deliveries answering") from None
    try:
        data: list[dict[str, Any]] = response.json()
    except ValueError:
        raise fail(f"webhook[{url}]", f"GET /deliveries answered no JSON ({response.text[:80]!r})",
                   "a JSON list of deliveries") from None
    return data


def _matching(deliveries: list[dict[str, Any]], name: str, status: str, since: float) -> list[tuple[float, Any]]:
    out = []
    for d in deliveries:
        for a in d["payload"].get("alerts", []):
            if (a["labels"].get("alertname") == name and a.get("status") == status
                    and float(d["received_at"]) >= since):
                out.append((float(d["received_at"]), a))
    return sorted(out, key=lambda pair: pair[0])


def alert_delivered(name: str, within: float = 15, configuration: Configuration = None) -> dict[str, Any]:
    """The firing alert reached its receiver: the sandbox webhook's record, or ``opsproof_webhook_url``'s; on a
    stack with neither, Alertmanager's own count of notifications that did not fail (:mod:`.notifications`)."""
    ctx = Context.of(configuration)
    injected = timeline.first("fault_injected") or time.time()
    deadline = time.time() + float(within)
    if ctx.sandbox_dir is None and not (configuration or {}).get("opsproof_webhook_url"):
        return _counted_delivery(ctx, name, within, injected, deadline)
    url = _webhook(ctx, configuration)
    while not (hits := _matching(_deliveries(url), name, "firing", injected)):
        if time.time() >= deadline:
            raise fail(f"webhook[{url}]", f"no firing {name} delivered within {within:g} s",
                       f"a delivery of {name}")
        time.sleep(POLL_S)
    received, alert = hits[0]
    timeline.mark("delivered", at=received, alert=name)
    return {"alert": name, "delivered_at": received, "delivered_s": round(received - injected, 3),
            "starts_at": alert.get("startsAt")}


def _counted_delivery(ctx: Context, name: str, within: float, injected: float, deadline: float) -> dict[str, Any]:
    """``alert_delivered`` by Alertmanager's own notification counters (a receiver opsproof cannot read)."""
    with Apis(ctx) as apis:
        found: dict[str, Any] | None = None
        while (found := notifications.delivered(apis, name, apis.active(name))) is None or "source" not in found:
            if time.time() >= deadline:
                why = (f"every request to notify through {', '.join(found['failed'])} since the fault failed "
                       f"({', '.join(f'{k}: {v:g} failed' for k, v in found['failed'].items())}, "
                       "alertmanager_notification_requests_failed_total)") if found else \
                    f"no notification of {name} sent within {within:g} s"
                raise fail(apis.am_id, why, f"a delivery of {name}")
            time.sleep(POLL_S)
    seen = time.time()
    timeline.mark("delivered", at=seen, alert=name, source=found["source"])
    return {"alert": name, "delivered_at": seen, "delivered_s": round(seen - injected, 3), **found}


def alert_resolves(name: str, within: float = 30, configuration: Configuration = None) -> dict[str, Any]:
    """The alert is no longer active in Alertmanager within ``within`` s; its resolution time is the ``endsAt``
    of the resolved notification when the receiver got one."""
    ctx = Context.of(configuration)
    deadline = time.time() + float(within)
    with Apis(ctx) as apis:
        while active := apis.active(name):
            if time.time() >= deadline:
                raise fail(f"alert[{name}]", f"still active {within:g} s later (since {active[0]['startsAt']})",
                           "resolved")
            time.sleep(POLL_S)
    seen = time.time()
    resolved_at, source = seen, "alertmanager (observed)"
    if ctx.sandbox_dir is not None or (configuration or {}).get("opsproof_webhook_url"):
        injected = timeline.first("fault_injected") or 0.0
        url = _webhook(ctx, configuration)
        end = time.time() + 5
        while not (hits := _matching(_deliveries(url), name, "resolved", injected)) and time.time() < end:
            time.sleep(POLL_S)
        if hits:
            resolved_at, source = _iso(hits[0][1]["endsAt"]), "endsAt of the resolved notification"
    timeline.mark("resolved", at=resolved_at, alert=name)
    return {"alert": name, "resolved_at": resolved_at, "source": source, "seen_at": seen}


def no_unexpected_alerts(expected: list[str] | None = None, configuration: Configuration = None) -> bool:
    """Nothing fires in Alertmanager but the ``expected`` alerts (a steady-state probe: true, or the finding)."""
    with Apis(Context.of(configuration)) as apis:
        active: list[dict[str, Any]] = apis.am_get("/api/v2/alerts", active="true", silenced="false")
    names = sorted({a["labels"].get("alertname", "?") for a in active})
    unexpected = [n for n in names if n not in (expected or [])]
    if unexpected:
        raise fail(apis.am_id, f"unexpected alert(s) active: {', '.join(unexpected)}",
                   f"only {', '.join(expected or []) or 'none'}")
    return True


def recovers_within(seconds: float, target: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """The service's health check passes again within ``seconds`` of the fault (``curl -f $URL/health``)."""
    ctx = Context.of(configuration)
    service = ctx.target("http", target)
    target_id = service.id
    injected = timeline.first("fault_injected") or time.time()
    deadline = injected + float(seconds)
    conns = Connections()
    try:
        while True:
            result = http_probes.health(service, conns)
            if result.ok:
                break
            if time.time() >= deadline:
                raise fail(target_id, f"not recovered {seconds:g} s after the fault ({result.observed})",
                           f"{result.expected} within {seconds:g} s")
            time.sleep(POLL_S)
    finally:
        conns.close()
    recovered = time.time()
    if ctx.sandbox_dir is not None:
        for at in supervisor_restarts(ctx.sandbox, since=injected):
            timeline.mark("remediated", at=at, action="supervisor restarted app")
    remediated = timeline.last("remediated")
    timeline.mark("recovered", at=recovered, target=target_id)
    return {"target": target_id, "recovered_at": recovered, "recovery_s": round(recovered - injected, 3),
            "target_s": float(seconds), "since_remediation_s": None if remediated is None
            else round(recovered - remediated, 3)}


def query_settles(query: str, at_most: float, within: float = 30, for_s: float = 0,
                  configuration: Configuration = None) -> dict[str, Any]:
    """Wait until a PromQL ``query`` is at most ``at_most`` and stays so for ``for_s`` seconds (e.g. the request
    rate before a latency fault, so the alert is measured against a quiet baseline). ``for_s`` of a scrape interval
    or two covers what Prometheus has not ingested yet: requests made just before the call show in the next scrape
    (a burst that ended 0.3 s earlier passed for quiet, then diluted the alert's window). No result is not 0 but
    "not known yet": rate() of a series with fewer than two samples in its window has no value. Write
    ``… or vector(0)`` where absence does mean 0."""
    ctx = Context.of(configuration)
    deadline = time.time() + float(within)
    quiet_since: float | None = None
    with Apis(ctx) as apis:
        while True:
            result = apis.prom_get("/api/v1/query", query=query)["result"]
            value = max((float(r["value"][1]) for r in result), default=None)
            now = time.time()
            if value is not None and value <= at_most:
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since >= float(for_s):
                    return {"query": query, "value": value, "held_s": round(now - quiet_since, 3)}
            else:
                quiet_since = None
            if now >= deadline:
                observed = "no result" if value is None else f"{value:g}"
                held = f" (≤ {at_most:g} for only {now - quiet_since:.1f} s)" if quiet_since is not None else ""
                raise fail(apis.prom_id, f"{query} = {observed} after {within:g} s{held}",
                           f"≤ {at_most:g}" + (f" for {float(for_s):g} s" if for_s else ""))
            time.sleep(POLL_S * 5)
