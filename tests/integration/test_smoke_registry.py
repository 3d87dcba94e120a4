"""Every smoke check is a step of both gates: smoke/suite.py is derived from smoke/test_*.py, and this guards it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from support import REPO

GATES = ("checks/post_deploy/test_02_smoke.py", "checks/post_maintenance/test_10_services.py")

# an entry for every option a smoke check needs, so collection deselects none; nothing is contacted
INVENTORY = """environment: registry-test
http:
  app: {url: "http://127.0.0.1:9", ready: /ready}
tls:
  app: {host: 127.0.0.1, port: 9}
tcp:
  app: {host: 127.0.0.1, port: 9}
postgres:
  main:
    dsn: postgresql://u@127.0.0.1:9/db
    rls_tables: [public.t]
    extensions: [pg_trgm]
    replicas: {replica: {dsn: "postgresql://u@127.0.0.1:9/db"}}
    queries: {one: {sql: SELECT 1, value: 1}}
    archiving: {max_age: 15m}
redis:
  cache: {url: "redis://127.0.0.1:9", eviction_policy: allkeys-lru, min_hit_rate: 0.5, queues: {celery: 10},
          celery: {app: {queues: [celery], depth: {celery: 10}}}, clients: {max_connected: 10},
          latency: {max_median_ms: 10}, persistence: {appendonly: false},
          sentinel: {master: m, quorum: 1, sentinels: ["127.0.0.1:9"]}}
prometheus:
  main: {url: "http://127.0.0.1:9", jobs_up: [app], rules: [R], no_alerts_at_or_above: critical,
         queries: {up: {expr: up, op: "==", value: 1}}, alert_rules: {R: {for: 5m}}, min_retention: 15d}
alertmanager:
  main: {url: "http://127.0.0.1:9", receivers: [r]}
"""


def defined_smoke_checks() -> set[str]:
    """The test functions written in smoke/test_*.py, read from the source (not through smoke.suite)."""
    return {node.name for path in (REPO / "smoke").glob("test_*.py")
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def collected(tmp_path: Path) -> dict[str, set[str]]:
    """Function names pytest collects from smoke/ and from each gate, with an inventory that configures all."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--inventory", str(inventory), "smoke", *GATES],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    found: dict[str, set[str]] = {}
    for line in done.stdout.splitlines():
        if "::" in line:
            path, name = line.split("::", 1)
            suite = "smoke" if path.startswith("smoke/") else path
            found.setdefault(suite, set()).add(name.split("[", 1)[0])
    return found


def test_smoke_suite_exports_every_smoke_check() -> None:
    from smoke import suite

    assert set(suite.__all__) == defined_smoke_checks()


def test_every_smoke_check_is_collected_in_both_gates(tmp_path: Path) -> None:
    defined = defined_smoke_checks()
    found = collected(tmp_path)
    assert found["smoke"] == defined, "the inventory above should configure every smoke check"
    for gate in GATES:
        assert defined - found.get(gate, set()) == set(), f"{gate} lacks smoke checks"
        assert found[gate] == defined
