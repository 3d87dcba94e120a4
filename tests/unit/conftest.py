"""The fast tier's guard: a unit test may not reach a service. Opening a real network socket or starting a
process (a sandbox, a subprocess suite) fails the test with the reason; httpx.MockTransport opens no socket."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest

from opsproof.probes import Connections


class ServiceUsed(AssertionError):
    """A unit test tried to reach a real service: it belongs in tests/integration/."""


def _refuse(what: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ServiceUsed(f"unit tests start no service: {what}{args[1:2] or ''} — move the test to tests/integration/")

    return refuse


@pytest.fixture(autouse=True)
def _no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", _refuse("socket.create_connection"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("subprocess.Popen"))


class FakeClock:
    """``time.perf_counter`` and ``time.monotonic`` for one test: they move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wait(self, seconds: float) -> bool:
        """A stop event's ``wait``: time passes, nobody stopped the run."""
        self.advance(seconds)
        return False


@pytest.fixture
def clock() -> FakeClock:
    """A clock a unit test advances, handed to the code under test (nothing of ``time`` patched)."""
    return FakeClock()


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock a unit test advances (a server that "takes 1.5 s" advances it while it answers): durations judged
    by the code under test are then exact, on any machine under any load."""
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    monkeypatch.setattr(time, "monotonic", clock)
    return clock


Answer = Callable[[httpx.Request], httpx.Response]
Serve = Callable[[Mapping[str, Answer]], Connections]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve({"/health": lambda request: httpx.Response(200, json=…)})``: Connections whose HTTP goes to an
    httpx.MockTransport answering by path (anything else: 404). Closed after the test."""
    made: list[Connections] = []

    def connections(routes: Mapping[str, Answer]) -> Connections:
        def answer(request: httpx.Request) -> httpx.Response:
            route = routes.get(request.url.path)
            return route(request) if route else httpx.Response(404, text="no such path")

        made.append(Connections(http_transport=httpx.MockTransport(answer)))
        return made[-1]

    yield connections
    for conns in made:
        conns.close()
