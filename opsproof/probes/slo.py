"""Service levels since a deploy, read from Prometheus: "error rate below baseline", "p95 < 300 ms".

Every figure comes from PromQL over the window from the deploy (``deployed_at``) to now, evaluated by the
Prometheus that scrapes the service. A window with fewer than ``min_requests`` requests is *no data* — never a
pass. The canary checks compare that window with the same length of time just before the deploy.
"""

from __future__ import annotations

import math
import time
from typing import Any

from opsproof.inventory import Slo
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.prometheus import api
from opsproof.result import Severity
from opsproof.stats import compare_error_rates, compare_tails, judging_bound


def query(target: Target[Slo], conns: Connections, promql: str, at: float) -> list[dict[str, Any]]:
    """An instant query at a Unix time; the result vector."""
    source = Target("prometheus", target.config.prometheus, target.config.source)
    result: list[dict[str, Any]] = api(source, conns, "/api/v1/query", {"query": promql, "time": f"{at:.3f}"})["result"]
    return result


def scalar(target: Target[Slo], conns: Connections, promql: str, at: float) -> float | None:
    vector = query(target, conns, promql, at)
    if not vector:
        return None
    value = float(vector[0]["value"][1])
    return None if math.isnan(value) else value


def bucket_counts(vector: list[dict[str, Any]]) -> dict[float, int]:
    """{le: count} from a ``sum by (le)`` vector. "1" and "1.0" are one bound (clients spell it differently and
    Prometheus 3 normalises it, so both can be in one window): they are added up."""
    counts: dict[float, int] = {}
    for v in vector:
        if "le" in v["metric"]:
            le = float(v["metric"]["le"])
            counts[le] = counts.get(le, 0) + round(float(v["value"][1]))
    return counts


class Window:
    """Request, error and latency figures of one window ``(end - seconds, end]``.

    Each figure is the difference of the counters' scraped values at the window's two ends (``sum(m @ end) -
    sum(m @ start)``), not PromQL's ``increase()``: ``increase()`` extrapolates every series on its own, and its
    "never extrapolate below zero" limit applies only to series whose value at the window's first sample is small —
    so the fast buckets of a histogram (near 0 after earlier slow traffic) and its slow ones (large) are stretched
    differently, and requests slower than nothing that happened appear (872 requests all under 50 ms read as 64
    between 50 and 100 ms, p95 57 ms, in a 5 s window). The difference is exact at the scrapes' resolution: the
    window starts at the last scrape before ``end - seconds``. A counter reset inside the window (a restart) makes
    it meaningless; then the figures come from ``increase()``, which handles resets, and the evidence says so."""

    def __init__(self, target: Target[Slo], conns: Connections, end: float, seconds: float) -> None:
        cfg = target.config
        self.end, self.seconds = end, seconds
        self._target, self._conns = target, conns
        requests = f"{cfg.requests_metric}{{{cfg.selector}}}"
        self.resets = round(scalar(target, conns, f"sum(resets({requests}{self._range}))", end) or 0)
        self.requests = round(self._scalar(requests))
        label = cfg.status_label
        self.errors = round(self._scalar(f'{cfg.requests_metric}{{{cfg.selector},{label}=~"5.."}}'))
        self.labelled = round(self._scalar(f'{cfg.requests_metric}{{{cfg.selector},{label}!=""}}'))
        p95 = scalar(target, conns, f"histogram_quantile(0.95, {self._counted(self._buckets, 'le')})", end)
        self.p95_ms = None if p95 is None else p95 * (cfg.seconds_per_unit * 1000)  # from the histogram's unit

    @property
    def _range(self) -> str:
        """The window as a PromQL range, to the millisecond (not rounded up to whole seconds: that would reach back
        before the deploy)."""
        return f"[{max(1, round(self.seconds * 1000))}ms]"

    @property
    def _buckets(self) -> str:
        cfg = self._target.config
        return f"{cfg.duration_metric}_bucket{{{cfg.selector}}}"

    def _counted(self, selector: str, by: str = "") -> str:
        """PromQL for how much the counters of ``selector`` grew over the window (summed, ``by`` labels kept)."""
        group = f"sum by ({by})" if by else "sum"
        if self.resets:
            return f"{group} (increase({selector}{self._range}))"
        start = self.end - self.seconds
        at_end = f"{group} ({selector} @ {self.end:.3f})"
        return f"{at_end} - ({group} ({selector} @ {start:.3f}) or {at_end} * 0)"

    def _scalar(self, selector: str) -> float:
        return max(0.0, scalar(self._target, self._conns, self._counted(selector), self.end) or 0.0)

    def cumulative(self) -> dict[float, int]:
        """Requests per bucket bound over the window, cumulative as Prometheus keeps them ({le in seconds: count},
        inf: all) — a histogram in milliseconds (``duration_unit``) has its bounds converted."""
        units = 1 / self._target.config.seconds_per_unit  # per second: 1, or 1000 (a division keeps 0.005 exact)
        return {le / units: max(0, n) for le, n in bucket_counts(
            query(self._target, self._conns, self._counted(self._buckets, "le"), self.end)).items()}

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def evidence(self) -> dict[str, Any]:
        return {"end": self.end, "seconds": round(self.seconds, 3), "requests": self.requests, "errors": self.errors,
                "labelled_requests": self.labelled,
                "p95_ms": None if self.p95_ms is None else round(self.p95_ms, 1),
                "histogram_unit": "milliseconds" if self._target.config.seconds_per_unit < 1 else "seconds",
                "counted": "increase(): a counter reset inside" if self.resets else "scraped values at both ends"}


def _since_deploy(target: Target[Slo], conns: Connections) -> Window:
    start, end = target.config.window(time.time())
    return Window(target, conns, end, max(0.001, end - start))


def _before_deploy(target: Target[Slo], conns: Connections, after: Window) -> Window:
    return Window(target, conns, after.end - after.seconds, after.seconds)


def _no_verdict(cfg: Slo) -> bool | None:
    """What too little data is: a skip (no verdict) or a failure, as the entry says."""
    return None if cfg.no_data == "skip" else False


def _no_data(target: Target[Slo], window: Window) -> Outcome | None:
    """The minimum-traffic guard: too few requests is "no data" (a skip, or a failure), never a pass."""
    cfg = target.config
    if window.requests >= cfg.min_requests:
        return None
    observed = (f"no data: {window.requests} requests in the {window.seconds:.0f} s since the deploy "
                f"(need ≥ {cfg.min_requests} to judge)")
    return Outcome(_no_verdict(cfg), observed, {"window": window.evidence()})


def _unlabelled(target: Target[Slo], windows: list[Window]) -> Outcome | None:
    """Requests counted on no series that carries the status label: errors cannot be told apart, so no data."""
    cfg = target.config
    if all(w.labelled for w in windows):
        return None
    return Outcome(_no_verdict(cfg), f"no data: no series of {cfg.requests_metric}{{{cfg.selector}}} carries the "
                                     f"label {cfg.status_label!r}, so errors cannot be counted (set status_label:, "
                                     "e.g. code)", {"windows": [w.evidence() for w in windows]})


def _before_and_after(target: Target[Slo], conns: Connections) -> tuple[Window, Window] | Outcome:
    """The windows after and before the deploy, or a no-data result when either has too few requests."""
    cfg = target.config
    after = _since_deploy(target, conns)
    if (no_data := _no_data(target, after)) is not None:
        return no_data
    before = _before_deploy(target, conns, after)
    if before.requests < cfg.min_requests:
        return Outcome(_no_verdict(cfg), f"no data: {before.requests} requests in the {before.seconds:.0f} s before "
                                         f"the deploy (need ≥ {cfg.min_requests} to compare)",
                       {"before": before.evidence(), "after": after.evidence()})
    return before, after


@probe("slo.error_ratio", "slo", Severity.CRITICAL, "error rate below the SLO since the deploy (5xx / all)",
       expected=lambda cfg: f"error ratio ≤ {cfg.max_error_ratio:.2%} with ≥ {cfg.min_requests} requests")
def error_ratio(target: Target[Slo], conns: Connections) -> Outcome:
    """The share of 5xx answers since the deploy stays under the SLO."""
    window = _since_deploy(target, conns)
    if (no_data := _no_data(target, window) or _unlabelled(target, [window])) is not None:
        return no_data
    return Outcome(window.error_ratio <= target.config.max_error_ratio,
                   f"error ratio {window.error_ratio:.2%} ({window.errors} of {window.requests} requests in the "
                   f"{window.seconds:.0f} s since the deploy)", {"window": window.evidence()})


@probe("slo.latency_p95", "slo", Severity.HIGH, "p95 latency below the SLO since the deploy (histogram_quantile)",
       expected=lambda cfg: f"p95 ≤ {cfg.max_p95_ms:.0f} ms with ≥ {cfg.min_requests} requests")
def latency_p95(target: Target[Slo], conns: Connections) -> Outcome:
    """The 95th percentile of request latency since the deploy, from the histogram, stays under the SLO."""
    window = _since_deploy(target, conns)
    if (no_data := _no_data(target, window)) is not None:
        return no_data
    p95 = window.p95_ms if window.p95_ms is not None else math.inf
    buckets = {("+Inf" if math.isinf(le) else f"{le:g}"): n for le, n in sorted(window.cumulative().items())}
    return Outcome(p95 <= target.config.max_p95_ms,
                   f"p95 {p95:.0f} ms over {window.requests} requests in the {window.seconds:.0f} s since the deploy",
                   {"window": window.evidence(), "buckets": buckets})


@probe("slo.canary_errors", "slo", Severity.HIGH, "error rate after the deploy not above the same window before it",
       expected=lambda cfg: f"no significant increase of the error ratio (one-sided p ≥ {cfg.significance:g})")
def canary_errors(target: Target[Slo], conns: Connections) -> Outcome:
    """More errors after the deploy than before, beyond chance? An exact test that copes with sparse counts."""
    cfg = target.config
    windows = _before_and_after(target, conns)
    if isinstance(windows, Outcome):
        return windows
    before, after = windows
    if (no_data := _unlabelled(target, [before, after])) is not None:
        return no_data
    comparison = compare_error_rates(before.errors, before.requests, after.errors, after.requests)
    worse = comparison.p_value < cfg.significance and comparison.ratio_after > comparison.ratio_before
    return Outcome(not worse, comparison.explain(),
                   {"before": before.evidence(), "after": after.evidence(), "p_value": comparison.p_value,
                    "test": "exact conditional binomial (Poisson rates)"})


@probe("slo.canary_latency", "slo", Severity.HIGH, "p95 after the deploy not above the same window before it",
       expected=lambda cfg: f"p95 after ≤ {cfg.max_regression:g} × p95 before (at bucket resolution)")
def canary_latency(target: Target[Slo], conns: Connections) -> Outcome:
    """p95 latency after the deploy compared with the same length of time before it, judged at the histogram's
    resolution (see ``opsproof.stats``): a regression is a p95 after significantly above the first bucket bound
    ≥ max_regression × p95 before — significantly more than 5 % of the requests after slower than that bound, and
    significantly more than before. Two interpolated p95s one bucket apart (10 ms vs 19 ms) are not a verdict by
    themselves; where no bucket bound can tell (beyond the top bucket), the result is "no verdict" (``no_data``)."""
    cfg = target.config
    windows = _before_and_after(target, conns)
    if isinstance(windows, Outcome):
        return windows
    before, after = windows
    evidence = {"before": before.evidence(), "after": after.evidence()}
    if before.p95_ms is None or after.p95_ms is None:  # a histogram without observations
        return Outcome(_no_verdict(cfg), "no data: no latency observations to compare", evidence)
    factor = after.p95_ms / before.p95_ms if before.p95_ms > 0 else math.inf
    p95s = f"p95 {after.p95_ms:.0f} ms after vs {before.p95_ms:.0f} ms before (×{factor:.2f})"
    before_buckets, after_buckets = before.cumulative(), after.cumulative()
    threshold_s = cfg.max_regression * before.p95_ms / 1000
    bound = judging_bound(before_buckets, after_buckets, threshold_s)
    if bound is None:
        top = max((b for b in set(before_buckets) & set(after_buckets) if math.isfinite(b)), default=0.0)
        return Outcome(_no_verdict(cfg), f"no verdict: {p95s}; no bucket bound ≥ {threshold_s * 1000:.4g} ms in both "
                                         f"windows (highest common finite bound {top * 1000:g} ms): this histogram "
                                         "cannot tell", {**evidence, "factor": round(factor, 3)})
    tails = compare_tails(before_buckets, after_buckets, bound)
    regressed = tails.regressed(cfg.significance)
    verdict = ""
    if not regressed and factor > cfg.max_regression:
        verdict = (f"; within the histogram's resolution: the p95 after is above {bound * 1000:g} ms only when "
                   f"significantly more than 5% of requests are slower (p < {cfg.significance:g})"
                   if tails.p_above >= cfg.significance
                   else f"; not significantly more than before (p ≥ {cfg.significance:g})")
    return Outcome(not regressed, f"{p95s}: {tails.explain()}{verdict}",
                   {**evidence, "factor": round(factor, 3), "bound_ms": bound * 1000,
                    "slower_after": tails.slow.errors_after, "slower_before": tails.slow.errors_before,
                    "p_value": tails.slow.p_value, "p_above_quantile": tails.p_above})
