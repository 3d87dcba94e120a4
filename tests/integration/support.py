"""Helpers for the engine's tests: run a suite the way a user does (a pytest subprocess) and read its records."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import yaml

from opsproof.chaos import alerts
from opsproof.sandbox.control import SERVICES, Sandbox
from opsproof.sandbox.process import SandboxError, wait_for
from opsproof.util.process import owned_dir

REPO = Path(__file__).resolve().parents[2]


@dataclass
class SuiteRun:
    code: int
    output: str
    records: list[dict[str, Any]]
    junit: str

    @property
    def failed(self) -> set[str]:
        """``check@target`` of every failed check, e.g. ``redis.ping@redis[cache]``."""
        return {f"{r['check']}@{r['target']}" for r in self.records if r["outcome"] == "failed"}

    @property
    def failed_checks(self) -> set[str]:
        return {r["check"] for r in self.records if r["outcome"] == "failed"}

    @property
    def blocked(self) -> dict[str, str]:
        """check → the target whose outage blocked it (reported as one root cause, not as its own failure)."""
        return {r["check"]: r["blocked_by"] for r in self.records if r.get("verdict") == "blocked"}

    def record(self, check: str) -> dict[str, Any]:
        [found] = [r for r in self.records if r.get("check") == check]
        return found


def run_suite(inventory: Path | str, out: Path, *args: str, suite: str = "smoke", timeout: float = 120,
              env: dict[str, str] | None = None) -> SuiteRun:
    out.mkdir(parents=True, exist_ok=True)
    record, junit = out / "results.jsonl", out / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", suite, "--inventory", str(inventory), "--opsproof-out", str(out),
         f"--junitxml={junit}", "-p", "no:cacheprovider", "-q", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )
    records = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return SuiteRun(done.returncode, done.stdout + done.stderr, records,
                    junit.read_text() if junit.exists() else "")


def stop_process(process: subprocess.Popen[Any]) -> None:
    """A child the test started, ended: SIGTERM, 15 s to exit, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def interruptible() -> None:
    """``preexec_fn`` of a child a test interrupts: it takes Ctrl-C as a terminal gives it. A job started in the
    background by a non-interactive shell (nohup, some CI runners) inherits SIGINT *ignored*, and the signal the
    test sends would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def traffic(base_url: str, seconds: float, concurrency: int = 8,
            timeline: list[tuple[float, float]] | None = None) -> int:
    """Real requests through the app for a while (GET /items/{id}, which reads through the cache); ``timeline``
    collects (start, seconds) of each request as the client saw it. Returns the requests answered; one that timed out
    is not counted, and its worker goes on."""
    deadline = time.monotonic() + seconds
    count = [0] * concurrency

    def worker(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                started = time.time()
                try:
                    client.get(f"/items/{1 + (count[i] * concurrency + i) % 200}")
                except httpx.TimeoutException:  # a slow answer must not end this worker's traffic (a refused one does)
                    continue
                if timeline is not None:
                    timeline.append((started, time.time() - started))
                count[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 10)
    return sum(count)


class SandboxHelper:
    """The test sandbox plus the ways tests break it for real and mend it."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box

    @property
    def inventory(self) -> Path:
        return self.box.inventory_path

    def derive(self, out: Path, changes: dict[str, Any]) -> Path:
        """A copy of the sandbox inventory with dotted keys changed (``postgres.main.max_query_s: 1``)."""
        data = yaml.safe_load(self.inventory.read_text())
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
        out.mkdir(parents=True, exist_ok=True)
        path = out / "inventory.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def superuser(self, service: str = "postgres", db: str = "app") -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.box.dir / "pg" / "run"), port=self.box.port(service), user="postgres",
                               dbname=db, autocommit=True, connect_timeout=3)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.box.redis_url(), socket_timeout=3, decode_responses=True)

    def prometheus(self, path: str) -> Any:
        return httpx.get(self.box.url("prometheus") + path, timeout=3).json()["data"]

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.prometheus("/api/v1/alerts")["alerts"]
                if a["state"] == "firing"}

    def wait_firing(self, alert: str, timeout: float = 45) -> None:
        wait_for(lambda: alert in self.firing(), timeout, f"alert {alert} did not fire")

    def target_health(self, job: str) -> str:
        targets = self.prometheus("/api/v1/targets")["activeTargets"]
        return str(next(t["health"] for t in targets if t["labels"]["job"] == job))

    def last_scrape(self, job: str = "app") -> float:
        result = self.prometheus(f'/api/v1/query?query=timestamp(up{{job="{job}"}})')["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def wait_scrapes(self, count: int = 1, job: str = "app", timeout: float = 15) -> None:
        """Prometheus has scraped ``job`` ``count`` times since now: it has seen every request made before the call."""
        since = time.time()
        for n in range(count):
            wait_for(lambda t=since: self.last_scrape(job) > t, timeout,
                     f"no scrape {n + 1} of {job} since {since:.0f}")
            since = self.last_scrape(job)

    def active(self) -> set[str]:
        """Alerts pending or firing."""
        return {a["labels"]["alertname"] for a in self.prometheus("/api/v1/alerts")["alerts"]}

    def wait_quiet(self, seconds: int = 3, hold_s: float = 2.5, timeout: float = 40) -> None:
        """No request reached the app in the last ``seconds`` (as Prometheus has it), and that held for ``hold_s``:
        a window starting now holds no earlier test's traffic. Prometheus' windows are as coarse as its scrapes — a
        sample taken after a window's start still counts the requests just before it — and a burst that ended just
        now is not scraped yet, so "quiet" must hold across two scrapes (the chaos experiments' quiet baseline)."""
        alerts.query_settles(f"sum(increase(http_request_duration_seconds_count[{seconds}s])) or vector(0)", 0,
                             within=timeout, for_s=hold_s, configuration={"opsproof_sandbox_dir": str(self.box.dir)})

    def wait_healthy(self, timeout: float = 60) -> None:
        """Every target up and no alert pending or firing: a pending one (HighErrorRate after a test's 503s, say)
        would fire inside the next test."""
        seen: dict[str, object] = {}

        def ok() -> bool:
            targets = self.prometheus("/api/v1/targets")["activeTargets"]
            seen["down"] = sorted(t["labels"]["job"] for t in targets if t["health"] != "up")
            seen["active alerts"] = sorted(self.active())
            return not seen["down"] and not seen["active alerts"]

        try:
            wait_for(ok, timeout, "sandbox not healthy", interval=0.25)
        except SandboxError as exc:
            raise SandboxError(f"{exc} (last seen: {seen or 'Prometheus did not answer'})") from None

    def restore(self) -> None:
        """Bring every stopped service back, then wait until monitoring sees all of it healthy."""
        for name in SERVICES:
            if not self.box.sup.alive(name):
                self.box.start_service(name)
        self.wait_healthy()


def sandbox_root() -> Path:
    """Where the tests' own sandboxes live: ``$OPSPROOF_TEST_SANDBOX_ROOT`` (a test that kills a run points it at a
    folder of its own), else /tmp."""
    return Path(os.environ.get("OPSPROOF_TEST_SANDBOX_ROOT") or "/tmp")


@contextmanager
def own_sandbox(prefix: str) -> Iterator[SandboxHelper]:
    """A real sandbox of its own (not the user's) in a new folder ``<root>/<prefix><our pid>-…``, torn down whatever
    happens; the folders of runs that were killed outright (SIGKILL: no teardown) are removed first."""
    state = owned_dir(prefix, sandbox_root())
    box = Sandbox(state, ephemeral=True)
    try:
        box.up()
        yield SandboxHelper(box)
    finally:
        box.down()
        shutil.rmtree(state, ignore_errors=True)


class _LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default backlog of 5 drops connections: 1 s SYN retries


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threading HTTP server on a free loopback port answering with ``handler``; yields its base URL and stops
    it (sockets closed, thread joined) on leaving."""
    httpd = _LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def respond(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json") -> None:
    """Send one complete answer (status, Content-Type, Content-Length, body) from a request handler."""
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)

# an index whose build takes seconds in a restore (its function sleeps; it was fast when the source built it)
SLOW_SQL = """
CREATE FUNCTION slow_id(i int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS 'BEGIN RETURN i; END';
CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 6000) g;
CREATE INDEX t_slow ON t (slow_id(id));
CREATE OR REPLACE FUNCTION slow_id(i int) RETURNS int IMMUTABLE LANGUAGE plpgsql
  AS 'BEGIN PERFORM pg_sleep(0.005); RETURN i; END';
"""
