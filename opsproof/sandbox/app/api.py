"""The application proper (no HTTP plumbing): requests, responses, routes and their handlers."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg.rows import DictRow
from redis.backoff import NoBackoff
from redis.retry import Retry

from .base import Redactor, first_line, log
from .dependencies import DependencyChecks, DependencyState
from .metrics import Metrics
from .pg import PgPool, PgUnavailable
from .release import Release, ReleaseControl

REDIS_TIMEOUT_S = 0.5
CACHE_TTL_S = 60
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ITEM_PATH = re.compile(r"/items/([0-9]{1,18})")  # 18 digits always fit a bigint
STATIC_ROUTES = frozenset({"/health", "/ready", "/metrics", "/items", "/admin/release"})
INJECTED_ROUTES = frozenset({"/items", "/items/{id}"})
ITEM_COLUMNS = "id, tenant_id, name, price_cents, updated_at"


class HTTPError(Exception):
    """Ends a request with an HTTP error status and a JSON ``{"error": message}`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


class App(DependencyChecks):
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
