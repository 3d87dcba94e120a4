"""The configuration checks against kmock's KubernetesEmulator (real HTTP, the real client): PersistentVolumeClaims,
Service ports, Ingress annotations, ConfigMaps, a Certificate's issuer, an HPA's Pods metric and its behaviour — with
the SIGN X APEX runbook's values (l. 600, 708-710, 219-222, 529, 771-794) and SmartCloudOps' ConfigMap (l. 343-364).
One emulator for the module, one namespace per case (:mod:`k8s_cases`); each case breaks one object and exactly
that check fails, with its whole finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import test_kubernetes as kt
from k8s_cases import Case, module_tests, run_all
from test_kubernetes import Emulator, meta

from opsproof.inventory import HpaBehavior, Kubernetes, ScalingPolicy, ScalingRules, VolumeClaim
from opsproof.inventory.entries import Hpa
from opsproof.probes import Connections
from opsproof.probes import kubernetes as k8s

Obj = dict[str, Any]
PROBES = (k8s.volume_claims, k8s.service_ports, k8s.ingress_annotations, k8s.config_maps, k8s.certificates,
          k8s.hpa_metrics, k8s.hpa_behavior)
KINDS = {"PersistentVolumeClaim": "v1/persistentvolumeclaims", "ConfigMap": "v1/configmaps", "Service": "v1/services"}
READ, SEND = "nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"
FLUENT = "<match kubernetes.**>\n  @type elasticsearch\n  host elasticsearch\n</match>\n"  # never in a result
RPS = "http_requests_per_second"


def healthy(ns: str) -> dict[str, Obj]:
    """The runbook's objects as its YAML writes them: pvc backup-storage, Service apex-api 80 → 8000, the Ingress'
    timeouts, Certificate apex-api-tls from letsencrypt-prod, HPA apex-api with its Pods metric and behaviour."""
    objs = {k: v for k, v in kt.app_objects(ns, "apex-api").items()
            if k.split("/")[0] in ("HorizontalPodAutoscaler", "Certificate", "Ingress")}
    pvc = meta("PersistentVolumeClaim", ns, "backup-storage")
    pvc["spec"] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}},
                   "storageClassName": "gp3", "volumeName": "pvc-3f2a"}
    pvc["status"] = {"phase": "Bound", "capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"]}
    svc = meta("Service", ns, "apex-api")
    svc["spec"] = {"type": "LoadBalancer", "selector": {"app": "apex-api"},
                   "ports": [{"port": 80, "targetPort": 8000, "protocol": "TCP"}]}
    cm = meta("ConfigMap", ns, "logging-config")
    cm["data"] = {"fluent.conf": FLUENT}
    objs["Ingress/apex-api"]["metadata"]["annotations"] = {READ: "300", SEND: "300", "kubernetes.io/ingress.class":
                                                           "nginx"}
    objs["Certificate/apex-api-tls"]["spec"] = {"secretName": "apex-api-tls", "issuerRef": {
        "name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}}
    hpa = objs["HorizontalPodAutoscaler/apex-api"]
    hpa["spec"]["metrics"] = [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
        {"type": "Pods", "pods": {"metric": {"name": RPS}, "target": {"type": "AverageValue", "averageValue": "100"}}}]
    hpa["spec"]["behavior"] = {
        "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                      "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]},
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 30},
                                 {"type": "Pods", "value": 2, "periodSeconds": 30}]}}
    objs.update({f"{o['kind']}/{o['metadata']['name']}": o for o in (pvc, svc, cm)})
    return objs


def hpa(o: dict[str, Obj]) -> Obj:
    return o["HorizontalPodAutoscaler/apex-api"]


PVC = "expected pvc backup-storage: Bound, capacity ≥ 100Gi"
PORTS = "expected service apex-api: port 80 → targetPort 8000"
ANN = f"expected ingress apex-api: {READ}='300', {SEND}='300'"
CERT = "expected Ready, and valid for more than 30 days, issued by letsencrypt-prod"
METRICS = f"expected hpa apex-api: cpu averageUtilization 70 %, pods {RPS} averageValue 100"
BEHAVIOR = ("expected hpa apex-api scaleUp: window 0 s, Percent 100 per 30 s, Pods 2 per 30 s, select Max; "
            "hpa apex-api scaleDown: window 300 s, Percent 50 per 60 s")
CASES = [
    Case("healthy", lambda o: None),
    Case("pvc-pending", lambda o: o["PersistentVolumeClaim/backup-storage"].update(status={"phase": "Pending"}),
         {"kubernetes.volume_claims": f"pvc backup-storage: phase Pending, not Bound, {PVC}"}),
    Case("pvc-small", lambda o: o["PersistentVolumeClaim/backup-storage"]["status"].update(capacity={
        "storage": "50Gi"}),
         {"kubernetes.volume_claims": f"pvc backup-storage: capacity 50Gi, runbook says at least 100Gi, {PVC}"}),
    Case("pvc-missing", lambda o: o.pop("PersistentVolumeClaim/backup-storage"),
         {"kubernetes.volume_claims": f"pvc backup-storage not found in namespace pvc-missing, {PVC}"}),
    Case("port-wrong", lambda o: o["Service/apex-api"]["spec"]["ports"][0].update(targetPort=8080),
         {"kubernetes.service_ports": f"service apex-api: port 80 → targetPort 8080, runbook says 8000, {PORTS}"}),
    Case("port-missing", lambda o: o["Service/apex-api"]["spec"].update(ports=[{"port": 443, "targetPort": 8443}]),
         {"kubernetes.service_ports": f"service apex-api: no port 80 (has 443 → 8443), {PORTS}"}),
    Case("timeout-60", lambda o: o["Ingress/apex-api"]["metadata"]["annotations"].update({READ: "60"}),
         {"kubernetes.ingress_annotations": f"ingress apex-api: {READ}='60', runbook says '300', {ANN}"}),
    Case("timeout-absent", lambda o: o["Ingress/apex-api"]["metadata"]["annotations"].pop(SEND),
         {"kubernetes.ingress_annotations": f"ingress apex-api: {SEND} absent, {ANN}"}),
    Case("configmap-key", lambda o: o["ConfigMap/logging-config"].update(data={"fluent-bit.conf": "x"}),
         {"kubernetes.config_maps": "configmap logging-config: no key fluent.conf (has fluent-bit.conf), expected "
                                    "configmap logging-config with keys fluent.conf"}),
    Case("configmap-missing", lambda o: o.pop("ConfigMap/logging-config"),
         {"kubernetes.config_maps": "configmap logging-config not found in namespace configmap-missing, expected "
                                    "configmap logging-config with keys fluent.conf"}),
    Case("cert-staging", lambda o: o["Certificate/apex-api-tls"]["spec"]["issuerRef"].update(
        name="letsencrypt-staging"),
         {"kubernetes.certificates": "certificate apex-api-tls: issued by ClusterIssuer letsencrypt-staging, "
                                     f"runbook says letsencrypt-prod, {CERT}"}),
    Case("rps-200", lambda o: hpa(o)["spec"]["metrics"][1]["pods"]["target"].update(averageValue="200"),
         {"kubernetes.hpa_metrics": f"hpa apex-api: pods {RPS} averageValue 200, runbook says 100, {METRICS}"}),
    Case("rps-missing", lambda o: hpa(o)["spec"].update(metrics=hpa(o)["spec"]["metrics"][:1]),
         {"kubernetes.hpa_metrics": f"hpa apex-api: no Pods metric {RPS} (AverageValue) in spec.metrics, {METRICS}"}),
    Case("scaledown-fast", lambda o: hpa(o)["spec"]["behavior"]["scaleDown"].update(
        stabilizationWindowSeconds=60, policies=[{"type": "Percent", "value": 100, "periodSeconds": 15}]),
         {"kubernetes.hpa_behavior": "hpa apex-api: scaleDown stabilizationWindowSeconds 60, runbook says 300, "
                                     "scaleDown policies Percent 100 per 15 s, runbook says Percent 50 per 60 s, "
                                     + BEHAVIOR}),
    Case("behavior-default", lambda o: hpa(o)["spec"].pop("behavior"),
         {"kubernetes.hpa_behavior": "hpa apex-api: no spec.behavior.scaleUp, no spec.behavior.scaleDown, "
                                     + BEHAVIOR}),
]


def config(ns: str, kubeconfig: Path, **overrides: Any) -> Kubernetes:
    behavior = HpaBehavior(
        scale_up=ScalingRules(stabilization_window_s=0, select_policy="Max", policies=[
            ScalingPolicy(type="Percent", value=100, period_s=30), ScalingPolicy(type="Pods", value=2, period_s=30)]),
        scale_down=ScalingRules(stabilization_window_s=300, policies=[
            ScalingPolicy(type="Percent", value=50, period_s=60)]))
    settings: dict[str, Any] = {
        "namespace": ns, "kubeconfig": str(kubeconfig), "timeout_s": 5,
        "volume_claims": {"backup-storage": VolumeClaim(min_capacity="100Gi")},
        "service_ports": {"apex-api": {80: 8000}}, "ingress_annotations": {"apex-api": {READ: "300", SEND: "300"}},
        "config_maps": {"logging-config": ["fluent.conf"]}, "certificates": ["apex-api-tls"],
        "certificate_min_days": 30, "certificate_issuer": "letsencrypt-prod",
        "hpa": {"apex-api": Hpa(min_replicas=3, max_replicas=10, cpu_utilization=70, pods_metrics={RPS: "100"},
                                behavior=behavior)},
    }
    return Kubernetes(**{**settings, **overrides})


emu, conns, test_each_state_fails_exactly_its_check = module_tests(CASES, PROBES, config, healthy, KINDS)


def test_healthy_observed_one_list_each_and_no_configmap_value(emu: Emulator, conns: Connections) -> None:
    before = len(emu.requests())
    results = run_all(PROBES, config("healthy", emu.kubeconfig), conns, "healthy")
    assert {c: r.observed for c, r in results.items()} == {
        "kubernetes.volume_claims": "pvc backup-storage: Bound, 100Gi",
        "kubernetes.service_ports": "service apex-api: 80 → 8000",
        "kubernetes.ingress_annotations": f"ingress apex-api: {READ}='300', {SEND}='300'",
        "kubernetes.config_maps": "configmap logging-config: keys fluent.conf",
        "kubernetes.certificates": "certificate apex-api-tls: Ready, 60 days left",
        "kubernetes.hpa_metrics": f"hpa apex-api: cpu 70 %, {RPS} 100",
        "kubernetes.hpa_behavior": "hpa apex-api: behavior as the runbook says",
    }
    assert results["kubernetes.certificates"].evidence["apex-api-tls"]["issuerRef"]["kind"] == "ClusterIssuer"
    assert results["kubernetes.volume_claims"].evidence["backup-storage"]["storageClassName"] == "gp3"
    assert "elasticsearch" not in repr([(r.observed, r.evidence, r.explain()) for r in results.values()])
    assert len(emu.requests()[before:]) == 7  # one LIST per check
