"""The Kubernetes objects of a profile, as the controllers leave them after a healthy rollout: what
``kubectl get`` would show for the namespace the runbook describes. The API emulator (:mod:`opsproof.sandbox.kube`)
runs no controllers, so statuses are written here: every Deployment rolled out (its current ReplicaSet and Ready
pods), StatefulSets on one revision, HPAs at their minimum, KEDA ScaledObjects Ready, CronJobs with a recent
success, cert-manager Certificates Ready, LoadBalancer Services with an address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsproof.sandbox.profiles import Kubernetes, Workload
from opsproof.util.durations import parse_duration

Obj = dict[str, Any]
# kind -> the emulator's resource key (group/version/plural), as the kubernetes client asks for it
RESOURCES = {
    "Deployment": "apps/v1/deployments", "ReplicaSet": "apps/v1/replicasets", "StatefulSet": "apps/v1/statefulsets",
    "Pod": "v1/pods", "Secret": "v1/secrets", "Endpoints": "v1/endpoints", "Service": "v1/services",
    "Event": "v1/events",
    "HorizontalPodAutoscaler": "autoscaling/v2/horizontalpodautoscalers", "CronJob": "batch/v1/cronjobs",
    "ScaledObject": "keda.sh/v1alpha1/scaledobjects", "Certificate": "cert-manager.io/v1/certificates",
    "Ingress": "networking.k8s.io/v1/ingresses", "PersistentVolumeClaim": "v1/persistentvolumeclaims",
}
REVISION = "deployment.kubernetes.io/revision"
HASH = "6f7d9c"  # the current ReplicaSet's pod-template-hash


def _time(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(kind: str, ns: str, name: str, age_s: float = 3600, **extra: Any) -> Obj:
    api = RESOURCES[kind].rsplit("/", 1)[0]
    return {"apiVersion": api, "kind": kind, "metadata": {
        "name": name, "namespace": ns, "uid": f"{ns}-{kind}-{name}".lower(), "creationTimestamp": _time(-age_s),
        **extra}}


def _owner(obj: Obj) -> list[Obj]:
    m = obj["metadata"]
    return [{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": m["name"], "uid": m["uid"],
             "controller": True}]


def _containers(name: str, want: Workload) -> list[Obj]:
    c: Obj = {"name": name, "image": f"registry.example.com/{name}:1.0.0"}
    if want.resources is not None:
        c["resources"] = {"requests": dict(want.resources.requests), "limits": dict(want.resources.limits)}
    return [c]


def _pod(ns: str, name: str, owner: Obj, labels: dict[str, str]) -> Obj:
    pod = _meta("Pod", ns, name, age_s=300, labels=labels, ownerReferences=_owner(owner))
    pod["status"] = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                                         {"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                            "image": "registry.example.com/app:1.0.0",
                                            "state": {"running": {"startedAt": _time(-295)}}}]}
    return pod


def _deployment(ns: str, name: str, want: Workload) -> list[Obj]:
    labels = dict(want.labels) or {"app": name}
    dep = _meta("Deployment", ns, name, generation=2, labels=labels, annotations={REVISION: "2"})
    n = want.replicas
    dep["spec"] = {"replicas": n, "selector": {"matchLabels": labels},
                   "template": {"metadata": {"labels": labels}, "spec": {"containers": _containers(name, want)}}}
    dep["status"] = {"observedGeneration": 2, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                     "availableReplicas": n, "conditions": [
                         {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                         {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
    rs = _meta("ReplicaSet", ns, f"{name}-{HASH}", age_s=300, annotations={REVISION: "2"},
               labels={**labels, "pod-template-hash": HASH}, ownerReferences=_owner(dep))
    rs["spec"] = {"replicas": n, "selector": {"matchLabels": {**labels, "pod-template-hash": HASH}}}
    rs["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n}
    pods = [_pod(ns, f"{name}-{HASH}-{i}", rs, {**labels, "pod-template-hash": HASH}) for i in range(n)]
    scaled = _meta("Event", ns, f"{name}.scaled", age_s=290)  # the rollout's own Normal event
    scaled.update({"type": "Normal", "reason": "ScalingReplicaSet", "message": f"Scaled up replica set {name}-{HASH}",
                   "count": 1, "lastTimestamp": _time(-290),
                   "involvedObject": {"kind": "Deployment", "name": name, "namespace": ns}})
    return [dep, rs, *pods, scaled]


def _statefulset(ns: str, name: str, want: Workload) -> list[Obj]:
    labels = {"app": name}
    sts = _meta("StatefulSet", ns, name, generation=3, labels=labels)
    n = want.replicas
    sts["spec"] = {"replicas": n, "selector": {"matchLabels": labels}, "updateStrategy": {"type": "RollingUpdate"},
                   "template": {"metadata": {"labels": labels}, "spec": {"containers": _containers(name, want)}}}
    revision = f"{name}-7b5d8"
    sts["status"] = {"observedGeneration": 3, "replicas": n, "readyReplicas": n, "currentReplicas": n,
                     "updatedReplicas": n, "currentRevision": revision, "updateRevision": revision}
    return [sts, *(_pod(ns, f"{name}-{i}", sts, labels) for i in range(n))]


def _ports(k: Kubernetes, service: str) -> list[Obj]:
    return [{"port": p, "targetPort": t, "protocol": "TCP"}
            for p, t in (k.service_ports.get(service) or {80: 80}).items()]


def objects(k: Kubernetes) -> list[Obj]:
    """Every object of the namespace, healthy."""
    ns = k.namespace
    out: list[Obj] = []
    for name, want in k.deployments.items():
        out += _deployment(ns, name, want)
    for name, want in k.statefulsets.items():
        out += _statefulset(ns, name, want)
    for name, h in k.hpa.items():
        hpa = _meta("HorizontalPodAutoscaler", ns, name)
        metrics = [{"type": "Resource", "resource": {"name": res, "target": {"type": "Utilization",
                                                                             "averageUtilization": v}}}
                   for res, v in (("cpu", h.cpu), ("memory", h.memory)) if v is not None]
        metrics += [{"type": "Pods", "pods": {"metric": {"name": m}, "target": {"type": "AverageValue",
                                                                                 "averageValue": v}}}
                    for m, v in h.pods_metrics.items()]
        hpa["spec"] = {"minReplicas": h.min, "maxReplicas": h.max, "metrics": metrics,
                       "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": h.target}}
        if h.behavior:
            hpa["spec"]["behavior"] = dict(h.behavior)
        hpa["status"] = {"currentReplicas": h.min, "desiredReplicas": h.min}
        out.append(hpa)
    for name, s in k.scaled_objects.items():
        so = _meta("ScaledObject", ns, name)
        so["spec"] = {"scaleTargetRef": {"name": s.target}, "minReplicaCount": s.min, "maxReplicaCount": s.max,
                      "triggers": [{"type": t, "metadata": {}} for t in s.triggers]}
        so["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                                       {"type": "Active", "status": "False"}]}
        out.append(so)
    for name, c in k.cronjobs.items():
        cron = _meta("CronJob", ns, name, age_s=30 * 86400)
        ago = parse_duration(c.last_success_ago)
        cron["spec"] = {"schedule": c.schedule, "suspend": False}
        cron["status"] = {"lastScheduleTime": _time(-ago - 60), "lastSuccessfulTime": _time(-ago)}
        out.append(cron)
    for name, cert in k.certificates.items():
        obj = _meta("Certificate", ns, name)
        if cert.issuer:
            obj["spec"] = {"issuerRef": {"name": cert.issuer, "kind": "ClusterIssuer"}}
        obj["status"] = {"notAfter": _time(cert.days_left * 86400), "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready",
             "message": "Certificate is up to date and has not expired"}]}
        out.append(obj)
    for name in k.secrets:
        secret = _meta("Secret", ns, name)
        secret.update(type="Opaque", data={})  # existence is what is checked: the emulator holds no value
        out.append(secret)
    for name in k.endpoints:
        ep = _meta("Endpoints", ns, name)
        ready = [o for o in out if o["kind"] == "Pod" and o["metadata"]["labels"].get("app") == name]
        ep["subsets"] = [{"addresses": [{"ip": f"10.0.0.{10 + i}", "targetRef": {"kind": "Pod", "name": p["metadata"][
            "name"]}} for i, p in enumerate(ready)], "ports": [{"port": 8000}]}]
        out.append(ep)
    for name, service in k.services.items():
        svc = _meta("Service", ns, name)
        svc["spec"] = {"type": "ClusterIP", "selector": dict(service.selector), "ports": _ports(k, name)}
        out.append(svc)
    for name, capacity in k.volume_claims.items():
        pvc = _meta("PersistentVolumeClaim", ns, name)
        pvc["spec"] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": capacity}}}
        pvc["status"] = {"phase": "Bound", "capacity": {"storage": capacity}}
        out.append(pvc)
    for name in dict.fromkeys([*k.ingresses, *k.ingress_annotations]):
        ing = _meta("Ingress", ns, name, annotations=dict(k.ingress_annotations.get(name, {})))
        ing["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.11"}]}}
        out.append(ing)
    for name in k.load_balancers:
        svc = _meta("Service", ns, name)
        svc["spec"] = {"type": "LoadBalancer", "selector": {"app": name}, "ports": _ports(k, name)}
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
        out.append(svc)
    return out
