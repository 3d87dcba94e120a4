"""Alert severities as Prometheus rules spell them, mapped onto opsproof's four levels.

Public rule sets label alerts ``critical``/``warning``/``info`` (and sometimes ``page``/``error``); opsproof
judges ``critical``/``high``/``medium``/``low``. A prometheus entry's ``severity_map:`` extends or overrides
:data:`DEFAULT_SEVERITY_MAP`. A label that maps to nothing is still listed (as "also firing"), never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

from opsproof.result import Severity

DEFAULT_SEVERITY_MAP: Mapping[str, Severity] = {
    **{s.value: s for s in Severity},
    "page": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.HIGH,
    "warn": Severity.HIGH,
    "info": Severity.LOW,
}


def to_severity(label: object, severity_map: Mapping[str, Severity] | None = None) -> Severity | None:
    """The opsproof severity of an alert's ``severity`` label (case-insensitive), or None if unknown."""
    key = str(label or "").strip().lower()
    return {**DEFAULT_SEVERITY_MAP, **(severity_map or {})}.get(key)


def split_by_threshold(alerts: list[tuple[str, object]], threshold: Severity,
                       severity_map: Mapping[str, Severity] | None = None
                       ) -> tuple[list[tuple[str, object]], list[tuple[str, object]]]:
    """(at or above the threshold, the rest) of (name, severity label) pairs, each in the given order."""
    severe: list[tuple[str, object]] = []
    rest: list[tuple[str, object]] = []
    for name, label in alerts:
        level = to_severity(label, severity_map)
        (severe if level is not None and level.rank >= threshold.rank else rest).append((name, label))
    return severe, rest


def describe(alerts: list[tuple[str, object]], severity_map: Mapping[str, Severity] | None = None) -> str:
    """``"HighLatency (warning → high), Foo (none)"``: each alert with its label and what it maps to."""
    def one(name: str, label: object) -> str:
        level = to_severity(label, severity_map)
        if label in (None, ""):
            return f"{name} (no severity label)"
        return f"{name} ({label}" + ("" if level is not None and level.value == str(label) else
                                     f" → {level}" if level is not None else ", unmapped") + ")"
    return ", ".join(one(n, s) for n, s in alerts)
