"""PostgreSQL's connect: bounded by the entry's connect_timeout_s itself (psycopg waits whole seconds, at least 2),
and tried once per run — the entry's next checks fail at once with the same reason."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Expired


class Refusing:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, dsn: str, **kwargs: Any) -> Any:
        self.calls += 1
        raise psycopg.OperationalError('connection to server at "db" failed: Connection refused')


def test_a_failed_connect_is_remembered_for_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    connect = Refusing()
    monkeypatch.setattr(psycopg, "connect", connect)
    reasons = []
    with Connections() as conns:
        for _ in range(3):
            with pytest.raises(psycopg.OperationalError) as caught, conns.postgres("postgres[main]", "dsn", 3):
                pass
            reasons.append(str(caught.value))
    assert connect.calls == 1
    assert reasons == ['connection to server at "db" failed: Connection refused'] * 3


def test_an_entry_polled_until_it_passes_tries_again(monkeypatch: pytest.MonkeyPatch) -> None:
    connect = Refusing()
    monkeypatch.setattr(psycopg, "connect", connect)
    with Connections() as conns:
        for _ in range(3):
            with pytest.raises(psycopg.OperationalError), conns.postgres("postgres[main]", "dsn", 3, remember=False):
                pass
    assert connect.calls == 3


class Late:
    """A server that answers the connect only when the test says so; the session it gives is recorded."""

    def __init__(self) -> None:
        self.answer = threading.Event()
        self.timeouts: list[int] = []
        self.sessions: list[Session] = []

    def __call__(self, dsn: str, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs["connect_timeout"])
        assert self.answer.wait(10)
        self.sessions.append(Session())
        return self.sessions[-1]


class Session:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_connect_timeout_below_psycopgs_minimum_is_enforced_and_a_late_session_closed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = Late()
    monkeypatch.setattr(psycopg, "connect", server)
    with Connections() as conns:
        with pytest.raises(Expired, match=r"^no connection within 0.2 s \(connect\)$"), \
                conns.postgres("postgres[main]", "dsn", 0.2):
            pass
        assert server.timeouts == [2]  # psycopg's own bound (its minimum) ends its thread; ours ended the check
        assert not server.sessions  # the check did not wait for psycopg
        server.answer.set()
        for thread in [t for t in threading.enumerate() if t.name == "opsproof-pg-connect"]:
            thread.join(10)
    assert [s.closed for s in server.sessions] == [True]


def test_each_statement_is_bounded_by_the_check_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """statement_timeout is the entry's timeout_s (the check's deadline), not its connect_timeout_s."""
    from opsproof.probes.deadline import within

    options: list[str] = []

    def connect(dsn: str, **kwargs: Any) -> Any:
        options.append(kwargs["options"])
        raise psycopg.OperationalError("refused")

    monkeypatch.setattr(psycopg, "connect", connect)
    with Connections() as conns, within(7), pytest.raises(psycopg.OperationalError), conns.postgres("k", "dsn", 3):
        pass
    assert "statement_timeout=7000 " in options[0]
