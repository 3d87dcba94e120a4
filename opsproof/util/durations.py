"""The one duration grammar: ``90s``, ``15m``/``15min``, ``4h``, ``1d``, ``500ms``, Prometheus' ``1m30s``, or a
number of seconds."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def seconds(text: str) -> float:
    """Seconds in a duration written as text; ValueError saying how to write one."""
    if _NUMBER.match(text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"{text!r} is not a duration (write it like 90s, 15m, 4h or 1d)")
    return sum(float(n) * UNITS[u] for n, u in parts)


def parse_duration(value: Any) -> Any:
    """Text → seconds; anything else is left as it is (for a validator to judge)."""
    return seconds(value) if isinstance(value, str) else value
