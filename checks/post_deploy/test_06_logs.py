"""Post-deploy check: "no errors in the logs since the deploy" — `grep ERROR app.log | wc -l`, over a window."""

import pytest

from opsproof import verify
from opsproof.probes import logs
from opsproof.result import Result


@pytest.mark.check(logs.errors)
def test_logs_have_few_errors(result: Result) -> None:
    """Lines matching the error pattern, dated within the window, stay under the ceiling."""
    verify(result)
