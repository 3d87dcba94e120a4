"""The sandbox's shape — its services, fault proxies, alert rules, the inventory entries it writes and where its
state lives — as data, standard library only.

The sandbox builds itself from this (:mod:`opsproof.sandbox.control`, :mod:`opsproof.sandbox.configs`), and chaos
validates experiments against it without importing the sandbox (DESIGN.md: drill and chaos never import it).
tests/test_sandbox_shape.py checks that the inventory the sandbox writes has exactly :data:`ENTRIES`.
"""

from __future__ import annotations

import os
from pathlib import Path

SERVICES = ("postgres", "replica", "redis", "webhook", "alertmanager", "postgres_exporter", "redis_exporter",
            "proxy", "pgproxy", "app", "prometheus")
PROXIES = ("proxy", "pgproxy")  # user-space TCP fault proxies: app → Redis, app → PostgreSQL

# the entries of the inventory `opsproof sandbox up` writes, by kind
ENTRIES: dict[str, tuple[str, ...]] = {
    "http": ("app",), "tls": ("app",), "postgres": ("main",), "redis": ("cache",), "prometheus": ("main",),
    "alertmanager": ("main",), "slo": ("app",), "backups": ("app", "cache"),
    "load": ("browse", "steady"),  # load scenarios (`pytest load`; steady: `chaos run --load`), not targets
}


def default_dir() -> Path:
    """The sandbox's state folder: ``$OPSPROOF_SANDBOX_DIR``, else one per user under /tmp."""
    env = os.environ.get("OPSPROOF_SANDBOX_DIR")
    return Path(env) if env else Path("/tmp") / f"opsproof-sandbox-{os.getuid()}"


# Alert rules modelled on the runbooks in ../shared/seeds (PromQL alerts of SmartCloudOps, SIGN X's pool
# metrics, MagicSaaS's memory and latency thresholds), at intervals suited to a sandbox.
RULES: list[dict[str, object]] = [
    {"alert": "ServiceDown", "expr": 'up{job="app"} == 0', "for": "2s",
     "labels": {"severity": "critical"},
     "annotations": {"summary": "The application's /metrics is not scraped: the service is down"}},
    {"alert": "ScrapeTargetDown", "expr": 'up{job!="app"} == 0', "for": "5s",
     "labels": {"severity": "high"}, "annotations": {"summary": "{{ $labels.job }} target down"}},
    {"alert": "HighErrorRate",
     "expr": 'sum(rate(http_requests_total{status=~"5.."}[30s])) / sum(rate(http_requests_total[30s])) > 0.05',
     "for": "5s", "labels": {"severity": "critical"},
     "annotations": {"summary": "More than 5% of requests fail with 5xx"}},
    {"alert": "HighLatency",
     # user-facing routes only: health and readiness probes are not what users wait for
     "expr": 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket'
             '{handler!~"/health|/ready"}[10s]))) > 0.5',
     "for": "2s", "labels": {"severity": "high"}, "annotations": {"summary": "p95 latency above 500 ms"}},
    {"alert": "PostgresDown", "expr": "pg_up == 0", "for": "2s", "labels": {"severity": "critical"},
     "annotations": {"summary": "PostgreSQL does not answer the exporter"}},
    {"alert": "RedisDown", "expr": "redis_up == 0", "for": "2s", "labels": {"severity": "high"},
     "annotations": {"summary": "Redis does not answer the exporter; the app serves from PostgreSQL"}},
    {"alert": "AppDependencyDown", "expr": "app_dependency_up == 0", "for": "2s",
     "labels": {"severity": "high"}, "annotations": {"summary": "The app reports {{ $labels.dependency }} down"}},
    {"alert": "DatabaseConnectionsHigh",
     "expr": "sum(pg_stat_activity_count) / max(pg_settings_max_connections) > 0.8", "for": "2s",
     "labels": {"severity": "high"}, "annotations": {"summary": "More than 80% of max_connections in use"}},
    {"alert": "RedisMemoryHigh",
     "expr": "redis_memory_max_bytes > 0 and redis_memory_used_bytes / redis_memory_max_bytes > 0.9",
     "for": "2s", "labels": {"severity": "high"}, "annotations": {"summary": "Redis above 90% of maxmemory"}},
]

RULE_NAMES = [str(r["alert"]) for r in RULES]
