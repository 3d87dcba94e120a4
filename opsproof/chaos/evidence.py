"""What a run proves, from its journal, its timeline and the audit: the verdict and the JSON evidence."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from opsproof import output
from opsproof.chaos import timeline
from opsproof.chaos.audit import Audit, audit
from opsproof.chaos.context import Configuration, Context
from opsproof.redact import Redactor


def _outputs(journal: dict[str, Any], func: str) -> list[dict[str, Any]]:
    return [r["output"] for r in journal.get("run") or []
            if r.get("activity", {}).get("provider", {}).get("func") == func and isinstance(r.get("output"), dict)]


def _error(run: dict[str, Any]) -> str:
    text = "".join(run.get("exception") or []).strip()
    return re.sub(r"^chaoslib\.exceptions\.ActivityFailed: (\w+\.)*\w+: ", "", text.splitlines()[-1] if text else "")


def build(journal: dict[str, Any], audit: Audit, redact: Redactor) -> dict[str, Any]:
    """The evidence document: timeline, detections (measured, truth, budget), recovery, activities, audit,
    and the verdict with the reason of every failure."""
    method = journal.get("run") or []
    rollbacks = journal.get("rollbacks") or []
    failures = [f"{r['activity'].get('name')}: {_error(r)}" for r in method if r.get("status") == "failed"]
    failures += [f"rollback {r['activity'].get('name')}: {_error(r)}" for r in rollbacks
                 if r.get("status") == "failed"]
    for phase, state in (journal.get("steady_states") or {}).items():
        for probe in (state or {}).get("probes", []) if isinstance(state, dict) else []:
            if probe.get("status") == "failed" or probe.get("tolerance_met") is False:
                failures.append(f"steady state {phase}: {probe['activity'].get('name')}: "
                                f"{_error(probe) or 'not within tolerance'}")
    status = journal.get("status", "?")
    if status != "completed":
        failures.insert(0, f"experiment {status}")
    if journal.get("deviated"):
        failures.insert(0, "the steady state deviated after the method")
    failures += [f"audit: {p}" for p in audit.problems]
    detections = _outputs(journal, "alert_fires")
    recovery = _outputs(journal, "recovers_within")
    doc = {
        "experiment": journal.get("experiment", {}).get("title"),
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
        "status": status,
        "deviated": bool(journal.get("deviated")),
        "duration_s": journal.get("duration"),
        "timeline": timeline.marks(),
        "detections": [{k: d.get(k) for k in ("alert", "starts_at", "pending_at", "detected_s", "truth_s", "budget_s",
                                             "budget", "scrapes")}
                       for d in detections],
        "recovery": recovery[0] if recovery else None,
        "activities": [{"name": r["activity"].get("name"), "type": r["activity"].get("type"),
                        "status": r.get("status"), "duration_s": r.get("duration"), "rollback": r in rollbacks,
                        **({"error": _error(r)} if r.get("status") == "failed" else {})}
                       for r in [*method, *rollbacks]],
        "rollbacks_run": len(rollbacks),
        "audit": audit.to_dict(),
        "ok": not failures,
        "failures": failures,
    }
    redacted: dict[str, Any] = json.loads(redact(json.dumps(doc, default=str)))
    return redacted


def save(journal: dict[str, Any], configuration: Configuration, title: str) -> tuple[dict[str, Any], Audit]:
    """Audit, build and write the evidence of a run as ``OUT/chaos/<slug of the title>-<UTC time>.json`` (OUT:
    ``opsproof_out``, see :mod:`opsproof.output`); the document (with its path under ``evidence``) and the audit."""
    report = audit(configuration)
    context = Context.of(configuration)
    # the inventory's name: several clusters' experiments merge in one readiness report, each keeping where it ran
    doc = {**build(journal, report, context.redact), "environment": context.inventory.environment}
    out = output.root(str((configuration or {}).get("opsproof_out") or "") or None)
    path = output.stamped(output.chaos(out), output.slug(title))
    path.write_text(json.dumps(doc, indent=2, default=str))
    return {**doc, "evidence": str(path)}, report
