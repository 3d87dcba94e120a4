"""PromQL thresholds — the runbooks' alert expressions as checks: `curl $PROM/api/v1/query_range --data-urlencode
'query=EXPR'`, every series judged against its threshold.

With ``for:`` the expression is evaluated over the window at the scrape interval's resolution (a range query, one
evaluation per ``step``, by default the server's global ``scrape_interval``): a series passes only when the
condition held at every evaluation, as an alert's ``for`` asks. Without it, one instant query now. An expression
that returns no series, or only NaN, is "no data" — a failure unless the query says ``absent_ok: true``: never a
green check on nothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import yaml

from opsproof.inventory import PromQuery, human_duration
from opsproof.inventory.queries import MAX_POINTS, compare, fmt
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.prometheus import api
from opsproof.result import Severity
from opsproof.util.durations import seconds
from opsproof.util.errors import BadAnswer

SHOWN = 5  # failing series named in the message; the evidence has up to EVIDENCE_SERIES
EVIDENCE_SERIES = 50


@dataclass(frozen=True)
class Series:
    """One series of the answer: its labels and its values at each evaluation (NaN kept, judged as no value)."""

    labels: dict[str, str]
    values: tuple[float, ...]

    @property
    def numbers(self) -> list[float]:
        return [v for v in self.values if not math.isnan(v)]

    def shown(self) -> str:
        """``instance="db1", job="pg"`` (the metric name left out: the query names it)."""
        text = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k != "__name__")
        return text if len(text) <= 200 else text[:199] + "…"


def expected(cfg: PromQuery) -> str:
    return f"{cfg.op} {fmt(cfg.threshold, cfg.unit)}" + (" (or no series)" if cfg.absent_ok else "")


@probe("prometheus.query", "prometheus", Severity.HIGH,
       "curl $PROM/api/v1/query_range --data-urlencode 'query=EXPR'  # every series within its threshold",
       applies=lambda cfg: isinstance(cfg, PromQuery), expected=expected, each=("query", lambda cfg: cfg.queries))
def query(target: Target[PromQuery], conns: Connections) -> Outcome:
    """Every series of a named PromQL expression satisfies its threshold, now or at every evaluation over ``for``."""
    cfg = target.config
    source = target.entry
    end = time.time()
    if cfg.for_ is None:
        data = api(source, conns, "/api/v1/query", {"query": cfg.expr, "time": f"{end:.3f}"})
        return judge(cfg, parse(data), None, None)
    if isinstance(cfg.for_, float):
        window = cfg.for_
    else:  # since the deploy
        deploy = source.config.deploy_time(end)
        if deploy is None:
            return Outcome(False, "no deploy time to judge since: set deployed_at: on the prometheus entry (or on "
                                  "an slo entry read from it)")
        window = max(1.0, end - deploy[0])
    step = cfg.step or scrape_interval(source, conns)
    step = max(step, window / MAX_POINTS)  # Prometheus answers at most 11,000 evaluations per series
    data = api(source, conns, "/api/v1/query_range",
               {"query": cfg.expr, "start": f"{end - window:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
    return judge(cfg, parse(data), window, step)


def scrape_interval(source: Target[Any], conns: Connections) -> float:
    """The server's global ``scrape_interval`` (its default, 1m, when its configuration says none)."""
    config = api(source, conns, "/api/v1/status/config")
    try:
        parsed = yaml.safe_load(config["yaml"]) or {}
        return seconds(str((parsed.get("global") or {}).get("scrape_interval", "1m")))
    except (yaml.YAMLError, ValueError, AttributeError) as e:
        raise BadAnswer(f"answered a configuration without a readable scrape_interval ({e}); set step: on the "
                        "query") from None


def parse(data: Any) -> list[Series]:
    """The series of a query's ``data``: a vector or a matrix (each series' values), or a scalar (one series
    without labels). A string, or native-histogram samples, cannot be compared: a :class:`BadAnswer`."""
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return [Series({}, (float(result[1]),))]
    if kind not in ("vector", "matrix"):
        raise BadAnswer(f"answered a {kind}, not numbers: write an expression whose value is a number")
    out = []
    for s in result:
        if "histogram" in s or "histograms" in s:
            raise BadAnswer("answered native-histogram samples: compare a number, e.g. histogram_quantile(0.95, …)")
        points = [s["value"]] if kind == "vector" else s["values"]
        out.append(Series(dict(s["metric"]), tuple(float(v) for _, v in points)))
    return out


def worst(values: list[float], op: str, threshold: float) -> float:
    """The value furthest on the wrong side of ``op threshold`` (the nearest to it when all are on the right one)."""
    if op in ("<", "<="):
        return max(values)
    if op in (">", ">="):
        return min(values)
    return (max if op == "==" else min)(values, key=lambda v: abs(v - threshold))


def judge(cfg: PromQuery, series: list[Series], window_s: float | None, step_s: float | None) -> Outcome:
    """Each series judged at each of its values; the message names the failing series' labels and worst values."""
    over = f" over {human_duration(round(window_s))}" if window_s else ""
    if window_s and cfg.for_ == "deploy":
        over = f" since the deploy ({human_duration(round(window_s))} ago)"
    evidence: dict[str, Any] = {"expr": cfg.expr, "window_s": window_s, "step_s": step_s, "series_count": len(series),
                                "threshold": cfg.threshold, "unit": cfg.unit}
    judged = [(s, s.numbers) for s in series]
    judged = [(s, numbers) for s, numbers in judged if numbers]
    if not judged:
        what = "no series" if not series else f"{len(series)} series, only NaN values"
        if cfg.absent_ok:
            return Outcome(True, f"{what}{over} (absent_ok: true)", evidence)
        return Outcome(False, f"no data: {what}{over} (set absent_ok: true if none is fine)", evidence)
    rows = []
    for s, numbers in judged:
        bad = [v for v in numbers if not compare(v, cfg.op, cfg.threshold)]
        rows.append((s, worst(numbers, cfg.op, cfg.threshold), len(bad), len(numbers)))
    rows.sort(key=lambda r: (not r[2], -_badness(r[1], cfg)))  # failing first, worst first
    failing = [r for r in rows if r[2]]
    evidence["series"] = [{"labels": s.labels, "worst": w, "failing_points": n_bad, "points": n}
                          for s, w, n_bad, n in rows[:EVIDENCE_SERIES]]
    if not failing:
        s, w, _, _ = rows[0]
        of = f", the worst of {len(rows)} series" if len(rows) > 1 else ""
        return Outcome(True, f"{_value(w, s, cfg)}{over}{of}", evidence)
    shown = ", ".join(_value(w, s, cfg) + (f" at {n_bad} of {n} evaluations" if window_s and n > 1 else "")
                      for s, w, n_bad, n in failing[:SHOWN])
    more = f" and {len(failing) - SHOWN} more" if len(failing) > SHOWN else ""
    of = f" ({len(failing)} of {len(rows)} series)" if len(rows) > 1 else ""
    return Outcome(False, f"{shown}{more}{over}{of}", evidence)


def _value(value: float, s: Series, cfg: PromQuery) -> str:
    labels = s.shown()
    return fmt(value, cfg.unit) + (f" ({labels})" if labels else "")


def _badness(value: float, cfg: PromQuery) -> float:
    """How far on the wrong side of the threshold (larger is worse), to order series."""
    if cfg.op in ("<", "<="):
        return value - cfg.threshold
    if cfg.op in (">", ">="):
        return cfg.threshold - value
    return abs(value - cfg.threshold) * (1 if cfg.op == "==" else -1)
