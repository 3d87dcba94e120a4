"""How Connections shares clients: one HTTP client per probing thread (a shared pool's lock was the CPU cost of a
run of 500 checks), one SSL context per trust setting, everything closed by close()."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import httpx
import httpx._utils
import kubernetes.client
import kubernetes.client.configuration
import pytest
import yaml

from opsproof.inventory import Kubernetes, loads
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


def test_probe_threads_never_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
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
    monkeypatch.setattr(kubernetes.client.configuration, "getproxies", environment_read)
    clients: list[httpx.Client] = []
    apis: list[kubernetes.client.ApiClient] = []
    errors: list[BaseException] = []

    def probe_thread() -> None:
        try:
            clients.append(conns.http())
            apis.append(conns.kubernetes("kubernetes[env]", _kubeconfig(tmp_path, "env")))
            apis.append(conns.kubernetes("kubernetes[own]", _kubeconfig(tmp_path, "own", "http://own.proxy:8080")))
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
    assert apis[0].configuration.proxy == "http://proxy.example:3128"  # the API server is https
    assert apis[0].configuration.no_proxy == "localhost,10.0.0.1"
    assert apis[1].configuration.proxy == "http://own.proxy:8080"  # the kubeconfig's proxy-url wins
    conns.close()


def _kubeconfig(folder: Path, name: str, proxy_url: str | None = None) -> Kubernetes:
    config = folder / f"kubeconfig-{name}"
    cluster: dict[str, object] = {"server": "https://k8s.test:6443"}
    if proxy_url:
        cluster["proxy-url"] = proxy_url
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    return loads(f"environment: t\nkubernetes:\n  k: {{namespace: app, kubeconfig: {config}}}\n").kubernetes["k"]
