"""DNS lookups within the check's deadline, tested at the seam where names are resolved (``resolver.lookup``): no
resolver on this machine can be made to hang, so a lookup that never answers is put there. Each kind that looks a
name up itself (HTTP through httpcore, Redis, TLS, the Kubernetes client's urllib3) ends at its deadline, naming the
host; PostgreSQL's lookup is libpq's, inside its connect thread, which the connect's own bound already cuts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsproof.inventory import HttpService, Kubernetes, Redis, TlsEndpoint
from opsproof.probes import ALL, Connections, Target, resolver, run
from opsproof.probes.deadline import within

TIMEOUT = 0.3


class Hung:
    """A resolver that never answers (until the test ends); the names it was asked, in order."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release = threading.Event()

    def __call__(self, host: str, *args: Any) -> list[Any]:
        self.asked.append(host)
        self.release.wait(30)
        raise OSError("released")


@pytest.fixture
def hung(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hung]:
    lookup = Hung()
    monkeypatch.setattr(resolver, "lookup", lookup)
    yield lookup
    lookup.release.set()


def _first(kind: str, cfg: Any) -> Any:
    spec = next(s for s in ALL if s.kind == kind and s.applies(cfg))
    with Connections() as conns:
        return run(spec, Target(kind, "x", cfg), conns)


def _kubernetes(tmp_path: Path) -> Kubernetes:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://k8s.hung.example:6443"}}],
        "users": [{"name": "u", "user": {"token": "dummy"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    # 1 s: the client's first import and kubeconfig load (in the check) took up to 0.3 s on a busy machine
    return Kubernetes(namespace="app", kubeconfig=str(path), timeout_s=1, deployments={"api": {}})


@pytest.mark.parametrize(("kind", "host"), [("http", "api.hung.example"), ("redis", "cache.hung.example"),
                                            ("tls", "tls.hung.example"), ("kubernetes", "k8s.hung.example")])
def test_a_lookup_that_never_answers_ends_at_the_deadline(hung: Hung, tmp_path: Path, kind: str, host: str) -> None:
    cfg = {"http": lambda: HttpService(url=f"http://{host}:8080", timeout_s=TIMEOUT),
           "redis": lambda: Redis(url=f"redis://:canary@{host}:6379/0", timeout_s=TIMEOUT),
           "tls": lambda: TlsEndpoint(host=host, timeout_s=TIMEOUT),
           "kubernetes": lambda: _kubernetes(tmp_path)}[kind]()
    result = _first(kind, cfg)
    assert result.ok is False
    assert result.observed.startswith(f"no address for {host} within {cfg.timeout_s:g} s (DNS lookup)"), result.observed
    assert hung.asked[0] == host


def test_an_address_is_not_looked_up_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    monkeypatch.setattr(resolver, "lookup", lambda *a: threads.append(threading.current_thread().name) or [])
    with within(TIMEOUT):
        resolver.resolve("127.0.0.1", 1)
        resolver.resolve("::1", 1)
        resolver.resolve("db.example", 1)
    assert threads == [threading.current_thread().name] * 2 + ["opsproof-resolve"]
