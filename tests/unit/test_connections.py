"""How Connections shares clients: one HTTP client per probing thread (a shared pool's lock was the CPU cost of a
run of 500 checks), one SSL context per trust setting, everything closed by close()."""

from __future__ import annotations

import threading
import urllib.request

import httpx
import httpx._utils
import pytest

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


def test_probe_threads_never_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxies are read once, where the Connections are made: httpx reads them through getproxies(), which
    iterates os.environ, and pytest removes PYTEST_CURRENT_TEST on the main thread around every test — a probe
    thread's iteration that met the removal raised KeyError and failed a health check (CI, stop 19)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,10.0.0.1")
    conns = Connections()

    def environment_read() -> dict[str, str]:
        raise AssertionError("a probe thread read the environment")

    monkeypatch.setattr(urllib.request, "getproxies", environment_read)
    monkeypatch.setattr(httpx._utils, "getproxies", environment_read)
    clients: list[httpx.Client] = []
    errors: list[BaseException] = []

    def probe_thread() -> None:
        try:
            clients.append(conns.http())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=probe_thread)
    worker.start()
    worker.join(timeout=10)
    assert errors == []
    client = clients[0]
    direct = client._transport_for_url(httpx.URL("http://localhost:8080/health"))
    proxied = client._transport_for_url(httpx.URL("https://svc.example/health"))
    assert direct is client._transport  # NO_PROXY kept
    assert proxied is not client._transport  # HTTPS_PROXY kept
    assert client._transport_for_url(httpx.URL("https://10.0.0.1/health")) is client._transport
    conns.close()
