"""HTTP services — the `curl -f` lines of the runbooks."""

import pytest

from opsproof import verify
from opsproof.probes import http
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(http.health)
def test_health(result: Result) -> None:
    """`curl -f $URL/health` — answers the expected status and JSON fields (e.g. status: ok)."""
    verify(result)


@pytest.mark.check(http.ready)
def test_ready(result: Result) -> None:
    """`curl -f $URL/ready` — the service is ready to take traffic."""
    verify(result)


@pytest.mark.check(http.latency)
def test_latency(result: Result) -> None:
    """`curl -w '%{time_total}' $URL/health` — answers within the latency budget."""
    verify(result)
