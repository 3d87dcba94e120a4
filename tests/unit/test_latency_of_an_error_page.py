"""`http.latency` on an error page is no verdict, deferred to http.health (issue 9: "took 28 ms (HTTP 500)" passed)."""

from __future__ import annotations

import httpx

from opsproof.inventory import loads
from opsproof.probes import http
from opsproof.probes.base import Target
from opsproof.probes.connections import Connections
from opsproof.result import Result


def latency(status: int) -> Result:
    inv = loads("environment: t\nhttp:\n  cms: {url: 'http://cms.example'}\n")
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="oops"))
    with Connections(http_transport=transport) as conns:
        return http.latency(Target("http", "cms", inv.http["cms"]), conns)


def test_a_fast_error_page_is_not_a_latency_pass() -> None:
    res = latency(500)
    assert res.ok is None
    assert res.observed.startswith("no verdict: GET /health answered HTTP 500 in ")
    assert res.observed.endswith(" ms, not HTTP 200 (deferred to http.health)")


def test_a_fast_healthy_answer_passes() -> None:
    assert latency(200).ok is True
