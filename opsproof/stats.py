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
