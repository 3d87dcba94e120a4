"""Trend: what changed since the previous report (its JSON): new failures, fixed checks, measured values up or down
(RTO, RPO, detection times, load percentiles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsproof.result import Verdict

FAILING = frozenset(v.value for v in Verdict if v.counts_as_failure)  # fail, blocked, timed-out


def trend(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """Per check of each environment (two clusters' ``http[app]`` are two checks); against a report written before
    results named their environment, per check and target."""
    with_env = all("environment" in r for r in previous.get("results", []))

    def key(r: Mapping[str, Any]) -> tuple[str | None, str, str]:
        return (r.get("environment") if with_env else None, r["check"], r["target"])

    before = {key(r): r for r in previous.get("results", [])}
    now = {key(r): r for r in current.get("results", [])}
    several = len({k[0] for k in [*before, *now] if k[0]}) > 1

    def failing(r: Mapping[str, Any] | None) -> bool:
        return r is not None and r.get("verdict") in FAILING

    def name(k: tuple[str | None, str, str]) -> str:
        return f"{k[1]}@{k[2]}" + (f" ({k[0]})" if several and k[0] else "")

    values = []
    for k, r in now.items():
        old = before.get(k)
        if old and isinstance(r.get("value"), int | float) and isinstance(old.get("value"), int | float) \
                and r["value"] != old["value"]:
            values.append({"check": k[1], "target": k[2], **({"environment": k[0]} if several else {}),
                           "before": old["value"], "after": r["value"],
                           "change": "up" if r["value"] > old["value"] else "down"})
    return {
        "previous": {"verdict": previous.get("verdict"), "time_range": previous.get("time_range")},
        "new_failures": [name(k) for k, r in now.items() if failing(r) and not failing(before.get(k))],
        "fixed": [name(k) for k, r in before.items() if failing(r) and k in now and not failing(now[k])],
        "no_longer_run": [name(k) for k in before if k not in now],
        "values": values,
    }


def lines(change: Mapping[str, Any]) -> list[str]:
    """The trend as short lines, for Markdown and HTML."""
    out = [f"previous report: {change['previous'].get('verdict')}"]
    for label, key in (("new failures", "new_failures"), ("fixed", "fixed"), ("no longer run", "no_longer_run")):
        if change[key]:
            out.append(f"{label}: {', '.join(change[key][:20])}" + (" …" if len(change[key]) > 20 else ""))
    out += [f"{v['check']}@{v['target']}" + (f" ({v['environment']})" if v.get("environment") else "")
            + f": {v['before']:g} → {v['after']:g} ({v['change']})" for v in change["values"]]
    return out
