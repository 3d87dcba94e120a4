"""Small exact statistics for comparing a window after a deploy with the same window before it.

Error counts right after a deploy are sparse — zero before, a handful after — where normal approximations
(z-tests, chi-square) are wrong. Treating errors as Poisson events with exposure = requests, the number of errors
after the deploy, given the total number of errors in both windows, is binomial under "nothing changed":
``e_after ~ Binomial(e_before + e_after, n_after / (n_before + n_after))``. The one-sided p-value is its upper
tail. This is the exact conditional test for comparing two Poisson rates (Przyborowski & Wilenski, 1940).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), exact (summed in log space). Only the terms that matter are summed — from k
    away from the mode until they vanish — so a window of a million requests costs what a few thousand do."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def log_pmf(i: int) -> float:
        return log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q

    mode = min(n, int((n + 1) * p))  # the pmf rises up to the mode and falls after it
    if k > mode:
        return min(1.0, _falling_sum(log_pmf, range(k, n + 1)))
    return max(0.0, 1.0 - _falling_sum(log_pmf, range(k - 1, -1, -1)))  # the other tail: ≥ about 1/2 here


def _falling_sum(log_term: Callable[[int], float], indices: range) -> float:
    """Σ exp(log_term(i)) over indices along which the terms fall, stopping once they are negligible (< e⁻⁵⁰ of
    the first)."""
    first: float | None = None
    total = 0.0
    for i in indices:
        t = log_term(i)
        if first is None:
            first = t
        elif t - first < -50:
            break
        total += math.exp(t - first)
    return 0.0 if first is None else math.exp(first) * total


@dataclass(frozen=True)
class RateComparison:
    errors_before: int
    requests_before: int
    errors_after: int
    requests_after: int
    p_value: float

    @property
    def ratio_before(self) -> float:
        return self.errors_before / self.requests_before if self.requests_before else 0.0

    @property
    def ratio_after(self) -> float:
        return self.errors_after / self.requests_after if self.requests_after else 0.0

    def explain(self) -> str:
        return (f"error ratio {self.ratio_after:.2%} after ({self.errors_after}/{self.requests_after}) vs "
                f"{self.ratio_before:.2%} before ({self.errors_before}/{self.requests_before}); "
                f"exact conditional binomial test, one-sided p = {self.p_value:.2g}")


def compare_error_rates(errors_before: int, requests_before: int, errors_after: int,
                        requests_after: int) -> RateComparison:
    """Is the error rate after the deploy higher than before? (one-sided exact test, see the module doc)"""
    total_errors = errors_before + errors_after
    exposure = requests_before + requests_after
    share_after = requests_after / exposure if exposure else 0.5
    p_value = binomial_sf(errors_after, total_errors, share_after) if total_errors else 1.0
    return RateComparison(errors_before, requests_before, errors_after, requests_after, p_value)


# Latency, at the histogram's resolution. A p95 interpolated inside a bucket is an estimate: between adjacent
# buckets (5, 10, 25 ms …) it moves by ×2 or more when a few requests land one bucket higher. What a histogram
# states exactly is how many requests were slower than each bucket bound. So the canary judges "p95 after >
# F × p95 before" at the first bound B ≥ F × p95 before that both windows have: the p95 after is above B when more
# than 5 % of the requests after were slower than B — tested, one-sided, against exactly 5 % — and that share must
# also be significantly above the share before (the same exact test as the errors: slow requests are the events).


def slower_than(cumulative: dict[float, int], bound: float) -> tuple[int, int]:
    """(requests slower than ``bound``, all requests) from cumulative bucket counts {le: count} (le=inf: all)."""
    total = cumulative.get(math.inf, max(cumulative.values(), default=0))
    return max(0, total - cumulative.get(bound, 0)), total  # increase() extrapolates: never below 0


def judging_bound(before: Iterable[float], after: Iterable[float], at_least: float) -> float | None:
    """The first finite bucket bound ≥ ``at_least`` that both windows have; None when there is none (above the
    top bucket, or a bucket layout changed by the deploy): the histogram cannot tell."""
    common = sorted(b for b in set(before) & set(after) if math.isfinite(b))
    return next((b for b in common if b >= at_least), None)


@dataclass(frozen=True)
class TailComparison:
    bound_s: float
    slow: RateComparison  # requests slower than the bound, as the "errors" of the exact test
    quantile: float
    p_above: float  # P(at least this many slower after | exactly 1 − q of requests are): small = quantile > bound

    def regressed(self, significance: float) -> bool:
        """The quantile after is above the bound (more than 1 − q slower), and more often than before, not by
        chance on either count."""
        slow = self.slow
        return self.p_above < significance and slow.p_value < significance and slow.ratio_after > slow.ratio_before

    def explain(self) -> str:
        s = self.slow
        return (f"{s.ratio_after:.1%} of requests slower than {self.bound_s * 1000:g} ms after "
                f"({s.errors_after}/{s.requests_after}) vs {s.ratio_before:.1%} before "
                f"({s.errors_before}/{s.requests_before}); one-sided p = {s.p_value:.2g} against before, "
                f"{self.p_above:.2g} against {1 - self.quantile:.0%}")


def compare_tails(before: dict[float, int], after: dict[float, int], bound_s: float,
                  quantile: float = 0.95) -> TailComparison:
    """The requests slower than ``bound_s`` (a bucket bound) after the deploy against before it."""
    slow_after, n_after = slower_than(after, bound_s)
    return TailComparison(bound_s, compare_error_rates(*slower_than(before, bound_s), slow_after, n_after), quantile,
                          binomial_sf(slow_after, n_after, 1 - quantile) if n_after else 1.0)
