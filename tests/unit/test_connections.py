"""How Connections shares clients: one HTTP client per probing thread (a shared pool's lock was the CPU cost of a
run of 500 checks), one SSL context per trust setting, everything closed by close()."""

from __future__ import annotations

import threading

import httpx

from opsproof.probes import Connections


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"status": "ok"})


def test_one_http_client_per_thread_reused_by_it() -> None:
    conns = Connections(http_transport=httpx.MockTransport(_ok))
    mine = conns.http()
    theirs: list[httpx.Client] = []
    worker = threading.Thread(target=lambda: theirs.extend([conns.http(), conns.http()]))
    worker.start()
    worker.join(timeout=10)
    assert conns.http() is mine
    assert theirs[0] is theirs[1]
    assert theirs[0] is not mine
    assert theirs[0].get("http://svc/health").json() == {"status": "ok"}
    conns.close()
    assert mine.is_closed
    assert theirs[0].is_closed


def test_ssl_contexts_are_made_once_per_trust_setting() -> None:
    conns = Connections()
    strict = conns.ssl_context()
    assert conns.ssl_context() is strict
    lax = conns.ssl_context(check=False)
    assert lax is not strict
    assert not lax.check_hostname
    assert conns.ssl_context(store="httpx") is not strict
    conns.close()
