"""Integration tests of the sandbox reference app against a real PostgreSQL and Redis.

A module-scoped fixture starts PostgreSQL 15 and Redis on free loopback ports
in a temporary directory, creates the ``items`` table and starts the app as a
subprocess. Tests that break a dependency restore it before they end, so each
test starts from a healthy stack.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import trustme
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from opsproof.sandbox.app import App, Redactor, pg_target, redis_target

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Trust auth never asks for it, so it can sit in the DSN as a canary that must never leak.
PG_PASSWORD = "canary-pw-7f3a9c"

SCHEMA = """
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    tenant_id int NOT NULL,
    name text NOT NULL,
    price_cents int NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

Sample = tuple[str, dict[str, str], float]


# ---------------------------------------------------------------------------
# helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def run(cmd: Sequence[str], timeout: float = 60) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def as_postgres(cmd: Sequence[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


def parse_metrics(text: str) -> list[Sample]:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def sample_value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for sample_name, sample_labels, value in samples:
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
            return value
    return None


# ---------------------------------------------------------------------------
# the stack


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.app_port = free_port()
        self.pg_dir = root / "pg"  # owned by postgres: data, socket and log
        self.pgdata = self.pg_dir / "data"
        self.redis_pidfile = root / "redis.pid"
        self.app_pidfile = root / "app.pid"
        self.app_log = root / "app.log"
        self.dsn = (
            f"host=127.0.0.1 port={self.pg_port} user=postgres dbname=postgres "
            f"password={PG_PASSWORD} connect_timeout=5"
        )
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.app: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.app_port}", timeout=10)

    # -- postgres ---------------------------------------------------------------

    def init_postgres(self) -> None:
        self.pg_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        run(
            as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-A", "trust", "-U", "postgres", "-N"]
            )
        )

    def start_postgres(self) -> None:
        options = f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        cmd = [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-l",
            str(self.pg_dir / "log"),
            "-w",
            "-t",
            "30",
        ]
        run(as_postgres([*cmd, "-o", options, "start"]))

    def stop_postgres(self, mode: str = "fast") -> None:
        run(
            as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "-t", "30", "stop"]
            )
        )

    def postgres_pids(self) -> list[int]:
        """The postmaster and its children (backends and background workers)."""
        postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(entry.name))
        return pids

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []

    # -- redis ------------------------------------------------------------------

    def start_redis(self) -> None:
        run(
            [
                "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--pidfile", str(self.redis_pidfile), "--dir", str(self.root),
                "--logfile", str(self.root / "redis.log"),
            ]
        )  # fmt: skip
        wait_until(self.redis_answers, 10, "redis to answer PING")

    def redis_answers(self) -> bool:
        with redis.Redis.from_url(self.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5) as client:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def kill_redis(self) -> None:
        try:
            pid = int(self.redis_pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not port_open(self.redis_port), 10, "redis to go away")

    # -- the app ----------------------------------------------------------------

    def start_app(
        self, *extra: str, port: int | None = None, pidfile: Path | None = None
    ) -> subprocess.Popen[bytes]:
        port = port or self.app_port
        cmd = [
            sys.executable, "-m", "opsproof.sandbox.app", "--host", "127.0.0.1", "--port", str(port),
            "--pg-dsn", self.dsn, "--redis-url", self.redis_url,
            "--pidfile", str(pidfile or self.app_pidfile), *extra,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with open(self.root / f"app-{port}.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)

        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"app exited with {proc.returncode}:\n{self.app_output(port)}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
            except httpx.TransportError:
                return False
            return True

        try:
            wait_until(answers, 20, "the app to answer")
        except BaseException:
            stop_process(proc)
            raise
        return proc

    def app_output(self, port: int | None = None) -> str:
        return (self.root / f"app-{port or self.app_port}.log").read_text(errors="replace")

    def wait_healthy(self, timeout: float = 20) -> None:
        def healthy() -> bool:
            try:
                status: object = self.http.get("/health").json().get("status")
            except (httpx.HTTPError, ValueError):
                return False
            return status == "ok"

        wait_until(healthy, timeout, "/health to report ok")

    # -- teardown ---------------------------------------------------------------

    def close(self) -> None:
        """Stop everything that may be running; each step runs even if another fails."""
        try:
            if self.app is not None:
                stop_process(self.app)
        finally:
            try:
                self.http.close()
                self.kill_redis()
            finally:
                try:
                    if (self.pgdata / "postmaster.pid").exists():
                        resume(self.postgres_pids())  # in case a test left it frozen
                        self.stop_postgres("immediate")
                finally:
                    shutil.rmtree(self.root, ignore_errors=True)


def freeze(pids: list[int]) -> list[int]:
    """SIGSTOP the postmaster and its children; a child that exited since it was listed needs no stopping."""
    stopped = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        stopped.append(pid)
    return stopped


def resume(pids: list[int]) -> None:
    """SIGCONT the children before the postmaster: a child that exited just before the SIGSTOP is a zombie the
    stopped postmaster cannot reap, and once the postmaster runs again it reaps it (its pid is gone)."""
    for pid in reversed(pids):
        os.kill(pid, signal.SIGCONT)


@contextmanager
def running_stack(prefix: str = "opsproof-app-") -> Iterator[Stack]:
    """PostgreSQL (with the items table), Redis and the app in a new temporary folder; all stopped and removed on
    leaving. Also bench/bench_scrape.py's stack."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # the postgres user must reach its directory inside
    st = Stack(root)
    try:
        st.init_postgres()
        st.start_postgres()
        st.sql(SCHEMA)
        st.start_redis()
        st.app = st.start_app()
        st.wait_healthy()
        yield st
    finally:
        st.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack() as st:
        yield st


@pytest.fixture
def healthy(stack: Stack) -> Stack:
    """The stack, once /health says ok (a previous test may just have restored a dependency)."""
    stack.wait_healthy()
    return stack


def create_item(stack: Stack, name: str = "widget") -> int:
    rows = stack.sql(
        "INSERT INTO items (tenant_id, name, price_cents) VALUES (7, %s, 1250) RETURNING id", (name,)
    )
    item_id: int = rows[0][0]
    return item_id


# ---------------------------------------------------------------------------
# tests


def test_health_ok(healthy: Stack) -> None:
    response = healthy.http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == "v1"
    for name in ("postgres", "redis"):
        check = body["checks"][name]
        assert check["status"] == "ok"
        assert check["error"] is None
        assert isinstance(check["latency_ms"], float)
    ready = healthy.http.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


def test_item_read_through_cache(healthy: Stack) -> None:
    item_id = create_item(healthy, "read-through")
    first = healthy.http.get(f"/items/{item_id}")
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "miss"
    assert first.json()["name"] == "read-through"
    second = healthy.http.get(f"/items/{item_id}")
    assert second.status_code == 200
    assert second.headers["X-Cache"] == "hit"
    assert second.json() == first.json()
    with redis.Redis.from_url(healthy.redis_url) as client:
        assert 0 < client.ttl(f"item:{item_id}") <= 60

    missing = healthy.http.get("/items/999999999")
    assert missing.status_code == 404


def test_post_and_list_items(healthy: Stack) -> None:
    created = healthy.http.post("/items", json={"tenant_id": 3, "name": "gadget", "price_cents": 999})
    assert created.status_code == 201
    row = created.json()
    assert {k: row[k] for k in ("tenant_id", "name", "price_cents")} == {
        "tenant_id": 3,
        "name": "gadget",
        "price_cents": 999,
    }
    assert isinstance(row["id"], int)
    assert row["updated_at"]
    assert healthy.http.get(f"/items/{row['id']}").json() == row

    listed = healthy.http.get("/items", params={"limit": 1})
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1
    assert len(healthy.http.get("/items", params={"limit": 1000}).json()["items"]) <= 100

    assert (
        healthy.http.post("/items", json={"tenant_id": "x", "name": "a", "price_cents": 1}).status_code == 400
    )
    assert healthy.http.post("/items", content=b"{not json").status_code == 400
    assert healthy.http.get("/items", params={"limit": "many"}).status_code == 400
    unknown = healthy.http.get("/no/such/path")
    assert unknown.status_code == 404
    assert "error" in unknown.json()
    assert healthy.http.post("/health").status_code == 405
    unsupported = healthy.http.delete("/items")
    assert unsupported.status_code == 501
    assert "error" in unsupported.json()


def test_every_route_has_its_latency_series_from_the_start() -> None:
    # a series born with a route's first requests shows in rate() only one scrape later (a late latency alert);
    # a fresh App (nothing connects before a request) has served nothing yet
    app = App("postgresql://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0")
    try:
        samples = parse_metrics(generate_latest(app.metrics.registry).decode())
    finally:
        app.close()
    for method, handler in (("GET", "/items"), ("POST", "/items"), ("GET", "/items/{id}"), ("GET", "/health"),
                            ("GET", "/ready"), ("POST", "/admin/release")):
        assert sample_value(samples, "http_request_duration_seconds_count", method=method, handler=handler) == 0, \
            (method, handler)
    assert sample_value(samples, "http_request_duration_seconds_count", handler="/metrics") is None


def test_metrics(healthy: Stack) -> None:
    item_id = create_item(healthy)
    healthy.http.get(f"/items/{item_id}")
    healthy.http.get("/health")
    healthy.http.get("/no/such/path")
    healthy.http.get("/metrics")
    response = healthy.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = parse_metrics(response.text)

    handlers = {labels["handler"] for name, labels, _ in samples if name == "http_requests_total"}
    assert {"/items/{id}", "/health", "unmatched"} <= handlers
    assert "/metrics" not in handlers
    assert not any(h.startswith("/items/") and h != "/items/{id}" for h in handlers), handlers
    assert (
        sample_value(samples, "http_requests_total", method="GET", handler="/items/{id}", status="200") or 0
    ) >= 1
    assert sample_value(samples, "http_requests_total", handler="unmatched", status="404") is not None
    assert (
        sample_value(
            samples, "http_request_duration_seconds_bucket", method="GET", handler="/items/{id}", le="0.005"
        )
        is not None
    )
    assert sample_value(samples, "http_request_duration_seconds_count", handler="/metrics") is None
    assert sample_value(samples, "app_dependency_up", dependency="postgres") == 1
    assert sample_value(samples, "app_dependency_up", dependency="redis") == 1
    assert sample_value(samples, "app_info", version="v1") == 1


def test_redis_down_degrades_but_serves(healthy: Stack) -> None:
    item_id = create_item(healthy, "no-cache")
    healthy.kill_redis()
    try:
        response = healthy.http.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["postgres"]["status"] == "ok"
        assert body["checks"]["redis"]["status"] == "down"
        # the check failed on the refusal itself, not after waiting out a timeout or a retry loop
        assert "Connection refused" in body["checks"]["redis"]["error"], body["checks"]["redis"]

        item = healthy.http.get(f"/items/{item_id}")
        assert item.status_code == 200
        assert item.headers["X-Cache"] == "bypass"
        assert item.json()["name"] == "no-cache"
        samples = parse_metrics(healthy.http.get("/metrics").text)
        assert sample_value(samples, "app_dependency_up", dependency="redis") == 0
    finally:
        healthy.start_redis()
    healthy.wait_healthy()


def test_postgres_down_then_recovers(healthy: Stack) -> None:
    item_id = create_item(healthy, "survivor")
    healthy.stop_postgres("fast")
    try:
        response = healthy.http.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "down"
        assert body["checks"]["postgres"]["status"] == "down"
        # a stopped server refuses at once: the check says so instead of waiting for a deadline
        assert re.search(r"refused|No such file", body["checks"]["postgres"]["error"]), body["checks"]["postgres"]
        assert PG_PASSWORD not in response.text

        ready = healthy.http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert ready.json()["reason"]
        assert healthy.http.get("/items").status_code == 503
    finally:
        healthy.start_postgres()
    healthy.wait_healthy()
    assert healthy.http.get("/ready").status_code == 200
    assert healthy.http.get(f"/items/{item_id}").status_code == 200
    assert healthy.http.get("/items").status_code == 200


def test_frozen_postgres_is_bounded(healthy: Stack) -> None:
    """A SIGSTOPped server never answers (no statement_timeout either): checks must still be bounded."""
    healthy.http.get("/items")  # leave a pooled connection to the soon-frozen server
    pids = freeze(healthy.postgres_pids())
    try:
        response = healthy.http.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "down"
        # a frozen server never answers, so only the health check's own deadlines can end it, and it names the one
        # that did: the query's 1.5 s, the pool's 1 s, or the 2 s connect timeout (not /items' 2.5 s). The connect
        # timeout is reached when the app's dependency monitor holds the one idle connection at that moment, so
        # /health opens a new one; psycopg's error is then given with its class, as every psycopg error of the app
        assert re.fullmatch(r"no answer within 1\.5 s|no free database connection within 1 s|"
                            r"(ConnectionTimeout|OperationalError): connection timeout expired",
                            response.json()["checks"]["postgres"]["error"]), \
            response.json()["checks"]["postgres"]
        # a request's query is bounded too: 503 "database unavailable" comes only from a deadline of the pool
        # (a psycopg error would be a 500, a hang the client's ReadTimeout)
        items = healthy.http.get("/items")
        assert (items.status_code, items.json()) == (503, {"error": "database unavailable"})
    finally:
        resume(pids)
    healthy.wait_healthy()


def test_scrape_never_waits_on_a_dependency(healthy: Stack) -> None:
    """/metrics renders what the background monitor last saw, so a scrape never queues behind a frozen PostgreSQL:
    scrapes answer one after another while a request that needs the database, sent before them, is still waiting
    on it; and the monitor turns app_dependency_up{postgres} to 0. How long a scrape takes meanwhile is a figure
    for bench/bench_scrape.py, not an assertion here."""
    healthy.http.get("/items", params={"limit": 1}).raise_for_status()  # the pool holds a connection again
    pids = freeze(healthy.postgres_pids())
    try:
        with ThreadPoolExecutor(1) as pool:
            # the witness can answer only when PostgreSQL does or the app's own deadline gives up on it (a 2 s
            # connect or 2.5 s query timeout); a scrape that waited on the database would wait ≥ 1.5 s (the
            # health query's deadline), so three in a row cannot all come back before the witness
            witness = pool.submit(httpx.get, str(healthy.http.base_url.join("/items")), timeout=10)
            scrapes = [healthy.http.get("/metrics").status_code for _ in range(3)]
            witness_pending = not witness.done()

            def reports_down() -> bool:
                text = healthy.http.get("/metrics").text
                return sample_value(parse_metrics(text), "app_dependency_up", dependency="postgres") == 0

            wait_until(reports_down, 10, "app_dependency_up{postgres} == 0 while PostgreSQL is frozen")
            answered = witness.result(timeout=10)
    finally:
        resume(pids)
    assert scrapes == [200, 200, 200]
    assert witness_pending, "a request waiting on the frozen database answered before three scrapes did"
    assert (answered.status_code, answered.json()) == (503, {"error": "database unavailable"})
    healthy.wait_healthy()
    wait_until(lambda: sample_value(parse_metrics(healthy.http.get("/metrics").text), "app_dependency_up",
                                    dependency="postgres") == 1, 10, "app_dependency_up{postgres} back to 1")


def test_release_injects_errors_and_latency(healthy: Stack) -> None:
    assert healthy.http.get("/admin/release").json() == {"version": "v1", "error_rate": 0.0, "latency_ms": 0}
    try:
        deployed = healthy.http.post(
            "/admin/release", json={"version": "v2", "error_rate": 1.0, "latency_ms": 0}
        )
        assert deployed.status_code == 200
        assert deployed.json() == {"version": "v2", "error_rate": 1.0, "latency_ms": 0}
        assert healthy.http.get("/admin/release").json()["version"] == "v2"

        failed = healthy.http.get("/items")
        assert (failed.status_code, failed.json()) == (500, {"error": "injected"})
        assert healthy.http.get("/items/1").status_code == 500
        health = healthy.http.get("/health")  # not subject to injection
        assert (health.status_code, health.json()["version"]) == (200, "v2")

        samples = parse_metrics(healthy.http.get("/metrics").text)
        assert (
            sample_value(samples, "http_requests_total", method="GET", handler="/items", status="500") or 0
        ) >= 1
        assert sample_value(samples, "app_info", version="v2") == 1
        assert sample_value(samples, "app_info", version="v1") is None

        healthy.http.post("/admin/release", json={"version": "v3", "error_rate": 0.0, "latency_ms": 300})
        before = parse_metrics(healthy.http.get("/metrics").text)
        assert healthy.http.get("/items").status_code == 200
        # the injected 300 ms is where Prometheus sees latency: the request lands above the 0.25 s bucket (it is
        # observed just after its answer is sent, hence the poll)
        after = before

        def added(le: str) -> float:
            labels = {"method": "GET", "handler": "/items", "le": le}
            return (sample_value(after, "http_request_duration_seconds_bucket", **labels) or 0) - (
                sample_value(before, "http_request_duration_seconds_bucket", **labels) or 0)

        def observed() -> bool:
            nonlocal after
            after = parse_metrics(healthy.http.get("/metrics").text)
            return added("+Inf") > 0

        wait_until(observed, 5, "the slowed request in http_request_duration_seconds")
        assert (added("0.25"), added("+Inf")) == (0, 1)

        bad = healthy.http.post("/admin/release", json={"version": "v4", "error_rate": 2, "latency_ms": 0})
        assert bad.status_code == 400
    finally:
        healthy.http.post("/admin/release", json={"version": "v1", "error_rate": 0.0, "latency_ms": 0})
    assert healthy.http.get("/items").status_code == 200


def test_tls_and_clean_shutdown(healthy: Stack) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = healthy.root / "cert.pem", healthy.root / "key.pem"
    certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(keyfile))
    port, tls_port, pidfile = free_port(), free_port(), healthy.root / "tls-app.pid"
    proc = healthy.start_app(
        "--tls-port",
        str(tls_port),
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
        port=port,
        pidfile=pidfile,
    )
    try:
        assert int(pidfile.read_text()) == proc.pid
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with httpx.Client(base_url=f"https://127.0.0.1:{tls_port}", verify=context, timeout=10) as client:
            response = client.get("/health")
        assert (response.status_code, response.json()["status"]) == (200, "ok")
    finally:
        returncode = stop_process(proc)
    assert returncode == 0
    assert not pidfile.exists()
    output = healthy.app_output(port)
    assert "listening on" in output
    assert "GET /health" not in output  # no per-request log lines
    assert PG_PASSWORD not in output


def test_no_secret_in_app_log(stack: Stack) -> None:
    output = stack.app_output()
    assert "listening on" in output
    assert "dependency postgres is up" in output  # dependency state changes are logged ...
    assert PG_PASSWORD not in output  # ... but never the DSN or its password


def test_redaction_of_uri_credentials() -> None:
    dsn = "postgresql://app:pg-secret-1@db.internal:6432/shop"
    url = "redis://:redis-secret-2@cache.internal:6380/1"
    redact = Redactor(dsn, url)
    text = redact(f"failed: {dsn} / pg-secret-1 / {url} / redis-secret-2")
    assert "secret" not in text
    assert pg_target(dsn) == "db.internal:6432/shop"
    assert redis_target(url) == "cache.internal:6380/1"
