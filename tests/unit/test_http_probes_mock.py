"""The HTTP probes on an injected httpx.MockTransport: each check's pass and fail, with the exact finding, and
answers that are not what a health endpoint says (no JSON, HTTP 500, a dropped connection) as failed checks with a
reason, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from opsproof.inventory import HttpService
from opsproof.probes import Connections, Target
from opsproof.probes.http import health, latency, ready

if TYPE_CHECKING:  # the fixtures' types (tests/unit/conftest.py)
    from tests.unit.conftest import Answer, FakeClock, Serve


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


def test_health_without_json_names_the_missing_object(serve: Serve) -> None:
    result = health(target(expect_json={"status": "ok"}), serve({"/health": lambda r: httpx.Response(200, text="OK")}))
    assert (result.ok, result.check) == (False, "http.health")
    assert result.explain() == "http[app]: GET /health → status='<no JSON object>', expected HTTP 200 with status='ok'"


def test_health_with_a_field_absent_names_it(serve: Serve) -> None:
    result = health(target(expect_json={"status": "ok"}),
                    serve({"/health": lambda r: httpx.Response(200, json={"version": "v1"})}))
    assert result.ok is False
    assert result.observed == "GET /health → status='<absent>'"


def test_health_on_a_server_error_page_names_the_status(serve: Serve) -> None:
    result = health(target(), serve({"/health": lambda r: httpx.Response(500, text="<h1>Internal Server Error")}))
    assert result.ok is False
    assert result.explain() == "http[app]: GET /health → HTTP 500, expected HTTP 200"


def test_ready_passes_on_2xx(serve: Serve) -> None:
    result = ready(target(), serve({"/ready": lambda r: httpx.Response(204)}))
    assert (result.ok, result.check, result.target) == (True, "http.ready", "http[app]")
    assert (result.observed, result.expected) == ("GET /ready → HTTP 204", "HTTP 2xx")


@pytest.mark.parametrize("status", [503, 500, 404, 301])
def test_ready_fails_on_anything_else(serve: Serve, status: int) -> None:
    result = ready(target(), serve({"/ready": lambda r: httpx.Response(status, json={"ready": False})}))
    assert result.ok is False
    assert result.explain() == f"http[app]: GET /ready → HTTP {status}, expected HTTP 2xx"


def test_ready_asks_the_configured_path(serve: Serve) -> None:
    result = ready(target(ready="/healthz/ready"), serve({"/healthz/ready": lambda r: httpx.Response(200)}))
    assert (result.ok, result.observed) == (True, "GET /healthz/ready → HTTP 200")


def test_ready_applies_only_where_configured() -> None:
    assert ready.applies(target().config)
    assert not ready.applies(target(ready=None).config)


def answering_after(clock: FakeClock, seconds: float, status: int = 200) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        clock.advance(seconds)
        return httpx.Response(status, json={"status": "ok"})

    return answer


def test_latency_within_the_budget_passes(serve: Serve, fake_clock: FakeClock) -> None:
    result = latency(target(latency_budget_ms=250), serve({"/health": answering_after(fake_clock, 0.2)}))
    assert (result.ok, result.check, result.target) == (True, "http.latency", "http[app]")
    assert (result.observed, result.expected) == ("GET /health took 200 ms (HTTP 200)", "≤ 250 ms")


def test_latency_over_the_budget_fails_with_the_time_taken(serve: Serve, fake_clock: FakeClock) -> None:
    result = latency(target(), serve({"/health": answering_after(fake_clock, 1.5)}))
    assert result.ok is False
    assert result.explain() == "http[app]: GET /health took 1500 ms (HTTP 200), expected ≤ 1000 ms"


def test_latency_exactly_at_the_budget_passes(serve: Serve, fake_clock: FakeClock) -> None:
    assert latency(target(latency_budget_ms=500), serve({"/health": answering_after(fake_clock, 0.5)})).ok is True


def test_a_slow_error_page_is_no_latency_verdict(serve: Serve, fake_clock: FakeClock) -> None:
    result = latency(target(), serve({"/health": answering_after(fake_clock, 1.5, status=500)}))
    assert result.ok is None
    assert result.observed == ("no verdict: GET /health answered HTTP 500 in 1500 ms, not HTTP 200 "
                               "(deferred to http.health)")


@pytest.mark.parametrize("spec", [health, ready, latency], ids=lambda s: s.check)
def test_a_dropped_connection_is_a_failed_check_with_the_reason(spec: object) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    cfg = target()
    with Connections(http_transport=httpx.MockTransport(drop)) as c:
        result = spec(cfg, c)  # type: ignore[operator]
    assert (result.ok, result.target, result.check) == (False, "http[app]", spec.check)  # type: ignore[attr-defined]
    assert result.expected == spec.expected(cfg.config)  # type: ignore[attr-defined]
    assert "Server disconnected without sending a response" in result.observed


def test_no_cookie_rides_from_one_check_to_the_next() -> None:
    """One client serves every target its thread checks, and cookies do not tell ports apart: a ``Set-Cookie`` of
    one service must not be sent to the next service checked on the same host (each check is one `curl -f`)."""
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={"status": "ok"}, headers={"set-cookie": "session=abc; Path=/"})

    with Connections(http_transport=httpx.MockTransport(answer)) as c:
        first = Target("http", "a", HttpService.model_validate({"url": "http://127.0.0.1:8001"}))
        second = Target("http", "b", HttpService.model_validate({"url": "http://127.0.0.1:8002"}))
        assert [health(t, c).ok for t in (first, second, first)] == [True, True, True]
    assert seen == [None, None, None]
