"""Trend: what changed since the previous report (its JSON): new failures, fixed checks, measured values up or down
(RTO, RPO, detection times, load percentiles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FAILING = ("fail", "blocked", "timed-out")


def trend(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    before = {(r["check"], r["target"]): r for r in previous.get("results", [])}
    now = {(r["check"], r["target"]): r for r in current.get("results", [])}

    def failing(r: Mapping[str, Any] | None) -> bool:
        return r is not None and r.get("verdict") in FAILING

    def name(key: tuple[str, str]) -> str:
        return f"{key[0]}@{key[1]}"

    values = []
    for key, r in now.items():
        old = before.get(key)
        if old and isinstance(r.get("value"), int | float) and isinstance(old.get("value"), int | float) \
                and r["value"] != old["value"]:
            values.append({"check": key[0], "target": key[1], "before": old["value"], "after": r["value"],
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
    out += [f"{v['check']}@{v['target']}: {v['before']:g} → {v['after']:g} ({v['change']})" for v in change["values"]]
    return out
