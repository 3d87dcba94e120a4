"""The seam between a probe's declaration and its results (issue 9): the check id, the expected text and the
timing live once, in ``@probe(...)``; a body says only what it saw. Every probe is run here against fakes that
answer (a reached target) and that refuse (an unreachable one): both results carry the declared check id and the
declared expected text. The source is guarded too, so the duplicates cannot come back."""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg.pq import TransactionStatus

from opsproof import governance
from opsproof.inventory import Inventory, loads
from opsproof.probes import ALL, Connections, ProbeSpec, Target, celery, tcp, tls
from opsproof.probes.base import probe, run

PROBES = Path(__file__).resolve().parents[2] / "opsproof" / "probes"

INVENTORY = """
environment: seam
http:
  app: {url: 'http://app.test', expect_json: {status: ok}}
tls:
  site: {host: app.test}
postgres:
  main:
    dsn: postgresql://u@db.test/app
    rls_tables: [public.tenants]
    count_tables: [public.items]
    extensions: [pg_trgm]
    replicas: {r1: {dsn: postgresql://u@replica.test/app}}
    queries: {answer: {sql: SELECT 42 AS answer, value: 42}}
    archiving: {max_age: 15m}
redis:
  cache:
    url: 'redis://cache.test:6379/0'
    eviction_policy: allkeys-lru
    min_hit_rate: 0.5
    queues: {celery: 100}
    clients: {max_connected: 50, max_blocked: 5}
    latency: {samples: 5, max_median_ms: 50, max_event_ms: 100}
    persistence: {appendonly: true, appendfsync: everysec, save: '', max_save_age: 1h}
    sentinel: {master: mymaster, quorum: 2, sentinels: ['s1.test:26379', 's2.test:26379']}
    celery: {tasks: {workers: [celery@w1], queues: [celery], depth: {celery: 100}, window: 50ms, samples: 2}}
prometheus:
  main: {url: 'http://prom.test:9090', jobs_up: [app], rules: [RedisDown],
         queries: {up: {expr: up, op: '==', value: 1}}, alert_rules: {RedisDown: {for: 2s}},
         min_retention: 15d}
alertmanager:
  main: {url: 'http://am.test:9093', receivers: [oncall]}
kubernetes:
  prod:
    namespace: apps
    deployments: {api: {}}
    hpa: {api: {min_replicas: 1, max_replicas: 3, cpu_utilization: 70, pods_metrics: {rps: '100'},
               behavior: {scale_down: {stabilization_window_s: 300}}}}
    certificates: [api-tls]
    jobs: [migrate]
    ingresses: [api]
    statefulsets: {postgres: {}}
    daemonsets: {node-exporter: {}}
    bare_pods: {toolbox: {}}
    resources: {deployment/api: {max_memory_limit: 2Gi}}
    scaled_objects: {worker: {min_replicas: 1, max_replicas: 20}}
    cronjobs: {backup: {max_age: 25h}}
    secrets: [api-credentials]
    endpoints: [api]
    network_policies: [default-deny]
    load_balancers: [api-public]
    helm_releases: [api]
    blue_green: {app: {deployment: app-green}}
    logs: {deployment/api: {pattern: 'ERROR|FATAL', max_matches: 5}}
    volume_claims: {backup-storage: {min_capacity: 10Gi}}
    service_ports: {api: {80: 8000}}
    ingress_annotations: {api: {nginx.ingress.kubernetes.io/proxy-read-timeout: '300'}}
    config_maps: {logging-config: [fluent.conf]}
    certificate_issuer: letsencrypt-prod
slo:
  app: {prometheus: main}
backups:
  db: {directory: BACKUPS, pattern: '*.sql.gz', retention: 30d,
       s3: {bucket: app-backups, max_bytes: 1GiB, expire_days: 30, retention: 30d},
       supabase: {project_ref: abcdefghijklmnopqrst, access_token: sbp_x, api_url: 'http://supabase.test', pitr: true,
                  max_disk_ratio: 0.85}}
logs:
  app: {path: BACKUPS/app.log}
tcp:
  jaeger: {host: jaeger.test, port: 14268}
"""


def inventory(tmp_path: Path) -> Inventory:
    return loads(INVENTORY.replace("BACKUPS", str(tmp_path)))


def target(inv: Inventory, spec: ProbeSpec) -> Target[Any]:
    [(name, cfg)] = inv.targets(spec.kind).items()
    [one] = spec.targets(name, cfg)  # the entry, or its one named query
    return one


# --- fakes that answer ---------------------------------------------------------------------------------------

HTTP = {
    "/health": {"status": "ok"}, "/ready": {}, "/-/ready": {},
    "/api/v1/targets": {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "app", "instance": "app:8000"}, "health": "up"}]}},
    "/api/v1/rules": {"status": "success", "data": {"groups": [{"rules": [{"name": "RedisDown"}]}]}},
    "/api/v1/status/flags": {"status": "success", "data": {"storage.tsdb.retention.time": "15d"}},
    "/api/v1/alerts": {"status": "success", "data": {"alerts": []}},
    "/api/v1/query": {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"le": "+Inf"}, "value": [0, "1000"]}]}},
    "/api/v2/status": {"cluster": {"status": "ready"}, "config": {"original": "route: {}"}},
    "/api/v2/receivers": [{"name": "oncall"}],
    "/v1/projects/abcdefghijklmnopqrst/database/backups": {
        "region": "us-east-1", "walg_enabled": True, "pitr_enabled": True, "physical_backup_data": {},
        "backups": [{"id": 1, "is_physical_backup": True, "status": "COMPLETED",
                     "inserted_at": "2099-01-01T00:00:00Z"}]},
    "/v1/projects/abcdefghijklmnopqrst/config/disk/util": {
        "timestamp": "2026-12-04T12:00:00Z",
        "metrics": {"fs_size_bytes": 100, "fs_avail_bytes": 50, "fs_used_bytes": 50}},
}


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=HTTP[request.url.path])


class Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.description = [type("Column", (), {"name": "answer"})] if rows else None

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return self.rows[:size]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...]:
        return self.rows[0]


NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


class FakePostgres:
    """Answers each query of the PostgreSQL probes with a plausible row, picked by a fragment of its SQL."""

    ROWS: tuple[tuple[str, list[tuple[Any, ...]]], ...] = (
        ("current_setting('archive_mode')", [(False, "on", "cp %p /a/%f", "", 60, 16 << 20, 3,
                                              "000000010000000000000002", NOW, 0, None, None, NOW, NOW,
                                              "000000010000000000000003", 50331688, True)]),
        ("pg_ls_archive_statusdir", [(0, None)]),
        ("server_version", [("15.8", False)]), ("max_connections", [(3, 100)]), ("query_start", []),
        ("blks_hit", [(90, 10)]), ("relrowsecurity FROM unnest", [("public.tenants", True)]),
        ("pg_extension", [("pg_trgm", "1.6")]), ("pg_is_in_recovery(),", [(True, 0.0, False, "0/1")]),
        ("to_regclass(%s)::oid", [(1234,)]), ("pg_policies", [(False, "none", "u")]), ("count(*) FROM", [(5,)]),
        ("BEGIN", []), ("SET ", []), ("SELECT 42", [(42,)]), ("transaction_read_only", [("on",)]), ("ROLLBACK", []),
    )

    class info:  # psycopg's attribute: the named query runs in a transaction
        transaction_status = TransactionStatus.INTRANS

    def execute(self, sql: str, params: Any = None, prepare: bool | None = None) -> Rows:
        return Rows(next(rows for fragment, rows in self.ROWS if fragment in sql))


class FakeRedis:
    CONFIG: ClassVar[dict[str, str]] = {"appendonly": "yes", "appendfsync": "everysec", "save": "",
                                         "latency-monitor-threshold": "100"}
    SENTINEL: ClassVar[dict[str, Any]] = {"MASTER": {"quorum": "2", "num-other-sentinels": "1", "flags": "master"},
                                          "CKQUORUM": "OK 2 usable Sentinels",
                                          "GET-MASTER-ADDR-BY-NAME": ["10.0.0.1", "6379"]}

    def ping(self) -> bool:
        return True

    def info(self, section: str) -> dict[str, Any]:
        return {"used_memory": 10, "maxmemory": 100, "keyspace_hits": 90, "keyspace_misses": 10,
                "connected_clients": 3, "blocked_clients": 0, "rdb_last_save_time": 1000, "aof_enabled": 1,
                "role": "master"}

    def time(self) -> tuple[int, int]:
        return 1060, 0

    def config_get(self, name: str) -> dict[str, str]:
        return {name: self.CONFIG.get(name, "allkeys-lru")}

    def execute_command(self, *args: str) -> Any:
        if args == ("LATENCY", "LATEST"):
            return [["command", 1000, 150, 150]]  # a spike of 150 ms, 60 s before TIME
        return self.SENTINEL[args[1]]

    def llen(self, name: str) -> int:
        return 3


class FakeKubernetesApi:
    """The two calls of ``ApiClient`` that :class:`opsproof.probes.k8s_api.Namespace` makes; every LIST is empty."""

    class configuration:  # the client's attribute names
        host = "https://k8s.test"

    class response:
        status, reason, data = 200, "OK", json.dumps({"items": []}).encode()

        @staticmethod
        def release_conn() -> None:
            pass

    def param_serialize(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return ()

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        return self


class FakeS3:
    """The two read calls of :mod:`opsproof.probes.s3_client` (ListObjectsV2 pages, the lifecycle rules)."""

    def get_paginator(self, operation: str) -> Any:
        return self

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [{"Contents": [{"Key": "app_1.sql.gz", "LastModified": dt.datetime.now(dt.UTC), "Size": 100}]}]

    def get_bucket_lifecycle_configuration(self, Bucket: str) -> dict[str, Any]:  # boto3 names it Bucket
        return {"Rules": [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]}


class Answering(Connections):
    def __init__(self) -> None:
        super().__init__(http_transport=httpx.MockTransport(answer))

    @contextmanager
    def postgres(self, key: str, dsn: str, timeout_s: float, *, remember: bool = True) -> Iterator[Any]:
        yield FakePostgres()

    def redis(self, key: str, url: str, timeout_s: float) -> Any:
        return FakeRedis()

    def kubernetes(self, key: str, cfg: Any) -> Any:
        return FakeKubernetesApi()

    def s3(self, key: str, cfg: Any) -> Any:
        return FakeS3()


def certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


# --- fakes that refuse ---------------------------------------------------------------------------------------

def refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise ConnectionRefusedError("[Errno 111] Connection refused")


def refuse_http(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


class Refusing(Connections):
    def __init__(self) -> None:
        super().__init__(http_transport=httpx.MockTransport(refuse_http))

    postgres = redis = kubernetes = s3 = refuse


# --- the seam ------------------------------------------------------------------------------------------------

def test_every_probe_is_covered_here(tmp_path: Path) -> None:
    inv = inventory(tmp_path)
    assert len(ALL) == 81
    assert [spec.check for spec in ALL if not spec.applies(target(inv, spec).config)] == []


@pytest.mark.parametrize("spec", ALL, ids=[spec.check for spec in ALL])
def test_a_reached_target_gets_the_declared_check_and_expected_text(
        spec: ProbeSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "_handshake", lambda cfg, context: certificate())
    monkeypatch.setattr(tcp, "_connect", lambda host, port, timeout_s: ("192.0.2.7", port))
    monkeypatch.setattr(celery, "control", lambda *args: {"celery@w1": [{"name": "celery"}]})  # no broker here
    (tmp_path / "app_1.sql.gz").write_bytes(b"\x1f\x8b" + b"x" * 100)
    t = target(inventory(tmp_path), spec)
    with Answering() as conns:
        result = run(spec, t, conns)
    assert result.error is None, result  # the body ran to its end: no exception became the result
    assert (result.target, result.check, result.expected) == (t.id, spec.check, spec.expected(t.config))


@pytest.mark.parametrize("spec", ALL, ids=[spec.check for spec in ALL])
def test_an_unreachable_target_gets_the_same_check_and_expected_text(
        spec: ProbeSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "_handshake", refuse)
    monkeypatch.setattr(tcp, "_connect", refuse)
    t = target(inventory(tmp_path / "absent"), spec)  # backups: a directory that is not there
    with Refusing() as conns:
        result = spec(t, conns)
    assert result.ok is False, result
    assert (result.target, result.check, result.expected) == (t.id, spec.check, spec.expected(t.config))
    if spec.kind not in ("backups", "logs"):  # a missing directory or file is a finding, not an exception
        assert "unreachable (ConnectionRefusedError" in result.observed or "(ConnectError" in result.observed, result


def test_the_expected_text_must_be_declared() -> None:
    assert inspect.signature(probe).parameters["expected"].default is inspect.Parameter.empty


def test_every_kind_with_a_reachability_check_has_exactly_one() -> None:
    roots: dict[str, list[str]] = {}
    for spec in ALL:
        if spec.root:
            roots.setdefault(spec.kind, []).append(spec.check)
    assert {kind: checks for kind, checks in roots.items() if len(checks) != 1} == {}
    assert {kind: checks[0] for kind, checks in roots.items()} == governance.REACHABILITY
    assert set(roots) == {"http", "tls", "postgres", "redis", "prometheus", "alertmanager"}


def _declarations(tree: ast.AST) -> list[ast.Call]:
    """The ``probe(…)`` calls (the decorators) of a module."""
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "probe"]


@pytest.mark.parametrize("path", sorted(PROBES.glob("*.py")), ids=lambda p: p.name)
def test_a_check_id_is_written_once_in_its_declaration(path: Path) -> None:
    """No string literal equal to a check id outside ``@probe("…", …)``, and no Result built by a probe module:
    only :func:`opsproof.probes.base.run` builds one, from the declaration."""
    checks = {spec.check for spec in ALL}
    tree = ast.parse(path.read_text())
    declared = {id(call.args[0]) for call in _declarations(tree) if call.args}
    stray = [f"line {node.lineno}: {node.value!r}" for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and node.value in checks and id(node) not in declared]
    assert stray == []
    if path.name != "base.py":
        built = [f"line {node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name) and node.func.id in ("Result", "unreachable")]
        assert built == []
