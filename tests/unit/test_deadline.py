"""A check's total deadline, on a fake clock: every wait is cut to what is left, and the finding says what the
server did meanwhile (nothing, some bytes then nothing, a trickle)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
import pytest

from opsproof.inventory import HttpService
from opsproof.probes import answers
from opsproof.probes.base import Outcome, Target, probe, run
from opsproof.probes.bounded import BoundedStream
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Deadline, Expired, bound, within
from opsproof.result import Severity

if TYPE_CHECKING:  # the fixtures' types (tests/unit/conftest.py)
    from tests.unit.conftest import FakeClock


class Trickle(httpcore.NetworkStream):
    """A server's stream on the fake clock: each read waits ``every`` seconds (or its timeout, if shorter) for one
    byte; ``timeouts`` records the timeout each read was given."""

    def __init__(self, clock: FakeClock, every: float) -> None:
        self.clock, self.every, self.timeouts = clock, every, list[float | None]()

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        if timeout is not None and timeout < self.every:
            self.clock.advance(timeout)
            raise httpcore.ReadTimeout("timed out")
        self.clock.advance(self.every)
        return b"x"

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_trickle_within_every_read_timeout_still_ends_at_the_deadline(clock: FakeClock) -> None:
    server = Trickle(clock, every=0.4)
    stream = BoundedStream(server)
    def read_to_the_end() -> None:
        stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=3)
        while True:
            stream.read(65536, timeout=3)  # each read alone would wait up to 3 s: the server never trips it

    with within(3, clock) as deadline, pytest.raises((Expired, httpcore.ReadTimeout)):
        read_to_the_end()
    assert deadline.passed()
    assert clock.now - 1000.0 == pytest.approx(3.0)  # the last wait was cut to what was left, not 3 s more
    assert server.timeouts[0] == 3
    assert server.timeouts[-1] == pytest.approx(0.2)
    assert deadline.received == 7
    assert deadline.describe() == "no complete answer within 3 s (the server sent 7 bytes, then trickled)"


def test_the_finding_says_what_the_server_did(clock: FakeClock) -> None:
    deadline = Deadline(3, clock)
    assert deadline.describe() == ("no answer within 3 s (waited for the entry's connection, in use by another of "
                                   "its checks)")
    assert deadline.bound(5, "connect") == 3  # the client's own timeout, cut to what is left
    assert deadline.describe() == "no connection within 3 s (connect)"
    deadline.bound(5, "tls")
    assert deadline.describe() == "no TLS handshake within 3 s"
    deadline.bound(5, "send")
    deadline.bound(5, "answer")
    assert deadline.describe() == "no answer within 3 s (the server sent nothing)"
    deadline.got(49)  # a status line and a header, then silence
    clock.advance(3)
    assert deadline.describe() == "no complete answer within 3 s (the server sent 49 bytes, then nothing for 3.0 s)"
    with pytest.raises(Expired, match=r"^no complete answer within 3 s \(the server sent 49 bytes") as caught:
        deadline.bound(5, "answer")
    assert caught.value.evidence == {"deadline_s": 3, "waiting_for": "answer", "bytes_received": 49}
    with pytest.raises(Expired, match=r"^request not sent within 3 s"):  # what it was about to wait for
        deadline.bound(5, "send")


def test_a_new_request_counts_its_answer_afresh(clock: FakeClock) -> None:
    deadline = Deadline(3, clock)
    deadline.bound(5, "answer")
    deadline.got(10)
    deadline.bound(5, "send")
    assert deadline.received == 0
    assert deadline.describe() == "request not sent within 3 s (the server does not read)"


def test_a_deadline_spent_before_the_first_call_was_spent_waiting_for_the_connection(clock: FakeClock) -> None:
    deadline = Deadline(3, clock)
    clock.advance(3)  # a BlockingConnectionPool's wait, while another check of the entry held its connection
    with pytest.raises(Expired, match=r"^no answer within 3 s \(waited for the entry's connection, in use by "):
        deadline.bound(5, "connect")


def test_no_deadline_leaves_the_clients_timeouts_as_they_are(clock: FakeClock) -> None:
    deadline = Deadline(None, clock)
    clock.advance(10_000)
    assert deadline.bound(5, "answer") == 5
    assert not deadline.ended_check()


@probe("http.health", "http", Severity.CRITICAL, "curl", expected=lambda cfg: "HTTP 200")
def _cut_read(target: Target[Any], conns: Connections) -> Outcome:
    """A client whose read was cut to the deadline (1.5 s left of 2) and timed out, as httpx reports it."""
    time.monotonic.advance(0.5)  # type: ignore[attr-defined]  # the fake clock
    assert bound(5, "answer") == pytest.approx(1.5)
    time.monotonic.advance(1.5)  # type: ignore[attr-defined]
    raise httpx.ReadTimeout("timed out")


def test_run_reports_the_deadline_not_the_clients_read_timeout(fake_clock: Any) -> None:
    cfg = HttpService(url="http://app.example", timeout_s=2)
    result = run(_cut_read, Target("http", "app", cfg), Connections())
    assert result.ok is False
    assert result.observed == "no answer within 2 s (the server sent nothing)"
    assert result.evidence["deadline_s"] == 2


def _client(handler: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_a_declared_length_over_the_cap_fails_before_the_body_is_read() -> None:
    class Endless(httpx.SyncByteStream):
        def __iter__(self) -> Any:
            raise AssertionError("the body was read")

    client = _client(lambda request: httpx.Response(200, headers={"Content-Length": "5000000"}, stream=Endless()))
    with pytest.raises(answers.TooLarge, match=r"^answer larger than 1 MiB \(GET /health: Content-Length 5000000\)$"):
        answers.get(client, "http://app.example/health", max_bytes=1 << 20, timeout=5, path="/health")


def test_an_endless_body_is_read_to_the_cap_plus_one_chunk() -> None:
    served = [0]

    class Endless(httpx.SyncByteStream):
        def __iter__(self) -> Any:
            while True:
                served[0] += 65536
                yield b" " * 65536

    client = _client(lambda request: httpx.Response(200, stream=Endless()))
    too_large = r"^answer larger than 256 KiB \(GET /health: stopped after 327,680 bytes\)$"
    with pytest.raises(answers.TooLarge, match=too_large) as caught:
        answers.get(client, "http://app.example/health", max_bytes=256 << 10, timeout=5, path="/health")
    assert caught.value.evidence["bytes_read"] == served[0] == (256 << 10) + 65536


def test_an_answer_within_the_cap_is_the_response_client_get_would_give() -> None:
    client = _client(lambda request: httpx.Response(503, json={"status": "down"}))
    response = answers.get(client, "http://app.example/health", max_bytes=1024, timeout=5, path="/health")
    assert (response.status_code, response.json()) == (503, {"status": "down"})
    with pytest.raises(httpx.HTTPStatusError):
        response.raise_for_status()


@pytest.mark.parametrize(("n", "text"),
                         [(1 << 20, "1 MiB"), (16 << 20, "16 MiB"), (1536, "1.5 KiB"), (100, "100 bytes")])
def test_sizes_read_as_people_write_them(n: int, text: str) -> None:
    assert answers.size(n) == text
