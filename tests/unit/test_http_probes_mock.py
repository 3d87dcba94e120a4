"""The HTTP probes on an injected httpx.MockTransport: each check's pass and fail, with the exact finding."""

from __future__ import annotations

import httpx

from opsproof.inventory import HttpService
from opsproof.probes import Connections, Target
from opsproof.probes.http import health


def target(**settings: object) -> Target[HttpService]:
    return Target("http", "app", HttpService.model_validate({"url": "http://app.test", **settings}))


def conns(status: int, body: object) -> Connections:
    return Connections(http_transport=httpx.MockTransport(lambda request: httpx.Response(status, json=body)))


def test_health_passes_on_the_expected_answer() -> None:
    result = health(target(expect_json={"status": "ok"}), conns(200, {"status": "ok"}))
    assert result.ok, result
    assert (result.target, result.observed, result.expected) == (
        "http[app]", "GET /health → HTTP 200 with status='ok'", "HTTP 200 with status='ok'")


def test_health_fails_naming_status_and_field() -> None:
    result = health(target(expect_json={"status": "ok"}), conns(503, {"status": "degraded"}))
    assert not result.ok
    assert (result.target, result.observed, result.expected) == (
        "http[app]", "GET /health → HTTP 503, status='degraded'", "HTTP 200 with status='ok'")
