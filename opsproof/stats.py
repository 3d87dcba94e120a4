"""Small exact statistics for comparing a window after a deploy with the same window before it.

Error counts right after a deploy are sparse — zero before, a handful after — where normal approximations
(z-tests, chi-square) are wrong. Treating errors as Poisson events with exposure = requests, the number of errors
after the deploy, given the total number of errors in both windows, is binomial under "nothing changed":
``e_after ~ Binomial(e_before + e_after, n_after / (n_before + n_after))``. The one-sided p-value is its upper
tail. This is the exact conditional test for comparing two Poisson rates (Przyborowski & Wilenski, 1940).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), exact (summed in log space)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
             for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


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
# F × p95 before" at the first bound B ≥ F × p95 before: the p95 after is above B exactly when more than 5 % of
# the requests after were slower than B, and that share must also be significantly above the share before
# (the same exact test as the errors: slow requests are the events).


def slower_than(cumulative: dict[float, int], bound: float) -> tuple[int, int]:
    """(requests slower than ``bound``, all requests) from cumulative bucket counts {le: count} (le=inf: all)."""
    total = cumulative.get(math.inf, max(cumulative.values(), default=0))
    return max(0, total - cumulative.get(bound, 0)), total  # increase() extrapolates: never below 0


def judging_bound(bounds: list[float], at_least: float) -> float:
    """The first finite bucket bound ≥ ``at_least``; the highest finite bound when none is."""
    finite = sorted(b for b in bounds if math.isfinite(b))
    if not finite:
        raise ValueError("a histogram without finite bucket bounds")
    return next((b for b in finite if b >= at_least), finite[-1])


@dataclass(frozen=True)
class TailComparison:
    bound_s: float
    slow: RateComparison  # requests slower than the bound, as the "errors" of the exact test
    quantile: float

    def regressed(self, significance: float) -> bool:
        """The quantile after is above the bound (more than 1 − q slower), and not by chance."""
        slow = self.slow
        return slow.ratio_after > 1 - self.quantile and slow.p_value < significance and \
            slow.ratio_after > slow.ratio_before

    def explain(self) -> str:
        s = self.slow
        return (f"{s.ratio_after:.1%} of requests slower than {self.bound_s * 1000:g} ms after "
                f"({s.errors_after}/{s.requests_after}) vs {s.ratio_before:.1%} before "
                f"({s.errors_before}/{s.requests_before}), one-sided p = {s.p_value:.2g}")


def compare_tails(before: dict[float, int], after: dict[float, int], bound_s: float,
                  quantile: float = 0.95) -> TailComparison:
    """The requests slower than ``bound_s`` (a bucket bound) after the deploy against before it."""
    return TailComparison(bound_s, compare_error_rates(*slower_than(before, bound_s), *slower_than(after, bound_s)),
                          quantile)
