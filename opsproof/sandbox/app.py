"""The sandbox's reference application: a small HTTP API over PostgreSQL with a Redis cache.

Run it as a process::

    python -m opsproof.sandbox.app --host 127.0.0.1 --port 8080 \\
        [--tls-port 8443 --certfile cert.pem --keyfile key.pem] \\
        --pg-dsn "host=127.0.0.1 port=5432 user=postgres dbname=postgres" \\
        --redis-url redis://127.0.0.1:6379/0 [--pidfile app.pid]

Endpoints: ``GET /health``, ``GET /ready``, ``GET /items``, ``GET /items/<id>``,
``POST /items``, ``GET /metrics``, ``GET|POST /admin/release``.

Every dependency call is bounded in time, so the app keeps answering (503 or
"degraded") when PostgreSQL or Redis is stopped, killed or frozen, and recovers
by itself once they are back. The schema (table ``items``) is created by the
sandbox; the app never creates or alters it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, LiteralString
from urllib.parse import parse_qs, urlsplit

import psycopg
import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("opsproof.sandbox.app")

APP_NAME = "opsproof-sandbox-app"
POOL_SIZE = 4
POOL_WAIT_S = 2.0  # waiting longer than this for a pool slot means "Postgres down"
QUERY_TIMEOUT_S = 2.5  # client-side deadline (server-side statement_timeout is 2 s)
HEALTH_POOL_WAIT_S = 1.0
HEALTH_QUERY_TIMEOUT_S = 1.5
REDIS_TIMEOUT_S = 0.5
MONITOR_INTERVAL_S = 0.5  # pause between background dependency checks (they feed app_dependency_up)
CACHE_TTL_S = 60
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
MAX_BODY_BYTES = 64 * 1024
REQUEST_IDLE_TIMEOUT_S = 30.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ITEM_PATH = re.compile(r"/items/([0-9]{1,18})")  # 18 digits always fit a bigint
STATIC_ROUTES = frozenset({"/health", "/ready", "/metrics", "/items", "/admin/release"})
INJECTED_ROUTES = frozenset({"/items", "/items/{id}"})
ITEM_COLUMNS = "id, tenant_id, name, price_cents, updated_at"


# ---------------------------------------------------------------------------
# Errors and small helpers


class HTTPError(Exception):
    """Ends a request with an HTTP error status and a JSON ``{"error": message}`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PgUnavailable(Exception):
    """PostgreSQL could not be reached, or did not answer in time."""


def first_line(exc: BaseException) -> str:
    """A short one-line description of an exception, for health output and logs."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class Redactor:
    """Removes configured secrets (passwords, whole DSNs) from text before it leaves the app."""

    def __init__(self, pg_dsn: str, redis_url: str) -> None:
        secrets = {pg_dsn, redis_url, urlsplit(redis_url).password or ""}
        with contextlib.suppress(psycopg.Error):
            secrets.add(str(conninfo_to_dict(pg_dsn).get("password") or ""))
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def pg_target(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, without credentials, for the startup log."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable dsn>"
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def redis_target(url: str) -> str:
    """``host:port/path`` of a Redis URL, without credentials, for the startup log."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"


# ---------------------------------------------------------------------------
# PostgreSQL: a tiny pool with bounded waits everywhere


class _Watchdog:
    """Shuts a connection's socket down if a query outlives its deadline.

    The server-side ``statement_timeout`` cannot fire when the server is frozen
    (SIGSTOP) or the network drops packets, so the client enforces its own
    deadline: shutting the socket down wakes the blocked psycopg call with an
    error, and the pool then discards the connection.
    """

    def __init__(self, fd: int, timeout: float) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._done = False
        self._fired = False
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._fired = True
            try:
                with socket.socket(fileno=os.dup(self._fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> bool:
        """Disarm the watchdog; return True if it fired (the connection is then unusable)."""
        self._timer.cancel()
        with self._lock:
            self._done = True
            return self._fired


class PgPool:
    """A small thread-safe pool of lazily opened autocommit connections.

    A connection that raises anything is closed instead of being returned, so
    the app recovers by itself after PostgreSQL restarts.
    """

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[DictRow]] = []

    def query(
        self,
        sql: LiteralString,
        params: Sequence[object] = (),
        *,
        timeout: float = QUERY_TIMEOUT_S,
        wait: float = POOL_WAIT_S,
    ) -> list[DictRow]:
        """Run one statement and return its rows; raise PgUnavailable when Postgres is unusable."""
        if not self._slots.acquire(timeout=wait):
            raise PgUnavailable(f"no free database connection within {wait:g} s")
        try:
            conn = self._checkout()
            try:
                rows = self._run(conn, sql, params, timeout)
            except BaseException:
                conn.close()
                raise
            with self._lock:
                self._idle.append(conn)
            return rows
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> psycopg.Connection[DictRow]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if not _has_unread_data(conn):
                return conn
            # An idle connection with pending input was told something by the
            # server (usually "terminating connection" or EOF): drop it.
            conn.close()
        try:
            return psycopg.connect(
                self._dsn,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=2,
                application_name=APP_NAME,
                options="-c statement_timeout=2000",
            )
        except psycopg.Error as exc:
            raise PgUnavailable(first_line(exc)) from exc

    @staticmethod
    def _run(
        conn: psycopg.Connection[DictRow],
        sql: LiteralString,
        params: Sequence[object],
        timeout: float,
    ) -> list[DictRow]:
        watchdog = _Watchdog(conn.fileno(), timeout)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description is not None else []
        except psycopg.OperationalError as exc:
            if watchdog.stop():
                raise PgUnavailable(f"no answer within {timeout:g} s") from exc
            raise PgUnavailable(first_line(exc)) from exc
        finally:
            timed_out = watchdog.stop()
        if timed_out:  # answered, but the socket was shut just after: unusable
            raise PgUnavailable(f"no answer within {timeout:g} s")
        return rows


def _has_unread_data(conn: psycopg.Connection[DictRow]) -> bool:
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, psycopg.Error):
        return True


# ---------------------------------------------------------------------------
# Release simulation, metrics and dependency state


@dataclass(frozen=True)
class Release:
    version: str = "v1"
    error_rate: float = 0.0
    latency_ms: int = 0


class ReleaseControl:
    """The current simulated release and the per-process seeded dice for error injection."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._release = Release()

    @property
    def current(self) -> Release:
        with self._lock:
            return self._release

    def deploy(self, release: Release) -> None:
        with self._lock:
            self._release = release

    def roll(self) -> tuple[Release, bool]:
        """The current release, and whether this request should fail."""
        with self._lock:
            return self._release, self._rng.random() < self._release.error_rate


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template and status code.",
            ["method", "handler", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time spent answering HTTP requests, by route template.",
            ["method", "handler"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "app_dependency_up",
            "Whether a dependency answered its last check (1) or not (0).",
            ["dependency"],
            registry=self.registry,
        )
        self.info = Gauge(
            "app_info", "The running release (value is always 1).", ["version"], registry=self.registry
        )

    def declare(self, routes: Iterable[tuple[str, str]]) -> None:
        """Every route's latency series exists from the start, at 0 (Prometheus' "avoid missing metrics"): a
        route's first requests then show in rate() at the next scrape. Without it the series appears with them and
        rate() needs a second scrape — a latency alert on a route not used since start-up came one scrape later."""
        for method, handler in routes:
            if handler != "/metrics":  # not observed (scraping must not create traffic)
                self.duration.labels(method, handler)

    def observe(self, method: str, handler: str, status: int, seconds: float) -> None:
        self.requests.labels(method, handler, str(status)).inc()
        self.duration.labels(method, handler).observe(seconds)

    def set_version(self, version: str) -> None:
        self.info.clear()
        self.info.labels(version).set(1)


class DependencyState:
    """Last known up/down state of each dependency; logs changes and feeds the gauge."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._lock = threading.Lock()
        self._up: dict[str, bool] = {}

    def observe(self, name: str, error: str | None) -> None:
        up = error is None
        self._gauge.labels(name).set(1 if up else 0)
        with self._lock:
            changed = self._up.get(name) != up
            self._up[name] = up
        if changed and up:
            log.info("dependency %s is up", name)
        elif changed:
            log.warning("dependency %s is down: %s", name, error)


@dataclass(frozen=True)
class Check:
    status: str  # "ok" | "down"
    latency_ms: float
    error: str | None


# ---------------------------------------------------------------------------
# The application proper (no HTTP plumbing)


@dataclass(frozen=True)
class Request:
    method: str
    handler: str  # route template
    item_id: int | None = None
    query: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, headers=headers or {})


def match_route(path: str) -> tuple[str, int | None]:
    """The route template for a path (``"unmatched"`` if none), and the item id if any."""
    if path in STATIC_ROUTES:
        return path, None
    match = ITEM_PATH.fullmatch(path)
    if match:
        return "/items/{id}", int(match[1])
    return "unmatched", None


def item_json(row: DictRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "tenant_id": row["tenant_id"],
        "name": row["name"],
        "price_cents": row["price_cents"],
        "updated_at": row["updated_at"].isoformat(),
    }


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, "body must be valid JSON") from exc
    if not isinstance(data, dict):
        raise HTTPError(400, "body must be a JSON object")
    return data


def int_field(data: dict[str, Any], key: str, low: int, high: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HTTPError(400, f"{key} must be an integer between {low} and {high}")
    return value


class App:
    def __init__(self, pg_dsn: str, redis_url: str, seed: int = 0) -> None:
        self.redact = Redactor(pg_dsn, redis_url)
        self.pg = PgPool(pg_dsn)
        self.redis = redis.Redis.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # redis-py 8 retries 10 times by default
        )
        self.release = ReleaseControl(seed)
        self.metrics = Metrics()
        self.metrics.set_version(self.release.current.version)
        self.deps = DependencyState(self.metrics.dependency_up)
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/health"): self.health,
            ("GET", "/ready"): self.ready,
            ("GET", "/metrics"): self.metrics_page,
            ("GET", "/items"): self.list_items,
            ("POST", "/items"): self.create_item,
            ("GET", "/items/{id}"): self.get_item,
            ("GET", "/admin/release"): self.get_release,
            ("POST", "/admin/release"): self.set_release,
        }
        self.metrics.declare(self._routes)

    def close(self) -> None:
        self.pg.close()
        self.redis.close()

    def dispatch(self, request: Request) -> Response:
        route = self._routes.get((request.method, request.handler))
        try:
            if route is None:
                if request.handler == "unmatched":
                    raise HTTPError(404, "not found")
                raise HTTPError(405, "method not allowed")
            if request.handler in INJECTED_ROUTES:  # the simulated release's faults:
                # every request is slowed down, a fraction of them fail
                release, fail = self.release.roll()
                if release.latency_ms:
                    time.sleep(release.latency_ms / 1000)
                if fail:
                    raise HTTPError(500, "injected")
            return route(request)
        except HTTPError as exc:
            return json_response(exc.status, {"error": exc.message})
        except PgUnavailable as exc:
            self.deps.observe("postgres", self.redact(str(exc)))
            return json_response(503, {"error": "database unavailable"})
        except psycopg.Error:
            return json_response(500, {"error": "database error"})
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.handler)
            return json_response(500, {"error": "internal error"})

    # -- dependency checks ---------------------------------------------------

    def check_postgres(self) -> Check:
        started = time.perf_counter()
        error: str | None = None
        try:
            self.pg.query("SELECT 1", timeout=HEALTH_QUERY_TIMEOUT_S, wait=HEALTH_POOL_WAIT_S)
        except (PgUnavailable, psycopg.Error) as exc:
            error = self.redact(str(exc) if isinstance(exc, PgUnavailable) else first_line(exc))
        return self._checked("postgres", started, error)

    def check_redis(self) -> Check:
        started = time.perf_counter()
        error: str | None = None
        try:
            self.redis.ping()
        except (redis.RedisError, OSError) as exc:
            error = self.redact(first_line(exc))
        return self._checked("redis", started, error)

    def _checked(self, name: str, started: float, error: str | None) -> Check:
        self.deps.observe(name, error)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return Check("ok" if error is None else "down", latency_ms, error)

    def check_all(self) -> dict[str, Check]:
        """Check both dependencies concurrently, so the slowest bounds the total."""
        results: dict[str, Check] = {}

        def check_redis() -> None:
            results["redis"] = self.check_redis()

        thread = threading.Thread(target=check_redis, daemon=True)
        thread.start()
        results["postgres"] = self.check_postgres()
        thread.join()  # bounded by the Redis socket timeouts
        return {"postgres": results["postgres"], "redis": results["redis"]}

    # -- routes ----------------------------------------------------------------

    def health(self, request: Request) -> Response:
        checks = self.check_all()
        if checks["postgres"].status != "ok":
            status, code = "down", 503
        elif checks["redis"].status != "ok":
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
        payload = {
            "status": status,
            "version": self.release.current.version,
            "checks": {name: asdict(check) for name, check in checks.items()},
        }
        return json_response(code, payload)

    def ready(self, request: Request) -> Response:
        check = self.check_postgres()
        if check.status == "ok":
            return json_response(200, {"ready": True})
        return json_response(503, {"ready": False, "reason": f"postgres: {check.error}"})

    def monitor(self, stop: threading.Event, interval: float = MONITOR_INTERVAL_S) -> None:
        """Keep ``app_dependency_up`` current from a thread of its own, so a scrape never waits on a slow or
        frozen dependency: a scrape that did would time out, and the app would look down (``up == 0``) when
        only its database is slow."""
        while not stop.is_set():
            try:
                self.check_all()
            except Exception:  # a monitor that dies silently would freeze the gauge at its last value
                log.exception("dependency check failed")
            stop.wait(interval)

    def metrics_page(self, request: Request) -> Response:
        return Response(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)

    def get_item(self, request: Request) -> Response:
        key = f"item:{request.item_id}"
        cache = "miss"
        try:
            cached = self.redis.get(key)
            self.deps.observe("redis", None)
        except redis.RedisError as exc:
            self.deps.observe("redis", self.redact(first_line(exc)))
            cached, cache = None, "bypass"
        if isinstance(cached, bytes):
            try:
                return json_response(200, json.loads(cached), {"X-Cache": "hit"})
            except ValueError:
                pass  # a corrupt cache entry is a miss; it gets overwritten below
        rows = self.pg.query("SELECT " + ITEM_COLUMNS + " FROM items WHERE id = %s", (request.item_id,))
        if not rows:
            return json_response(404, {"error": "item not found"}, {"X-Cache": cache})
        item = item_json(rows[0])
        if cache == "miss":
            try:
                self.redis.set(key, json.dumps(item), ex=CACHE_TTL_S)
            except redis.RedisError as exc:
                self.deps.observe("redis", self.redact(first_line(exc)))
        return json_response(200, item, {"X-Cache": cache})

    def list_items(self, request: Request) -> Response:
        raw = request.query.get("limit", [str(LIST_LIMIT_DEFAULT)])[-1]
        try:
            limit = int(raw)
        except ValueError:
            raise HTTPError(400, "limit must be an integer") from None
        if limit < 1:
            raise HTTPError(400, "limit must be at least 1")
        rows = self.pg.query(
            "SELECT " + ITEM_COLUMNS + " FROM items ORDER BY id LIMIT %s",
            (min(limit, LIST_LIMIT_MAX),),
        )
        return json_response(200, {"items": [item_json(row) for row in rows]})

    def create_item(self, request: Request) -> Response:
        data = parse_json_object(request.body)
        tenant_id = int_field(data, "tenant_id", INT32_MIN, INT32_MAX)
        price_cents = int_field(data, "price_cents", INT32_MIN, INT32_MAX)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HTTPError(400, "name must be a non-empty string")
        rows = self.pg.query(
            "INSERT INTO items (tenant_id, name, price_cents) VALUES (%s, %s, %s) RETURNING " + ITEM_COLUMNS,
            (tenant_id, name, price_cents),
        )
        return json_response(201, item_json(rows[0]))

    def get_release(self, request: Request) -> Response:
        return json_response(200, asdict(self.release.current))

    def set_release(self, request: Request) -> Response:
        data = parse_json_object(request.body)
        version = data.get("version")
        error_rate = data.get("error_rate", 0.0)
        if not isinstance(version, str) or not version.strip() or len(version) > 100:
            raise HTTPError(400, "version must be a non-empty string (at most 100 characters)")
        if isinstance(error_rate, bool) or not isinstance(error_rate, int | float):
            raise HTTPError(400, "error_rate must be a number between 0 and 1")
        if not 0.0 <= error_rate <= 1.0:
            raise HTTPError(400, "error_rate must be a number between 0 and 1")
        latency_ms = int_field(data, "latency_ms", 0, 60_000) if "latency_ms" in data else 0
        release = Release(version, float(error_rate), latency_ms)
        self.release.deploy(release)
        self.metrics.set_version(version)
        return json_response(200, asdict(release))


# ---------------------------------------------------------------------------
# HTTP plumbing


class Handler(BaseHTTPRequestHandler):
    server: AppServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this, +40 ms per request
    server_version = APP_NAME
    sys_version = ""
    timeout = REQUEST_IDLE_TIMEOUT_S
    # send_error() (unsupported method, malformed request line) answers JSON too.
    error_content_type = "application/json"
    error_message_format = '{"error": "%(message)s"}'

    def log_message(self, format: str, *args: Any) -> None:
        """Per-request logging is deliberately off: /metrics covers traffic."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        app = self.server.app
        url = urlsplit(self.path)
        handler, item_id = match_route(url.path)
        body = self._read_body()
        if isinstance(body, Response):
            response = body
        else:
            response = app.dispatch(Request(method, handler, item_id, parse_qs(url.query), body))
        try:
            self._send(response)
        finally:
            if handler != "/metrics":  # scraping must not create traffic
                app.metrics.observe(method, handler, response.status, time.perf_counter() - started)

    def _read_body(self) -> bytes | Response:
        """The request body, or an error response when it cannot be read."""
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            return json_response(411, {"error": "send a Content-Length, not a chunked body"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return json_response(400, {"error": "bad Content-Length"})
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return json_response(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
        return self.rfile.read(length)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Broken client connections are routine; don't print tracebacks for them."""
        log.debug("error while serving %s", client_address, exc_info=True)


class TLSAppServer(AppServer):
    """The same app over HTTPS; the TLS handshake runs in the request's own thread."""

    def __init__(self, address: tuple[str, int], app: App, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, app)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        with self.context.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)


# ---------------------------------------------------------------------------
# Process entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m opsproof.sandbox.app", description="The sandbox's reference HTTP application."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    # Secrets are better passed in the environment (APP_PG_DSN, APP_REDIS_URL): argv is visible to `ps`.
    parser.add_argument("--pg-dsn", default=os.environ.get("APP_PG_DSN"), required="APP_PG_DSN" not in os.environ)
    parser.add_argument(
        "--redis-url", default=os.environ.get("APP_REDIS_URL"), required="APP_REDIS_URL" not in os.environ
    )
    parser.add_argument("--pidfile")
    args = parser.parse_args(argv)
    if args.tls_port is not None and not (args.certfile and args.keyfile):
        parser.error("--tls-port needs --certfile and --keyfile")
    return args


def write_pidfile(path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Block the stop signals in every thread (threads inherit the mask) and
    # collect them with sigwait() in the main thread: no async signal handlers.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    app = App(args.pg_dsn, args.redis_url)
    stopping = threading.Event()
    servers: list[AppServer] = []
    serving: list[AppServer] = []
    try:
        servers.append(AppServer((args.host, args.port), app))
        urls = [f"http://{args.host}:{args.port}"]
        if args.tls_port is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(args.certfile, args.keyfile)
            servers.append(TLSAppServer((args.host, args.tls_port), app, context))
            urls.append(f"https://{args.host}:{args.tls_port}")
        if args.pidfile:
            write_pidfile(args.pidfile)
        for server in servers:
            threading.Thread(target=server.serve_forever, name=f"serve-{server.server_address}").start()
            serving.append(server)
        log.info(
            "%s pid %d listening on %s, release %s, postgres %s, redis %s",
            APP_NAME,
            os.getpid(),
            " and ".join(urls),
            app.release.current.version,
            pg_target(args.pg_dsn),
            redis_target(args.redis_url),
        )
        app.check_all()  # logs the initial state of each dependency
        threading.Thread(target=app.monitor, args=(stopping,), name="dependency-monitor", daemon=True).start()
        received = signal.sigwait(stop_signals)
        log.info("received %s, shutting down", signal.Signals(received).name)
    finally:
        stopping.set()
        for server in serving:
            server.shutdown()  # waits for serve_forever to return: only for started servers
        for server in servers:
            server.server_close()
        app.close()
        if args.pidfile:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
