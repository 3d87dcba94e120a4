"""The exact test behind the canary comparison, against values computed independently."""

from __future__ import annotations

import math

import pytest

from opsproof.stats import binomial_sf, compare_error_rates


def naive_sf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize(("k", "n", "p"), [(0, 5, 0.3), (3, 5, 0.5), (5, 5, 0.5), (7, 20, 0.1), (1, 1, 0.9),
                                           (40, 100, 0.25)])
def test_binomial_tail_matches_the_definition(k: int, n: int, p: float) -> None:
    assert binomial_sf(k, n, p) == pytest.approx(naive_sf(k, n, p), rel=1e-9)


def test_zero_errors_before_and_a_handful_after_is_significant() -> None:
    # 1,000 requests on each side: 0 errors before, 6 after. Under "no change" each of the 6 errors falls after
    # the deploy with probability 1/2: p = 0.5**6.
    result = compare_error_rates(0, 1000, 6, 1000)
    assert result.p_value == pytest.approx(0.5**6)
    assert result.explain() == (
        "error ratio 0.60% after (6/1000) vs 0.00% before (0/1000);"
        " exact conditional binomial test, one-sided p = 0.016")


def test_same_rate_is_not_significant() -> None:
    assert compare_error_rates(5, 1000, 5, 1000).p_value > 0.5
    assert compare_error_rates(0, 1000, 0, 1000).p_value == 1.0


def test_fewer_errors_after_is_not_a_regression() -> None:
    assert compare_error_rates(30, 1000, 2, 1000).p_value > 0.99


def test_unequal_exposure_is_accounted_for() -> None:
    # ten times more traffic after the deploy: ten times more errors is the same rate
    assert compare_error_rates(2, 100, 20, 1000).p_value > 0.3
    assert compare_error_rates(2, 1000, 20, 1000).p_value < 1e-3
