"""Post-maintenance checklist, step 3: "verify backups are recent"."""

import pytest

from opsproof import verify
from opsproof.probes import backups
from opsproof.result import Result


@pytest.mark.check(backups.recent)
def test_backups_are_recent(result: Result) -> None:
    """`ls -lt /backups/apex_full_*.sql.gz | head -1` — the newest backup is younger than the RPO and not empty."""
    verify(result)
