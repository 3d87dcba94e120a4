"""The fast tier's guard: a unit test may not reach a service. Opening a real network socket or starting a
process (a sandbox, a subprocess suite) fails the test with the reason; httpx.MockTransport opens no socket."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


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
