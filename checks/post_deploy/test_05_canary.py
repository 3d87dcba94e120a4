"""Post-deploy gate, step 5: the window since the deploy against the same window before it."""

import pytest

from opsproof import verify
from opsproof.probes import slo
from opsproof.result import Result


@pytest.mark.check(slo.canary_errors)
def test_error_ratio_not_above_baseline(result: Result) -> None:
    """"error rate not above baseline" — an exact test that copes with zero errors before and a few after."""
    verify(result)


@pytest.mark.check(slo.canary_latency)
def test_latency_not_above_baseline(result: Result) -> None:
    """"latency not above baseline" — p95 after the deploy within the tolerated factor of p95 before it."""
    verify(result)
