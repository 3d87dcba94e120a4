"""Alert rule content: `curl $PROM/api/v1/rules?type=alert` — each rule the runbook relies on is loaded *with* the
threshold, the ``for:`` and the labels the runbook states (its ``query``, ``duration`` and ``labels``), found by its
name or by what it watches."""

from __future__ import annotations

from typing import Any

from opsproof.inventory.base import human_duration
from opsproof.inventory.queries import compare, fmt
from opsproof.inventory.rules import AlertRule, comparisons, squeeze
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.prometheus import api
from opsproof.result import Severity
from opsproof.util.errors import BadAnswer

LISTED = 12  # rule names shown when the one asked for is not found


def expected(cfg: AlertRule) -> str:
    parts = [f"alert {cfg.alert}" if cfg.alert else (f"a rule watching {cfg.watches}" if cfg.watches else "")]
    parts += [f"expr containing {p}" for p in cfg.expr_contains]
    if cfg.threshold:
        parts.append(f"compares {cfg.threshold}")
    if cfg.for_ is not None:
        parts.append(f"for {_duration(cfg.for_)}")
    parts += [f"{k}={v}" for k, v in sorted(cfg.labels.items())]
    return ", ".join(p for p in parts if p)


def _duration(seconds: float) -> str:
    return human_duration(seconds) if seconds else "0s"


@probe("prometheus.rule_content", "prometheus", Severity.HIGH,
       "curl $PROM/api/v1/rules?type=alert  # the rule's expr, threshold, for: and severity are the runbook's",
       applies=lambda cfg: isinstance(cfg, AlertRule), expected=expected, each=("rule", lambda cfg: cfg.alert_rules))
def rule_content(target: Target[AlertRule], conns: Connections) -> Outcome:
    """The alert rule is loaded with the expression, threshold, ``for:`` and labels the runbook states."""
    cfg = target.config
    assert target.part is not None
    name = cfg.alert or (None if cfg.watches else target.part[1])
    groups = api(target.entry, conns, "/api/v1/rules?type=alert")["groups"]
    try:
        rules = [r for g in groups for r in g["rules"] if r.get("type", "alerting") == "alerting"]
        loaded = sorted({str(r["name"]) for r in rules})
    except (KeyError, TypeError):
        raise BadAnswer("answered rules without names (from /api/v1/rules)") from None
    if name is not None:
        found = [r for r in rules if r["name"] == name]
        if cfg.watches:
            found = [r for r in found if squeeze(cfg.watches) in squeeze(str(r.get("query", "")))]
    else:
        found = [r for r in rules if squeeze(str(cfg.watches)) in squeeze(str(r.get("query", "")))]
    if not found:
        shown = ", ".join(loaded[:LISTED]) + (f" and {len(loaded) - LISTED} more" if len(loaded) > LISTED else "")
        what = f"no alert rule {name}" + (f" watching {cfg.watches}" if cfg.watches else "") if name else \
            f"no rule watches {cfg.watches}"
        return Outcome(False, f"{what} (rules: {shown or 'none loaded'})", {"loaded": loaded})
    judged = [(r, problems(cfg, r)) for r in found]
    judged.sort(key=lambda j: len(j[1]))  # a rule that says it all first, else the one that misses least
    rule, wrong = judged[0]
    evidence = {"rules": [{"name": r["name"], "query": r.get("query"), "duration": r.get("duration"),
                           "labels": r.get("labels", {}), "health": r.get("health")} for r, _ in judged[:10]]}
    prefix = "" if name else f"{rule['name']}: "
    if wrong:
        others = f" (and {len(judged) - 1} other rule(s) watching it, no closer)" if len(judged) > 1 else ""
        return Outcome(False, prefix + "; ".join(wrong) + others, evidence)
    return Outcome(True, prefix + summary(cfg, rule), evidence)


def problems(cfg: AlertRule, rule: dict[str, Any]) -> list[str]:
    """What the rule says that the runbook's does not: ``for 1m``, ``severity=warning``, ``compares > 0.1``."""
    query = str(rule.get("query", ""))
    out = [f"expr {query} has no {p}" for p in cfg.expr_contains if squeeze(p) not in squeeze(query)]
    if cfg.comparison is not None:
        op, number = cfg.comparison
        found = comparisons(query)
        if not any(o == op and compare(n, "==", number) for o, n in found):
            out.append(f"compares {', '.join(f'{o} {fmt(n)}' for o, n in found)}" if found
                       else f"expr {query} compares with no number")
    if cfg.for_ is not None:
        duration = float(rule.get("duration", 0) or 0)
        if duration != cfg.for_:
            out.append(f"for {_duration(duration)}")
    labels = rule.get("labels") or {}
    out += [f"{k}={labels[k]}" if k in labels else f"no {k} label" for k, v in sorted(cfg.labels.items())
            if labels.get(k) != v]
    if rule.get("health") == "err":
        out.append(f"unhealthy: {rule.get('lastError') or 'evaluation fails'}")
    return out


def summary(cfg: AlertRule, rule: dict[str, Any]) -> str:
    """A pass, as a finding: what was compared, the ``for:`` and the labels asked for."""
    parts = []
    if cfg.comparison is not None:
        parts.append(f"compares {cfg.comparison[0]} {fmt(cfg.comparison[1])}")
    parts.append(f"for {_duration(float(rule.get('duration', 0) or 0))}")
    labels = rule.get("labels") or {}
    parts += [f"{k}={labels.get(k)}" for k in sorted(cfg.labels)]
    if cfg.expr_contains:
        parts.append(f"expr has {', '.join(cfg.expr_contains)}")
    return ", ".join(parts)
