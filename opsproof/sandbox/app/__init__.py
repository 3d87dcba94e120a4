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

Modules: ``base`` (name, logger, secret-free text), ``pg`` (pool and query watchdog), ``release``
(simulated release), ``metrics``, ``dependencies`` (state, checks, monitor), ``api`` (requests, routes and
handlers), ``server`` (HTTP/HTTPS servers and ``main``).
"""

from __future__ import annotations

from .api import (
    CACHE_TTL_S,
    INJECTED_ROUTES,
    INT32_MAX,
    INT32_MIN,
    ITEM_COLUMNS,
    ITEM_PATH,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    REDIS_TIMEOUT_S,
    STATIC_ROUTES,
    App,
    HTTPError,
    Request,
    Response,
    int_field,
    item_json,
    json_response,
    match_route,
    parse_json_object,
)
from .base import (
    APP_NAME,
    Redactor,
    first_line,
    log,
    pg_target,
    redis_target,
)
from .dependencies import (
    HEALTH_POOL_WAIT_S,
    HEALTH_QUERY_TIMEOUT_S,
    MONITOR_INTERVAL_S,
    Check,
    DependencyChecks,
    DependencyState,
)
from .metrics import (
    LATENCY_BUCKETS,
    Metrics,
)
from .pg import (
    POOL_SIZE,
    POOL_WAIT_S,
    QUERY_TIMEOUT_S,
    PgPool,
    PgUnavailable,
)
from .release import (
    Release,
    ReleaseControl,
)
from .server import (
    MAX_BODY_BYTES,
    REQUEST_IDLE_TIMEOUT_S,
    TLS_HANDSHAKE_TIMEOUT_S,
    AppServer,
    Handler,
    TLSAppServer,
    main,
    parse_args,
    write_pidfile,
)

__all__ = [
    "APP_NAME",
    "CACHE_TTL_S",
    "HEALTH_POOL_WAIT_S",
    "HEALTH_QUERY_TIMEOUT_S",
    "INJECTED_ROUTES",
    "INT32_MAX",
    "INT32_MIN",
    "ITEM_COLUMNS",
    "ITEM_PATH",
    "LATENCY_BUCKETS",
    "LIST_LIMIT_DEFAULT",
    "LIST_LIMIT_MAX",
    "MAX_BODY_BYTES",
    "MONITOR_INTERVAL_S",
    "POOL_SIZE",
    "POOL_WAIT_S",
    "QUERY_TIMEOUT_S",
    "REDIS_TIMEOUT_S",
    "REQUEST_IDLE_TIMEOUT_S",
    "STATIC_ROUTES",
    "TLS_HANDSHAKE_TIMEOUT_S",
    "App",
    "AppServer",
    "Check",
    "DependencyChecks",
    "DependencyState",
    "HTTPError",
    "Handler",
    "Metrics",
    "PgPool",
    "PgUnavailable",
    "Redactor",
    "Release",
    "ReleaseControl",
    "Request",
    "Response",
    "TLSAppServer",
    "first_line",
    "int_field",
    "item_json",
    "json_response",
    "log",
    "main",
    "match_route",
    "parse_args",
    "parse_json_object",
    "pg_target",
    "redis_target",
    "write_pidfile",
]
