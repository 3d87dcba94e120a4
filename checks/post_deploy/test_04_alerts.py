"""Post-deploy gate, step 4: no new critical alert since the rollout (also one that fired and resolved)."""

import pytest

from opsproof import verify
from opsproof.probes import prometheus
from opsproof.result import Result


@pytest.mark.check(prometheus.new_alerts)
def test_no_new_critical_alert_since_deploy(result: Result) -> None:
    """"check the alerts dashboard after the deploy" — max_over_time(ALERTS{alertstate="firing"}[since deploy])."""
    verify(result)
