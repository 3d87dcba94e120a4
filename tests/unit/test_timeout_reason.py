"""A server that accepts and never answers is "no answer within 5 s", not "unreachable (ReadTimeout: timed out)"."""

from __future__ import annotations

import httpx
import psycopg
import pytest
import redis

from opsproof.result import unreachable


def raise_(exc_type: type[httpx.TimeoutException]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("timed out", request=request)
    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("exc_type", "observed"), [
    (httpx.ReadTimeout, "no answer within 5 s (read timeout)"),
    (httpx.ConnectTimeout, "no connection within 5 s (connect timeout)"),
])
def test_an_httpx_timeout_says_what_did_not_happen_and_within_what(exc_type: type[httpx.TimeoutException],
                                                                     observed: str) -> None:
    with httpx.Client(transport=raise_(exc_type), timeout=5) as client, pytest.raises(exc_type) as caught:
        client.get("http://app.example/health")
    res = unreachable("http[app]", "http.health", "HTTP 200", caught.value, 5.0)
    assert res.observed == observed
    assert res.error == f"{exc_type.__name__}: timed out"


@pytest.mark.parametrize(("exc", "observed"), [
    (redis.exceptions.TimeoutError("Timeout reading from socket"), "no answer in time (read timeout)"),
    (redis.exceptions.TimeoutError("Timeout connecting to server"), "no connection in time (connect timeout)"),
    (psycopg.OperationalError("connection timeout expired"), "no connection in time (connect timeout)"),
    (TimeoutError("_ssl.c:989: The handshake operation timed out"), "no TLS handshake in time (handshake timeout)"),
])
def test_redis_postgres_and_tls_timeouts_read_the_same(exc: BaseException, observed: str) -> None:
    assert unreachable("redis[cache]", "redis.ping", "PONG", exc, 5.0).observed == observed


def test_a_refused_connection_is_still_unreachable() -> None:
    res = unreachable("http[app]", "http.health", "HTTP 200", httpx.ConnectError("[Errno 111] refused"), 0.0)
    assert res.observed == "unreachable (ConnectError: [Errno 111] refused)"
