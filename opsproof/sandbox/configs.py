"""Configuration files the sandbox writes: Prometheus, its alert rules, Alertmanager, the inventory, SQL seed."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from opsproof.shape import RULE_NAMES as RULE_NAMES  # re-exported: the rules live in the sandbox's shape
from opsproof.shape import RULES as RULES


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
