"""Delivery as Alertmanager itself records it, for a stack whose receiver opsproof cannot read (a pager, Slack, a
mail relay): its notification counters per integration, failed attempts included, from its own ``/metrics``.

``alertmanager_notification_requests_total{integration}`` counts every request Alertmanager made to notify through an
integration (webhook, email, slack, pagerduty, …), once it ended, and ``…_requests_failed_total`` the failed ones
(``alertmanager_notifications_total`` is counted when a notification *starts*, before its retries: it cannot tell
a notification in flight from one delivered). The opsproof control counts them when the method starts
(:func:`remember`); an alert is delivered once its receivers' integrations have made at least one request more since
then that did not fail. Alertmanager 0.25 counts per integration, not per alert or receiver: the verdict says so,
and names the integrations it counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from opsproof.chaos import timeline
from opsproof.chaos.budget import TIMEOUT_S, Apis
from opsproof.chaos.context import ChaosError, Configuration, Context, fail, http

log = logging.getLogger("chaostoolkit")
SENT, FAILED = "alertmanager_notification_requests", "alertmanager_notification_requests_failed"  # families
EVENT = "notifications_counted"  # the timeline mark that carries the counts from before the fault


def counts(apis: Apis) -> dict[str, tuple[float, float]]:
    """integration → (requests made, failed requests), as Alertmanager counts them now."""
    am = apis.am
    url = f"{str(am.url).rstrip('/')}/metrics"
    try:
        response = http(True).get(url, headers=am.headers, timeout=am.timeout_s or TIMEOUT_S)
        response.raise_for_status()
    except httpx.HTTPError as e:
        raise fail(apis.am_id, f"GET /metrics failed ({type(e).__name__}: {apis.ctx.redact(str(e))})",
                   "Alertmanager's own metrics") from None
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name not in (SENT, FAILED):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                slot = found.setdefault(sample.labels.get("integration", "?"), [0.0, 0.0])
                slot[family.name == FAILED] += sample.value
    return {k: (v[0], v[1]) for k, v in found.items()}


def integrations(apis: Apis, receivers: Iterable[str]) -> set[str]:
    """The integrations (``webhook``, ``email``, …) of the named receivers, read from Alertmanager's running
    configuration (``/api/v2/status``): a receiver's ``<integration>_configs`` lists."""
    status = apis.am_get("/api/v2/status")
    config = yaml.safe_load(status.get("config", {}).get("original") or "") or {}
    wanted = set(receivers)
    return {key.removesuffix("_configs") for r in config.get("receivers") or [] if r.get("name") in wanted
            for key, value in r.items() if key.endswith("_configs") and value}


def remember(configuration: Configuration) -> None:
    """Count Alertmanager's notifications now (the method starts), when the inventory has one; a failure to count is
    logged, and :func:`delivered` then says there is nothing to compare with."""
    try:
        ctx = Context.of(configuration)
        if ctx.sandbox_dir is not None or (configuration or {}).get("opsproof_webhook_url"):
            return  # a receiver opsproof reads: the delivery is seen there
        if len(ctx.inventory.alertmanager) != 1 or len(ctx.inventory.prometheus) != 1:
            log.warning("opsproof: Alertmanager's notifications not counted before the fault: the inventory needs "
                        "exactly one alertmanager and one prometheus entry (it has %d and %d)",
                        len(ctx.inventory.alertmanager), len(ctx.inventory.prometheus))
            return
        timeline.mark(EVENT, counts=counts(Apis(ctx)))
    except (ChaosError, OSError, ValueError) as e:  # the alert probes report it; the experiment goes on
        log.warning("opsproof: Alertmanager's notifications not counted before the fault: %s", e)


def _before() -> dict[str, tuple[float, float]] | None:
    marks = [m for m in timeline.marks() if m["event"] == EVENT]
    return {k: (float(v[0]), float(v[1])) for k, v in marks[0]["counts"].items()} if marks else None


def delivered(apis: Apis, name: str, active: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The delivery of the active alert ``name`` as Alertmanager counts it: its receivers' integrations sent a
    notification since the method started that did not fail (None: not yet); a failure when none can be counted."""
    before = _before()
    if before is None:
        raise fail(apis.am_id, "no count of Alertmanager's notifications from before the fault (none could be "
                   "taken when the method started: the log says why)", f"a delivery of {name} to count")
    receivers = sorted({r["name"] for a in active for r in a.get("receivers", [])})
    kinds = sorted(integrations(apis, receivers))
    if not kinds:
        raise fail(apis.am_id, f"{name} goes to receiver(s) {', '.join(receivers) or '(none)'}, which have no "
                   "integration to notify through", f"a receiver that delivers {name}")
    now = counts(apis)
    sent = {k: now.get(k, (0.0, 0.0))[0] - before.get(k, (0.0, 0.0))[0] for k in kinds}
    failed = {k: now.get(k, (0.0, 0.0))[1] - before.get(k, (0.0, 0.0))[1] for k in kinds}
    succeeded = sum(sent.values()) - sum(failed.values())
    if succeeded <= 0:
        return None if not any(failed.values()) else {"failed": failed, "receivers": receivers}
    return {"source": "Alertmanager's notification counters (per integration, not per alert)",
            "receivers": receivers, "integrations": kinds, "sent": sent, "failed": failed}
