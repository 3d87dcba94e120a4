"""Unreachable hosts and servers that never answer are failed checks with a reason — never a hang or a traceback."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from support import run_suite

from opsproof.inventory import loads
from opsproof.inventory.model import Inventory
from opsproof.probes import ALL, Connections
from opsproof.probes.base import ProbeSpec
from opsproof.sandbox.process import free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts TCP connections (the kernel completes the handshake) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        yield s.getsockname()[1]


def kubeconfig(port: int, folder: Path) -> str:
    """A kubeconfig for the black hole, in ``folder`` (the test's tmp_path: removed with it)."""
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "blackhole",
        "clusters": [{"name": "blackhole", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "dummy"}}],
        "contexts": [{"name": "blackhole", "context": {"cluster": "blackhole", "user": "u"}}],
    }))
    return str(path)


def inventory_text(port: int, timeout: float, folder: Path) -> str:
    kubeconfig = globals()["kubeconfig"](port, folder)
    return f"""
environment: blackhole
http:
  api: {{url: "http://127.0.0.1:{port}", timeout_s: {timeout}}}
tls:
  api: {{host: 127.0.0.1, port: {port}, timeout_s: {timeout}}}
postgres:
  main:
    dsn: "postgresql://opsproof:hunter2secret@127.0.0.1:{port}/app"
    connect_timeout_s: {timeout}
    rls_tables: [public.items]
    count_tables: [public.items]
    extensions: [pg_trgm]
    replicas: {{r1: {{dsn: "postgresql://opsproof:hunter2secret@127.0.0.1:{port}/app"}}}}
    queries: {{max_connections: {{sql: SHOW max_connections, op: ">=", value: 100}}}}
    archiving: {{max_age: 15m}}
redis:
  cache: {{url: "redis://:hunter2secret@127.0.0.1:{port}/0", timeout_s: {timeout}, eviction_policy: allkeys-lru,
           min_hit_rate: 0.5, queues: {{celery: 10}}, clients: {{max_connected: 10}}, latency: {{max_median_ms: 10}},
           persistence: {{appendonly: false}}, sentinel: {{master: m, quorum: 1, sentinels: ["127.0.0.1:{port}"]}},
           celery: {{tasks: {{workers: [celery@w1], queues: [celery], depth: {{celery: 10}}, window: 1s}}}}}}
prometheus:
  main: {{url: "http://127.0.0.1:{port}", jobs_up: [app], rules: [ServiceDown], timeout_s: {timeout},
          queries: {{up: {{expr: up, op: "==", value: 1, for: 1m}}}},
          alert_rules: {{HighErrorRate: {{threshold: "> 0.05", for: 5m}}}}, min_retention: 15d}}
alertmanager:
  main: {{url: "http://127.0.0.1:{port}", receivers: [oncall], timeout_s: {timeout}}}
slo:
  api: {{prometheus: main}}
kubernetes:
  prod: {{namespace: apex, kubeconfig: "{kubeconfig}", timeout_s: {timeout}, deployments: {{api: {{}}}},
          hpa: {{api: {{min_replicas: 3, max_replicas: 10, cpu_utilization: 70, pods_metrics: {{rps: 100}},
                      behavior: {{scale_up: {{stabilization_window_s: 0}}}}}}}}, certificates: [api-tls],
          jobs: [migrate], ingresses: [api], statefulsets: {{postgres: {{}}}}, daemonsets: {{agent: {{}}}},
          bare_pods: {{toolbox: {{}}}},
          resources: {{deployment/api: {{}}}}, scaled_objects: {{worker: {{min_replicas: 1, max_replicas: 5}}}},
          cronjobs: {{backup: {{max_age: 25h}}}}, secrets: [api-credentials], endpoints: [api],
          network_policies: [default-deny], load_balancers: [api], helm_releases: [api],
          blue_green: {{app: {{deployment: app-green}}}}, logs: {{deployment/api: {{}}}},
          volume_claims: {{backup-storage: {{}}}}, service_ports: {{api: {{80: 8000}}}}, config_maps: {{logs: []}},
          ingress_annotations: {{api: {{a: "300"}}}}, certificate_issuer: letsencrypt-prod}}
backups:
  offsite: {{s3: {{endpoint: "http://127.0.0.1:{port}", bucket: backups-bkt, access_key: AKIAEXAMPLE,
                  secret_key: hunter2secret, timeout_s: {timeout}, max_bytes: 1GiB, lifecycle: true,
                  retention: 30d}},
            supabase: {{project_ref: abcdefghijklmnopqrst, access_token: sbp_hunter2secret, pitr: true,
                        max_disk_ratio: 0.85, api_url: "http://127.0.0.1:{port}", timeout_s: {timeout}}}}}
"""


# backups and logs are files on disk, not a server — except backups in object storage (backups.s3_*) and Supabase's
# managed backups (backups.supabase_*, its Management API). tcp.connect's verdict is the handshake alone: a server
# that accepts and stays silent passes it, as `nc -z` does; its refused port and its dropped handshake (a failure
# within timeout_s) are test_tcp.py's
NETWORK = [s for s in ALL if s.kind not in ("backups", "logs", "tcp") or s.check.startswith(("backups.s3_",
                                                                                                "backups.supabase_"))]
# what a check says when its deadline (timeout_s 1 s here, for the whole check) or PostgreSQL's connect_timeout_s
# ends its wait; the Kubernetes client names the bound it was given. How long each wait takes against the configured
# bound is measured by bench/bench_unreachable.py, not asserted here.
NOTHING = r"^no answer within 1 s \(the server sent nothing\)$"
TIMED_OUT = {
    "http": NOTHING,
    "prometheus": NOTHING,
    "alertmanager": NOTHING,
    "slo": NOTHING,
    "kubernetes": r"timed out, no answer within 1 s\b",
    "tls": r"^no TLS handshake within 1 s$",
    "redis": NOTHING,
    "postgres": r"^no connection within 1 s \(connect\)$|: no connection within 1 s \(connect\)$",
    # the check's deadline, not boto3's read_timeout (which starts after the connect, so later)
    "backups": r"^no complete answer within 1 s from http://127\.0\.0\.1:\d+ \((ListObjectsV2|"
               r"GetBucketLifecycleConfiguration); the check's deadline\)$|" + NOTHING,  # the latter: Supabase's API
}


def silent_case(spec: ProbeSpec, inv: Inventory) -> str | None:
    """One check against the silent server: None if it failed on its timeout and said so, else what was wrong."""
    name, cfg = next(iter(inv.targets(spec.kind).items()))
    [target] = spec.targets(name, cfg)  # the entry, or its one named query
    with Connections() as conns:
        result = spec(target, conns)
    if result.ok is not False or result.target != target.id or result.check != spec.check:
        return f"ok={result.ok} target={result.target} check={result.check}"
    if not re.search(TIMED_OUT[spec.kind], result.observed):
        return f"observed {result.observed!r}"
    return None


def test_silent_server_fails_on_its_timeout(silent_port: int, tmp_path: Path) -> None:
    """A server that accepts and never answers: every network check fails because its configured timeout ended the
    wait, and says so. The checks wait side by side (each its own thread, deadline and connections, as the run's pool
    does), so the case costs one timeout rather than one per check; every check is judged and named on its own. How
    long the wait took is bench/bench_unreachable.py's figure, not an assertion here."""
    inv = loads(inventory_text(silent_port, 1, tmp_path), "blackhole.yaml")
    with ThreadPoolExecutor(max_workers=len(NETWORK)) as pool:
        verdicts = dict(zip([s.check for s in NETWORK], pool.map(lambda s: silent_case(s, inv), NETWORK), strict=True))
    wrong = {check: why for check, why in verdicts.items() if why is not None}
    assert not wrong, wrong
    assert len(verdicts) == len(NETWORK) > 50


@pytest.mark.parametrize("spec", NETWORK, ids=[s.check for s in NETWORK])
def test_refused_port_fails_with_a_reason(spec: object, tmp_path: Path) -> None:
    inv = loads(inventory_text(free_port(), 1, tmp_path), "refused.yaml")
    name, cfg = next(iter(inv.targets(spec.kind).items()))  # type: ignore[attr-defined]
    [target] = spec.targets(name, cfg)  # type: ignore[attr-defined]
    with Connections() as conns:
        result = spec(target, conns)  # type: ignore[operator]
    assert result.ok is False
    assert "refused" in result.observed.lower(), result.observed
    assert result.explain().startswith(f"{target.id}: ")
    assert "unreachable (" in result.explain()


def test_whole_suite_against_a_black_hole(silent_port: int, tmp_path: Path) -> None:
    inventory = tmp_path / "blackhole.yaml"
    inventory.write_text(inventory_text(silent_port, 1, tmp_path))
    run = run_suite(inventory, tmp_path, timeout=120)
    assert run.code == 1
    assert "Traceback" not in run.output
    assert "hunter2secret" not in run.output + run.junit
    # each target's reachability check fails; its other checks are reported as blocked by it (one root cause)
    failed = {r["check"] for r in run.records if r["outcome"] == "failed"}
    assert failed == {"http.health", "tls.hostname", "postgres.ready", "postgres.replica_lag", "redis.ping",
                      "prometheus.ready", "alertmanager.ready"}, run.output
    others = [r for r in run.records if r["outcome"] != "failed"]
    assert {r["verdict"] for r in others} == {"blocked"}
    assert {r["blocked_by"] for r in others} == {"http[api]", "tls[api]", "postgres[main]", "redis[cache]",
                                                 "prometheus[main]", "alertmanager[main]"}
    smoke_kinds = {"http", "tls", "postgres", "redis", "prometheus", "alertmanager"}
    # every smoke check but postgres.tables (a baseline check) and prometheus.new_alerts (a post-deploy step)
    not_smoke = {"postgres.tables", "prometheus.new_alerts"}
    assert len(run.records) == len([s for s in ALL if s.kind in smoke_kinds and s.check not in not_smoke])
