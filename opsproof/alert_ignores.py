"""Accepted noisy alerts (a prometheus entry's ``ignore_alerts:``): which firing alerts the alert checks skip.

One ignore accepts the alerts it names — ``alertname`` and every label it gives match, exactly or as a glob — and
nothing else: the same alert with other labels is still judged. An ignore past its ``until`` date no longer applies;
the alert is judged again and the observation says the ignore expired. Both ``prometheus.alerts`` and
``prometheus.new_alerts`` sort their alerts with :func:`partition` and list what it skipped (``Sorted.note``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from opsproof.inventory import IgnoredAlert

Labels = Mapping[str, str]


def matches(ignore: IgnoredAlert, labels: Labels) -> bool:
    """Does ``ignore`` name the alert with these labels (its alertname and each of its labels, glob or exact)?"""
    return fnmatchcase(str(labels.get("alertname", "")), ignore.alertname) and all(
        fnmatchcase(str(labels.get(k, "")), v) for k, v in ignore.labels.items())


def spelled(ignore: IgnoredAlert, labels: Labels) -> str:
    """``NoisyAlert{instance=x}``: the alert's name and the labels the ignore matched it by."""
    shown = ",".join(f"{k}={labels.get(k, '')}" for k in ignore.labels)
    return f"{labels.get('alertname', '?')}" + (f"{{{shown}}}" if shown else "")


@dataclass
class Sorted:
    """The alerts still judged, and those an ignore applies to or would have applied to before it expired."""

    judged: list[Labels] = field(default_factory=list)
    ignored: list[tuple[Labels, IgnoredAlert]] = field(default_factory=list)
    expired: list[tuple[Labels, IgnoredAlert]] = field(default_factory=list)

    def note(self) -> str:
        """``"; ignored: NoisyAlert{instance=x} (flaps nightly, until 2027-01-31)"`` — empty when nothing was."""
        parts = []
        if self.ignored:
            parts.append("ignored: " + ", ".join(
                f"{spelled(i, a)} ({i.reason}" + (f", until {i.until}" if i.until else "") + ")"
                for a, i in self.ignored))
        if self.expired:
            parts.append("ignore expired, judged again: " + ", ".join(
                f"{spelled(i, a)} ({i.reason}, expired {i.until})" for a, i in self.expired))
        return "".join(f"; {p}" for p in parts)

    def evidence(self) -> dict[str, Any]:
        def one(labels: Labels, ignore: IgnoredAlert) -> dict[str, Any]:
            return {"labels": dict(labels), "reason": ignore.reason,
                    "until": ignore.until.isoformat() if ignore.until else None}
        return {"ignored": [one(a, i) for a, i in self.ignored],
                "expired_ignores": [one(a, i) for a, i in self.expired]}


def partition(alerts: Sequence[Labels], ignores: Sequence[IgnoredAlert], today: dt.date | None = None) -> Sorted:
    """Sort alerts (their label sets) by the ignores that name them; ``today`` defaults to the UTC date."""
    today = today or dt.datetime.now(dt.UTC).date()
    out = Sorted()
    for labels in alerts:
        named = [i for i in ignores if matches(i, labels)]
        holding = [i for i in named if i.until is None or i.until >= today]
        if holding:
            out.ignored.append((labels, holding[0]))
            continue
        out.judged.append(labels)
        if named:
            out.expired.append((labels, named[0]))
    return out
