"""prometheus.retention on the sandbox's real Prometheus (started with --storage.tsdb.retention.time=1d): a
minimum of 1 day passes; the runbook-sized 30 days fails on that server, the message naming the target, the
retention it runs with and the one expected. Probe calls on the shared session sandbox: no suite run, no restart."""

from __future__ import annotations

import pytest
from support import SandboxHelper

from opsproof.inventory import load
from opsproof.probes import Connections, Target, prometheus

pytestmark = pytest.mark.integration


def test_retention_read_from_the_flags(healthy: SandboxHelper) -> None:
    main = load(healthy.inventory).targets("prometheus")["main"]
    with Connections() as conns:
        short, long = (prometheus.retention(Target("prometheus", "main", main.model_copy(update={
            "min_retention": days * 86400.0})), conns) for days in (1, 30))
    assert (short.ok, short.observed) == (True, "storage.tsdb.retention.time 1d")
    assert short.evidence["source"] == "storage.tsdb.retention.time"
    assert long.ok is False
    assert long.explain() == ("prometheus[main]: storage.tsdb.retention.time 1d, expected "
                              "storage.tsdb.retention.time ≥ 30d")
