"""Post-deploy check: "no errors in the logs since the deploy" — `grep ERROR app.log | wc -l` on a host, and
`kubectl logs deploy/api --since=10m | grep -c ERROR` in a cluster, over a window."""

import pytest

from opsproof import verify
from opsproof.probes import kubernetes, logs
from opsproof.result import Result


@pytest.mark.check(logs.errors)
def test_logs_have_few_errors(result: Result) -> None:
    """Lines matching the error pattern, dated within the window, stay under the ceiling."""
    verify(result)


@pytest.mark.check(kubernetes.logs)
def test_pod_logs_have_few_errors(result: Result) -> None:
    """Lines matching the error pattern in the window of each workload's pods' logs, every container, stay under
    the ceiling."""
    verify(result)
