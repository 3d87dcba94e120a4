"""Configuration files the sandbox writes: Prometheus, its alert rules, Alertmanager, the inventory, SQL seed."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

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


def rules_yaml(rules: list[dict[str, object]] = RULES) -> str:
    return yaml.safe_dump({"groups": [{"name": "opsproof-sandbox", "interval": "1s", "rules": rules}]},
                          sort_keys=False)


def prometheus_yaml(ports: Mapping[str, int], rules_file: str) -> str:
    def job(name: str, port: int, **extra: str) -> dict[str, object]:
        return {"job_name": name, **extra, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}

    return yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [rules_file],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]},
        "scrape_configs": [
            job("prometheus", ports["prometheus"]),
            job("app", ports["app"]),
            # postgres_exporter 0.11 takes ≈ 3 s to answer while PostgreSQL is down (it retries the
            # connection): give it time, or pg_up == 0 is never scraped and PostgresDown never fires.
            job("postgres", ports["postgres_exporter"], scrape_interval="5s", scrape_timeout="4500ms"),
            job("redis", ports["redis_exporter"]),
            job("alertmanager", ports["alertmanager"]),
        ],
    }, sort_keys=False)


def alertmanager_yaml(webhook_port: int) -> str:
    return yaml.safe_dump({
        "route": {"receiver": "sandbox-webhook", "group_by": ["alertname"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "sandbox-webhook", "webhook_configs": [
            {"url": f"http://127.0.0.1:{webhook_port}/alerts", "send_resolved": True}]}],
    }, sort_keys=False)


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
