"""Inline SVG for the HTML report (no script, no external file): a chaos experiment's timeline against its budget,
and a load run's latency by percentile.

fault → pending → firing → delivered → remediated → recovered → resolved, on one axis of seconds since the fault,
with the detection budget drawn as a band: a mark right of the band is a late detection, at a glance.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

ORDER = ("fault_injected", "pending", "firing", "delivered", "remediated", "recovered", "resolved")
LABELS = {"fault_injected": "fault", "pending": "pending", "firing": "firing", "delivered": "delivered",
          "remediated": "remediated", "recovered": "recovered", "resolved": "resolved"}
WIDTH, LEFT, RIGHT = 720, 20, 20


def chaos_timeline(marks: Sequence[Mapping[str, Any]], budget_s: float | None) -> str:
    """The SVG of one experiment's marks (``timeline`` of its evidence); empty when it has no fault mark."""
    fault = next((float(m["at"]) for m in marks if m.get("event") == "fault_injected"), None)
    if fault is None:
        return ""
    shown = [(str(m["event"]), float(m["at"]) - fault, _detail(m)) for m in marks if m.get("event") in LABELS]
    span = max([t for _, t, _ in shown] + [budget_s or 0.0, 1.0]) * 1.08
    scale = (WIDTH - LEFT - RIGHT) / span

    def x(t: float) -> float:
        return LEFT + max(t, 0.0) * scale

    rows = len(shown)
    height = 40 + 18 * rows
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img" '
             f'aria-label="chaos timeline" font-size="11" font-family="sans-serif">',
             f'<line x1="{LEFT}" y1="20" x2="{WIDTH - RIGHT}" y2="20" stroke="#555"/>']
    if budget_s:
        parts.append(f'<rect x="{LEFT}" y="14" width="{x(budget_s) - LEFT:.1f}" height="12" fill="#cfe8d4">'
                     f'<title>detection budget {budget_s:g} s</title></rect>'
                     f'<text x="{x(budget_s) + 3:.1f}" y="12" fill="#0a6b2b">budget {budget_s:g} s</text>')
    for row, (event, t, detail) in enumerate(shown):
        y = 40 + 18 * row
        colour = "#a40e0e" if event in ("firing", "delivered") and budget_s and t > budget_s else "#222"
        label = html.escape(f"{LABELS[event]} +{t:.2f} s {detail}".strip())
        parts.append(f'<line x1="{x(t):.1f}" y1="20" x2="{x(t):.1f}" y2="{y - 4}" stroke="#999" '
                     f'stroke-dasharray="2,2"/><circle cx="{x(t):.1f}" cy="20" r="3.5" fill="{colour}"/>'
                     f'<text x="{min(x(t), WIDTH - 260):.1f}" y="{y + 6}" fill="{colour}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _detail(mark: Mapping[str, Any]) -> str:
    for key in ("alert", "fault", "action", "target"):
        if mark.get(key):
            return f"({mark[key]})"
    return ""


PERCENTILES = ("p(50)", "p(90)", "p(95)", "p(99)", "p(99.9)", "p(100)")
COLOURS = ("#1f4e9c", "#b3541e", "#2e7d32", "#6a1b9a", "#00838f", "#5d4037")


def latency_percentiles(distribution: Mapping[str, Any]) -> str:
    """A load run's latency by percentile (log scale, ms), one line per request name and the total; empty when the
    run has no figures."""
    import math

    series = {name: [float(us[p]) / 1000 for p in PERCENTILES]
              for name, us in distribution.items() if name != "scenario" and isinstance(us, Mapping)
              and all(isinstance(us.get(p), int | float) and us[p] > 0 for p in PERCENTILES)}
    if not series:
        return ""
    low = min(min(v) for v in series.values())
    high = max(max(v) for v in series.values())
    top, bottom = math.log10(high * 1.3), math.log10(max(low / 1.3, 1e-3))
    width, height, left, pad = 560, 220, 60, 20

    def y(ms: float) -> float:
        return pad + (top - math.log10(ms)) / (top - bottom) * (height - 2 * pad)

    def x(i: int) -> float:
        return left + i * (width - left - 120) / (len(PERCENTILES) - 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" role="img" '
             'aria-label="latency by percentile" font-size="11" font-family="sans-serif">']
    for tick in range(math.floor(bottom), math.ceil(top) + 1):
        ms = 10.0 ** tick
        if bottom <= tick <= top:
            parts.append(f'<line x1="{left}" x2="{width - 120}" y1="{y(ms):.1f}" y2="{y(ms):.1f}" stroke="#ddd"/>'
                         f'<text x="{left - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:g} ms</text>')
    for i, name in enumerate(PERCENTILES):
        parts.append(f'<text x="{x(i):.1f}" y="{height + 8}" text-anchor="middle">{html.escape(name)}</text>')
    for n, (name, values) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        label = html.escape(f"{name}: p95 {values[2]:.1f} ms, p99 {values[3]:.1f} ms")
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
                     f'<title>{label}</title></polyline>'
                     f'<text x="{width - 114}" y="{pad + 14 * n:.1f}" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
