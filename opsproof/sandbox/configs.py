"""Configuration files the sandbox writes: Prometheus, its alert rules, Alertmanager, the inventory, SQL seed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trustme
import yaml

if TYPE_CHECKING:
    from opsproof.sandbox.control import Sandbox

from opsproof.shape import RULE_NAMES as RULE_NAMES  # re-exported: the rules live in the sandbox's shape
from opsproof.shape import RULES as RULES


def rules_yaml(rules: list[dict[str, object]] = RULES) -> str:
    return yaml.safe_dump({"groups": [{"name": "opsproof-sandbox", "interval": "1s", "rules": rules}]},
                          sort_keys=False)


def prometheus_yaml(ports: Mapping[str, int], rules_file: str, hosts: Mapping[str, str] | None = None,
                    jobs: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> str:
    """``hosts``: where each service is reached (the docker provider's network aliases); default 127.0.0.1.
    ``jobs``: a profile's extra jobs, job name → (the service it scrapes, the labels its targets carry)."""
    def host(name: str) -> str:
        return (hosts or {}).get(name, "127.0.0.1")

    def job(name: str, port: int, service: str | None = None, labels: Mapping[str, str] | None = None,
            **extra: str) -> dict[str, object]:
        targets = {"targets": [f"{host(service or name)}:{port}"]} | ({"labels": dict(labels)} if labels else {})
        return {"job_name": name, **extra, "static_configs": [targets]}

    return yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [rules_file],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [f"{host('alertmanager')}:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [
            job("prometheus", ports["prometheus"]),
            job("app", ports["app"]),
            # postgres_exporter 0.11 takes ≈ 3 s to answer while PostgreSQL is down (it retries the
            # connection): give it time, or pg_up == 0 is never scraped and PostgresDown never fires.
            job("postgres", ports["postgres_exporter"], "postgres_exporter", scrape_interval="5s",
                scrape_timeout="4500ms"),
            job("redis", ports["redis_exporter"], "redis_exporter"),
            job("alertmanager", ports["alertmanager"]),
            *(job(name, ports[service], service, labels) for name, (service, labels) in (jobs or {}).items()),
        ],
    }, sort_keys=False)


def alertmanager_yaml(webhook_port: int, webhook_host: str = "127.0.0.1", receivers: Sequence[str] = ()) -> str:
    """Everything to the sandbox webhook; a profile's ``receivers`` (its runbook's: pagerduty, slack-…) each get
    every alert too (a child route with ``continue``), delivered to the same webhook."""
    url = f"http://{webhook_host}:{webhook_port}/alerts"
    route: dict[str, object] = {"receiver": "sandbox-webhook", "group_by": ["alertname"], "group_wait": "1s",
                                "group_interval": "1s", "repeat_interval": "1h"}
    if receivers:
        route["routes"] = [{"receiver": r, "continue": True} for r in receivers]
    return yaml.safe_dump({
        "route": route,
        "receivers": [{"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]}
                      for name in ("sandbox-webhook", *receivers)],
    }, sort_keys=False)


def write_tls(tls: Path) -> None:
    """A sandbox CA (``ca.pem``) and the app's certificate from it, for localhost, 127.0.0.1 and app.sandbox.test."""
    ca = trustme.CA(organization_name="opsproof sandbox CA")
    cert = ca.issue_cert("localhost", "127.0.0.1", "app.sandbox.test")
    ca.cert_pem.write_to_path(str(tls / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tls / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tls / "server.pem"))
    (tls / "server.key").chmod(0o600)


SEED_SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE tenants (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE items (
  id bigserial PRIMARY KEY,
  tenant_id int NOT NULL REFERENCES tenants(id),
  name text NOT NULL,
  price_cents int NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_tenant ON items (tenant_id);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), line text);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON items
  USING (tenant_id = nullif(current_setting('app.tenant_id', true), '')::int);
CREATE POLICY tenant_self ON tenants
  USING (id = nullif(current_setting('app.tenant_id', true), '')::int);
INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 10) g;
INSERT INTO items (tenant_id, name, price_cents)
  SELECT 1 + g % 10, 'item ' || g, (g * 37) % 10000 FROM generate_series(1, 1000) g;
ANALYZE;
"""


def seed(connect: Callable[[str], Any], pw: Mapping[str, str]) -> None:
    """The roles, the app database and its rows; ``connect(dbname)`` gives an autocommit superuser connection."""
    with connect("postgres") as conn:
        conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{pw['app']}'")
        conn.execute(f"CREATE ROLE opsproof_monitor LOGIN PASSWORD '{pw['opsproof_monitor']}' IN ROLE pg_monitor")
        # backups read every row: pg_read_all_data, and BYPASSRLS (pg_dump refuses tables under RLS otherwise)
        conn.execute(f"CREATE ROLE opsproof_backup LOGIN BYPASSRLS PASSWORD '{pw['opsproof_backup']}' "
                     "IN ROLE pg_read_all_data")
        conn.execute("CREATE DATABASE app OWNER app")
    with connect("app") as conn:
        conn.execute(SEED_SQL)
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO app")
        conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app")
        conn.execute("ALTER TABLE items OWNER TO app")
        conn.execute("ALTER TABLE tenants OWNER TO app")
        conn.execute("ALTER TABLE audit_log OWNER TO app")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO opsproof_monitor")


def inventory(box: Sandbox) -> dict[str, Any]:
    """The inventory `opsproof sandbox up` writes: every service of the sandbox, as the checks reach it."""
    ports = box.meta["ports"]
    inventory = {
        "environment": "sandbox",
        "production": False,
        "http": {"app": {"url": box.url("app"), "health": "/health", "ready": "/ready",
                         "expect_status": 200, "expect_json": {"status": "ok"},
                         "latency_budget_ms": 500, "timeout_s": 3,
                         # without PostgreSQL the app cannot serve: its failures are that outage, not its own
                         "depends_on": ["postgres.main"]}},
        "tls": {"app": {"host": "127.0.0.1", "port": ports["app_tls"], "server_name": "app.sandbox.test",
                        "min_days": 14, "ca_file": str(box.dir / "tls" / "ca.pem"), "timeout_s": 3}},
        "postgres": {"main": {
            "dsn": box.dsn("opsproof_monitor"), "max_connection_ratio": 0.8, "max_query_s": 30,
            "min_cache_hit_ratio": 0.9, "rls_tables": ["public.tenants", "public.items"],
            "count_tables": ["public.tenants", "public.items", "public.audit_log"],
            # counted as the backup role (BYPASSRLS): as the monitor role, RLS would hide every row
            "count_dsn": box.dsn("opsproof_backup"),
            "extensions": ["pg_trgm", "pgcrypto"], "connect_timeout_s": 3,
            "replicas": {"replica": {"dsn": box.dsn("opsproof_monitor", service="replica"), "max_lag_s": 10}},
            # read-only SQL assertions (postgres.query), each in a READ ONLY transaction with a statement timeout
            "queries": {
                "max_connections": {"sql": "SHOW max_connections", "op": ">=", "value": 40},
                "items_tenant_index": {"sql": "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                                              "AND indexname = 'items_tenant'", "rows": ">= 1"},
                "vacuum_age": {"sql": "SELECT max(age(datfrozenxid)) FROM pg_database", "op": "<",
                               "value": 200_000_000},
            },
        }},
        "redis": {"cache": {"url": box.redis_url(), "max_memory_ratio": 0.9,
                            "eviction_policy": "allkeys-lru", "min_hit_rate": 0.5, "min_lookups": 100,
                            "queues": {"celery": 100}, "timeout_s": 3,
                            # the app holds a connection per concurrent request it served; a cache: no RDB
                            # snapshots, no AOF (redis-server --save "" --appendonly no)
                            "clients": {"max_connected": 100, "max_blocked": 5},
                            "latency": {"samples": 20, "max_median_ms": 20},
                            "persistence": {"save": "", "appendonly": False}}},
        "prometheus": {"main": {"url": box.url("prometheus"),
                                "jobs_up": ["app", "postgres", "redis", "alertmanager", "prometheus"],
                                "rules": RULE_NAMES, "no_alerts_at_or_above": "critical",
                                "timeout_s": 3,
                                # PromQL thresholds (prometheus.query): the alert rules evaluate without failing
                                "queries": {"rule_failures": {
                                    "expr": "sum by (rule_group) (increase("
                                            "prometheus_rule_evaluation_failures_total[1m]))",
                                    "op": "==", "value": 0, "for": "30s"}},
                                # rule content (prometheus.rule_content): the thresholds the runbooks state
                                "alert_rules": {
                                    "HighErrorRate": {"threshold": "> 0.05", "for": "5s",
                                                      "labels": {"severity": "critical"}},
                                    "p95_latency": {"watches": "http_request_duration_seconds_bucket",
                                                    "expr_contains": ["histogram_quantile(0.95"],
                                                    "threshold": "> 0.5", "labels": {"severity": "high"}}}}},
        "alertmanager": {"main": {"url": box.url("alertmanager"), "receivers": ["sandbox-webhook"],
                                  "timeout_s": 3}},
        # the post-deploy gate reads these from Prometheus; set OPSPROOF_DEPLOYED_AT when you deploy. User
        # requests only, like the HighLatency rule: the checks' own /health and /ready probes are not what
        # users wait for
        "slo": {"app": {"prometheus": "main", "selector": 'job="app",handler!~"/health|/ready"',
                        "max_error_ratio": 0.01,
                        "max_p95_ms": 300, "min_requests": 100, "max_regression": 2.0,
                        "deployed_at": "${OPSPROOF_DEPLOYED_AT:--10m}"}},
        # DR drills (checks/dr_drill): the nightly pg_dump, and a fresh RDB snapshot of the cache
        "backups": {
            "app": {"postgres": "main", "dsn": box.dsn("opsproof_backup"), "directory": str(box.dir / "backups"),
                    "pattern": "app_*.dump", "rpo": "24h", "rto": "5m",
                    "tables": ["public.tenants", "public.items"],
                    "freshness_query": "SELECT max(updated_at) FROM public.items"},
            "cache": {"redis": "cache", "fresh": True, "rpo": "1h", "rto": "1m", "sample": 50},
        },
        # `pytest load`: a short browse of the catalogue, gated like the SLO and the HighLatency rule
        "load": {"browse": {
            "service": "app", "users": 5, "spawn_rate": 5, "duration": "10s", "think_time": "50ms",
            "thresholds": ["p(95) < 300ms", "error_rate < 1%", "requests >= 100"],
            "requests": [{"name": "item", "path": "/items/42", "weight": 4, "thresholds": ["p(99) < 500ms"]},
                         {"name": "list", "path": "/items", "weight": 1}]},
            # `opsproof chaos run EXP --load steady`: what users feel during a fault, gated on what they may feel
            "steady": {
                "service": "app", "users": 4, "spawn_rate": 4, "duration": "3m", "think_time": "50ms",
                "timeout_s": 5, "during_chaos": True, "thresholds": ["error_rate < 1%", "p(95) < 500ms"],
                "requests": [{"name": "item", "path": "/items/42", "weight": 4},
                             {"name": "list", "path": "/items", "weight": 1}]}},
    }
    return inventory
