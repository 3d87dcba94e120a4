"""The Kubernetes probes' parts that need no API server: label-selector semantics, and the in-cluster setting
outside a cluster (it fails before any connection). The probes against an API server — kmock's emulator over real
HTTP — are in tests/integration/test_kubernetes.py."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from opsproof.inventory import Deployment, InventoryError, Kubernetes, loads, quantity
from opsproof.probes import Connections, ProbeSpec, Target
from opsproof.probes import kubernetes as k8s

Obj = dict[str, Any]


@pytest.mark.parametrize(("selector", "labels", "selected"), [
    ({"matchLabels": {"app": "api"}}, {"app": "api", "pod-template-hash": "7c9b4"}, True),
    ({"matchLabels": {"app": "api"}}, {"app": "api-worker"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, {"tier": "api"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch"]}]}, {}, True),
    ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"canary": "true"}, False),
    ({"matchLabels": {"app": "api"}, "matchExpressions": [{"key": "track", "operator": "Exists"}]}, {"app": "api"},
     False),
])
def test_label_selector_semantics(selector: Obj, labels: dict[str, str], selected: bool) -> None:
    assert k8s._selects(selector, labels) is selected


def test_in_cluster_outside_a_cluster_fails_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # as outside any pod, even when CI runs in one
    cfg = Kubernetes(namespace="apex", in_cluster=True, deployments={"api": Deployment()})
    with Connections() as conns:
        result = k8s.rollout(Target("kubernetes", "prod", cfg), conns)
    assert result.ok is False
    assert result.observed == "unreachable (ConfigException: Service host/port is not set.)"


@pytest.mark.parametrize(("text", "value"), [("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("512Mi", 512 * 2**20),
                                              ("2Gi", 2 * 2**30), ("1G", 1e9), ("100k", 1e5)])
def test_quantities_as_kubernetes_writes_them(text: str, value: float) -> None:
    assert quantity(text) == value


@pytest.mark.parametrize(("body", "message"), [
    ("resources: {api: {}}", "kubernetes.p.resources.api.[key]: 'api' names no workload: write KIND/NAME, KIND one "
                             "of deployment, statefulset, daemonset (deployment/api, statefulset/postgres)"),
    ("resources: {deployment/api: {max_memory_limit: 2GB}}",
     "kubernetes.p.resources.deployment/api.max_memory_limit: '2GB' is not a Kubernetes quantity (write it like "
     "500m, 2, 512Mi or 2Gi)"),
    ("scaled_objects: {w: {min_replicas: 5, max_replicas: 2}}",
     "kubernetes.p.scaled_objects.w: min_replicas 5 is above max_replicas 2. Fix: swap them"),
    ("cronjobs: {b: {max_age: soon}}", "kubernetes.p.cronjobs.b.max_age: 'soon' is not a duration"),
    ("hpa: {api: {min_replicas: 3, max_replicas: 10, cpu_utilization: 0}}",
     "kubernetes.p.hpa.api.cpu_utilization: Input should be greater than or equal to 1"),
])
def test_bad_kubernetes_settings_name_key_and_fix(body: str, message: str) -> None:
    with pytest.raises(InventoryError) as caught:
        loads(f"environment: t\nkubernetes:\n  p:\n    namespace: x\n    {body}\n")
    assert str(caught.value).startswith(f"<inventory>:5: {message}"), str(caught.value)


def test_settings_beyond_deployments_load() -> None:
    cfg = loads("environment: t\nkubernetes:\n  p:\n    namespace: x\n    cronjobs: {backup: {max_age: 25h}}\n"
                "    blue_green: {app: {deployment: app-green}}\n").targets("kubernetes")["p"]
    assert cfg.cronjobs["backup"].max_age == 90000
    assert (cfg.blue_green["app"].label, cfg.blue_green["app"].color) == ("color", "green")  # the defaults


def test_every_kubernetes_check_is_in_the_post_deploy_suite() -> None:
    """Each declared Kubernetes check is the ``check`` mark of a test of checks/post_deploy/test_01_rollout.py (the
    pods' logs: of test_06_logs.py, beside the host files' logs)."""
    suites = Path(__file__).resolve().parents[2] / "checks" / "post_deploy"
    marked = {ast.unparse(mark.args[0]) for suite in ("test_01_rollout.py", "test_06_logs.py")
              for node in ast.walk(ast.parse((suites / suite).read_text()))
              if isinstance(node, ast.FunctionDef) for mark in node.decorator_list
              if isinstance(mark, ast.Call) and ast.unparse(mark.func) == "pytest.mark.check"}
    marked.discard("logs.errors")  # the host files' check, not a Kubernetes one
    declared = {f"kubernetes.{name}" for name, value in vars(k8s).items() if isinstance(value, ProbeSpec)}
    assert marked == declared


def test_the_kubelets_timestamps_are_read_to_the_microsecond() -> None:
    from opsproof.probes.k8s_logs import stamp

    assert stamp("2026-12-04T21:40:48.123456789Z") == stamp("2026-12-04T21:40:48.123456Z")
    assert stamp("2026-12-04T21:40:48Z") == 1796420448.0
    assert stamp("2026-12-04T22:40:48+01:00") == 1796420448.0
    assert stamp("INFO") is None
    assert stamp("2026-13-04T21:40:48Z") is None


def test_a_kubectl_label_selector_is_read_as_the_api_server_reads_it() -> None:
    from opsproof.inventory.logs import parse_selector
    from opsproof.probes.k8s_api import selects

    labels = {"app": "backend", "tier": "web"}
    for text, chosen in (("app=backend", True), ("app==api", False), ("app", True), ("!app", False),
                         ("track!=canary", True), ("tier in (web, api)", True), ("tier notin (web)", False),
                         ("app=backend,tier in (db)", False), ("app, !canary", True)):
        assert selects(parse_selector(text), labels) is chosen, text
    with pytest.raises(ValueError, match=r"^'tier in web' of selector 'tier in web' is not a label requirement\. "):
        parse_selector("tier in web")
