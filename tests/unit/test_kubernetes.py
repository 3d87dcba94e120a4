"""The Kubernetes probes' parts that need no API server: label-selector semantics, and the in-cluster setting
outside a cluster (it fails before any connection). The probes against an API server — kmock's emulator over real
HTTP — are in tests/integration/test_kubernetes.py."""

from __future__ import annotations

from typing import Any

import pytest

from opsproof.inventory import Deployment, Kubernetes
from opsproof.probes import Connections, Target
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
