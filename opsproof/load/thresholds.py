"""k6-style thresholds, parsed from the inventory's strings and judged against a load run's exact figures.

``p(95) < 200ms``, ``p(99.9) <= 1s``, ``avg < 50ms``, ``max < 2s``, ``error_rate < 0.1%``, ``rps >= 50``,
``requests >= 1000``. A threshold that saw no request fails (never a green run on nothing, k6#4283); a latency or
rate threshold of a run whose load generator was saturated has no verdict (the generator, not the service, was
what was measured).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opsproof.load.arrivals import LATE_S, held
from opsproof.util.durations import seconds

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
LATENCY = ("avg", "med", "min", "max")  # besides p(N)
_FORM = re.compile(r"^\s*(?P<metric>p\(\s*(?P<pct>\d+(?:\.\d+)?)\s*\)|[a-z_][a-z0-9_]*)\s*(?P<op><=|>=|<|>)\s*"
                   r"(?P<value>\S.*?)\s*$")
_US = re.compile(r"^(\d+(?:\.\d+)?)\s*(us|µs)$")
FIX = ("write it like 'p(95) < 200ms', 'p(99) < 1s', 'avg < 50ms', 'error_rate < 0.1%', 'rps >= 50' or "
       "'requests >= 100'")
BOTTLENECK_CPU = 90.0  # Locust's own warning threshold (runners.CPU_WARNING_THRESHOLD)


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold; ``bound`` is in microseconds for latencies, a ratio for error_rate."""

    text: str
    metric: str  # "p(95)", "avg", "error_rate", "rps", "requests"
    op: str
    bound: float
    percentile: float | None = None

    @property
    def latency(self) -> bool:
        return self.percentile is not None or self.metric in LATENCY

    def shown_bound(self) -> str:
        """``< 200 ms``: the bound as the inventory wrote it, in the unit of the figures beside it."""
        return f"{self.op} {show(self.metric, self.bound, bound=True)}"


def parse(text: str) -> Threshold:
    """A threshold from its text; ValueError naming the problem and the fix."""
    m = _FORM.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a threshold. Fix: {FIX}")
    metric, op, value = m["metric"], m["op"], m["value"]
    if m["pct"] is not None:
        pct = float(m["pct"])
        if not 0 < pct <= 100:
            raise ValueError(f"{text!r}: percentile {pct:g} is outside (0, 100]. Fix: write p(95) or p(99.9)")
        return Threshold(text, f"p({pct:g})", op, _micros(value, text), pct)
    if metric in LATENCY:
        return Threshold(text, metric, op, _micros(value, text))
    if metric == "error_rate":
        try:
            ratio = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            raise ValueError(f"{text!r}: {value!r} is not a rate. Fix: write 0.1% or 0.001") from None
        if not 0 <= ratio <= 1:
            raise ValueError(f"{text!r}: an error rate is between 0% and 100%. Fix: write 0.1% or 0.001")
        return Threshold(text, metric, op, ratio)
    if metric in ("rps", "requests"):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{text!r}: {value!r} is not a number. Fix: write {metric} >= 50") from None
        return Threshold(text, metric, op, number)
    pct_like = re.fullmatch(r"p(\d+(?:\.\d+)?)", metric)
    fix = f"write p({pct_like[1]}) for a percentile" if pct_like else FIX
    raise ValueError(f"{text!r}: unknown metric {metric!r}. Fix: {fix}")


def _micros(value: str, text: str) -> float:
    m = _US.match(value)
    try:
        micros = float(m[1]) if m else seconds(value) * 1e6
    except ValueError:
        raise ValueError(f"{text!r}: {value!r} is not a duration. Fix: write it like 200ms, 1s or 500us") from None
    if not value.strip()[-1:].isalpha():
        raise ValueError(f"{text!r}: {value!r} has no unit. Fix: write 200ms or 1s (a bare number is ambiguous)")
    return micros


def show(metric: str, value: float, bound: bool = False) -> str:
    """A figure as a verdict shows it: 241.3 ms, 1.25 s, 850 µs, 0.12%, 52.4/s, 18,422 (a bound: 200 ms, 50/s)."""
    if metric == "error_rate":
        return f"{value * 100:.3g}%"
    if metric == "rps":
        return f"{value:,g}/s" if bound else f"{value:,.1f}/s"
    if metric == "requests":
        return f"{value:,.0f}"
    if value >= 1e6:
        return f"{value / 1e6:g} s" if bound else f"{value / 1e6:.2f} s"
    if value >= 1e3:
        return f"{value / 1e3:g} ms" if bound else f"{value / 1e3:.1f} ms"
    return f"{value:g} µs" if bound else f"{value:.0f} µs"


@dataclass(frozen=True)
class Figures:
    """What was measured of one request name (or a whole scenario): exact latencies in µs from the histogram."""

    requests: int
    failures: int
    elapsed_s: float
    latency: Callable[[str, float | None], float]  # (metric, percentile) → µs
    schedule: tuple[int, int, int] | None = None  # open model: requests due, sent late, never sent

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    """A threshold judged: ``ok`` True (pass), False (fail) or None (no verdict, ``observed`` says why)."""

    subject: str  # "load[checkout]" or "load[checkout/get-item]"
    threshold: Threshold
    ok: bool | None
    observed: str
    value: float | None
    requests: int
    note: str = ""  # after the expectation: why a rate was not held, that the run was aborted here

    def message(self) -> str:
        """``load[checkout]: p(95) 241.3 ms over 18,422 requests, expected < 200 ms``"""
        if self.ok is None:
            return f"{self.subject}: {self.threshold.metric}: no verdict — {self.observed}"
        note = f" — {self.note}" if self.note else ""
        return f"{self.subject}: {self.observed}, expected {self.threshold.shown_bound()}{note}"

    def to_record(self) -> dict[str, Any]:
        return {"subject": self.subject, "threshold": self.threshold.text, "verdict":
                {True: "pass", False: "fail", None: "no-verdict"}[self.ok], "value": self.value,
                "requests": self.requests, "message": self.message()}


def judge(subject: str, threshold: Threshold, figures: Figures | None, generator_cpu: float = 0.0) -> Verdict:
    """Judge one threshold. ``figures`` None: the request name never ran (not even one failed attempt)."""
    if figures is None or figures.requests == 0:
        why = "the request never ran" if figures is None else "no request was made"
        return Verdict(subject, threshold, False, f"{threshold.metric}: {why} (0 requests)", None, 0)
    if threshold.metric != "requests" and generator_cpu >= BOTTLENECK_CPU and (
            threshold.latency or threshold.metric == "rps"):
        return Verdict(subject, threshold, None, f"the generator was the bottleneck (CPU {generator_cpu:.0f}% ≥ "
                       f"{BOTTLENECK_CPU:.0f}% on a Locust process): add --processes or machines",
                       None, figures.requests)
    if threshold.latency:
        value = figures.latency(threshold.metric, threshold.percentile)
    elif threshold.metric == "error_rate":
        value = figures.error_rate
    elif threshold.metric == "rps":
        value = figures.requests / figures.elapsed_s if figures.elapsed_s > 0 else math.nan
    else:
        value = float(figures.requests)
    ok = OPS[threshold.op](value, threshold.bound) if not math.isnan(value) else False
    over = f"{figures.requests:,} request{'s' if figures.requests != 1 else ''}"
    lag = ""
    if threshold.metric == "rps" and figures.schedule is not None:
        due, late, unsent = figures.schedule
        if not held(due, late, unsent):  # the rate asked for was not the rate sent: not a pass, whatever the figure
            ok = False
            lag = (f"the arrival rate was not held: {late + unsent:,} of {due:,} due requests sent late (> "
                   f"{LATE_S * 1000:g} ms) or never sent ({unsent:,})")
    if threshold.metric == "error_rate":
        observed = f"error_rate {show('error_rate', value)} ({figures.failures:,} failed of {over})"
    elif threshold.metric == "requests":
        observed = f"requests {figures.requests:,} in {figures.elapsed_s:.1f} s"
    else:
        observed = f"{threshold.metric} {show(threshold.metric, value)} over {over}"
    return Verdict(subject, threshold, ok, observed, value, figures.requests, lag)


def judge_all(scenario: str, scenario_thresholds: list[str], request_thresholds: Mapping[str, list[str]],
              figures: Mapping[str, Figures], total: Figures, generator_cpu: float) -> list[Verdict]:
    """Every threshold of a scenario: its own over all requests, and each request name's over that name."""
    verdicts = [judge(f"load[{scenario}]", parse(t), total, generator_cpu) for t in scenario_thresholds]
    for name, texts in request_thresholds.items():
        verdicts += [judge(f"load[{scenario}/{name}]", parse(t), figures.get(name), generator_cpu) for t in texts]
    return verdicts
