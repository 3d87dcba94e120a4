"""Post-deploy gate, step 3: the service levels since the rollout, from Prometheus."""

import pytest

from opsproof import verify
from opsproof.probes import slo
from opsproof.result import Result


@pytest.mark.check(slo.error_ratio)
def test_error_ratio_since_deploy(result: Result) -> None:
    """"error rate below 1%" — sum(increase(http_requests_total{status=~"5.."}[since deploy])) / all requests."""
    verify(result)


@pytest.mark.check(slo.latency_p95)
def test_p95_latency_since_deploy(result: Result) -> None:
    """"p95 < 300 ms" — histogram_quantile(0.95, …http_request_duration_seconds_bucket[since deploy])."""
    verify(result)
