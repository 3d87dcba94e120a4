"""The Kubernetes checks beyond Deployments against kmock's KubernetesEmulator (real HTTP, the real client):
StatefulSets, DaemonSets, bare Pods, container resources, HPA metric targets, KEDA ScaledObjects, CronJobs. One
emulator for the module, one namespace per case (:mod:`k8s_cases`). Every case breaks exactly one object the way a
cluster would show it, and exactly that check fails."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kmock
import test_kubernetes as kt
from k8s_cases import Case, module_tests, run_all
from test_kubernetes import Emulator, ago, meta, pod

from opsproof.inventory import BarePod, CronJob, Hpa, Kubernetes, Resources, ScaledObject, Workload
from opsproof.probes import Connections
from opsproof.probes import kubernetes as k8s

Obj = dict[str, Any]
PROBES = (k8s.statefulsets, k8s.daemonsets, k8s.bare_pods, k8s.resources, k8s.hpa_metrics, k8s.scaled_objects,
          k8s.cronjobs)
KINDS = {"StatefulSet": "apps/v1/statefulsets", "DaemonSet": "apps/v1/daemonsets",
         "ScaledObject": "keda.sh/v1alpha1/scaledobjects", "CronJob": "batch/v1/cronjobs"}


def container(name: str, cpu: tuple[str, str] = ("250m", "1"), memory: tuple[str, str] = ("256Mi", "1Gi")) -> Obj:
    return {"name": name, "image": f"registry.example.com/{name}:2.0.0", "resources": {
        "requests": {"cpu": cpu[0], "memory": memory[0]}, "limits": {"cpu": cpu[1], "memory": memory[1]}}}


def healthy(ns: str) -> dict[str, Obj]:
    """One healthy namespace: StatefulSet postgres (3), DaemonSet node-exporter (4 nodes), bare pod toolbox and two
    pods app=redis-sentinel, and containers that declare their resources."""
    sts = meta("StatefulSet", ns, "postgres", generation=4, labels={"app": "postgres"})
    sts["spec"] = {"replicas": 3, "selector": {"matchLabels": {"app": "postgres"}},
                   "updateStrategy": {"type": "RollingUpdate"},
                   "template": {"spec": {"initContainers": [container("init-perms", memory=("512Mi", "512Mi"))],
                                         "containers": [container("postgres", memory=("1Gi", "2Gi"))]}}}
    sts["status"] = {"observedGeneration": 4, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
                     "updatedReplicas": 3, "currentRevision": "postgres-6b9f", "updateRevision": "postgres-6b9f"}
    ds = meta("DaemonSet", ns, "node-exporter", generation=2)
    ds["spec"] = {"template": {"spec": {"containers": [container("node-exporter")]}}}
    ds["status"] = {"observedGeneration": 2, "desiredNumberScheduled": 4, "currentNumberScheduled": 4,
                    "numberReady": 4, "updatedNumberScheduled": 4, "numberAvailable": 4, "numberMisscheduled": 0}
    objs = {f"{o['kind']}/{o['metadata']['name']}": o for o in (sts, ds)}
    objs.update(kt.app_objects(ns, "api"))
    objs["Deployment/api"]["spec"]["template"] = {"spec": {"containers": [
        container("api"), container("envoy", cpu=("50m", "200m"), memory=("64Mi", "128Mi"))]}}
    objs["HorizontalPodAutoscaler/api"]["spec"]["metrics"] = [  # the runbook's targets: CPU 70 %, memory 80 %
        {"type": "Resource", "resource": {"name": res, "target": {"type": "Utilization", "averageUtilization": v}}}
        for res, v in (("cpu", 70), ("memory", 80))]
    so = meta("ScaledObject", ns, "worker")
    so["spec"] = {"scaleTargetRef": {"name": "worker"}, "minReplicaCount": 1, "maxReplicaCount": 20, "triggers": [
        {"type": "redis", "metadata": {"listName": "celery", "listLength": "10"}}]}
    so["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                                   {"type": "Active", "status": "False"}]}
    cron = meta("CronJob", ns, "backup")
    cron["spec"] = {"schedule": "0 2 * * *", "suspend": False}
    cron["status"] = {"lastScheduleTime": ago(3 * 3600), "lastSuccessfulTime": ago(3 * 3600 - 300)}
    objs.update({"ScaledObject/worker": so, "CronJob/backup": cron})
    nobody = meta("ReplicaSet", ns, "none-00000", labels={"pod-template-hash": "00000"})
    for name, labels in (("toolbox", {"app": "toolbox"}), ("sentinel-a", {"app": "redis-sentinel"}),
                         ("sentinel-b", {"app": "redis-sentinel"})):
        p = pod(ns, name, nobody, "x")
        p["metadata"].update(labels=labels, ownerReferences=[])
        objs[f"Pod/{name}"] = p
    return objs


def not_ready(p: Obj, waiting: Obj | None = None) -> None:
    p["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    if waiting:
        p["status"]["containerStatuses"][0]["state"] = {"waiting": waiting}




STS = ("expected postgres rolled out: latest generation observed, every replica updated and ready, "
       "currentRevision = updateRevision")
DS = ("expected node-exporter rolled out: latest generation observed, on every scheduled node updated, ready and "
      "none unavailable")
BARE = "expected pod toolbox: Ready, restarts ≤ 0, pods app=redis-sentinel: ≥ 2 Ready, restarts ≤ 1"
RES = ("expected every container of deployment/api, statefulset/postgres, daemonset/node-exporter declares cpu and "
       "memory requests and limits (statefulset/postgres: limits.memory ≤ 2Gi, requests.memory ≥ 512Mi)")
HPA = "expected hpa api: cpu averageUtilization 70 %, memory averageUtilization 80 %"
SO = "expected scaledobject worker: 1–20 replicas, triggers redis, Ready"
CRON = "expected cronjob backup: not suspended, last success within 25h"


def metric(o: dict[str, Obj], index: int, **target: Any) -> None:
    o["HorizontalPodAutoscaler/api"]["spec"]["metrics"][index]["resource"]["target"] = target


CASES = [
    Case("healthy", lambda o: None),
    Case("sts-partial", lambda o: o["StatefulSet/postgres"]["status"].update(
        readyReplicas=2, updatedReplicas=1, updateRevision="postgres-7d2c"),
         {"kubernetes.statefulsets": "statefulset postgres: 1 of 3 replicas updated, 2 ready, currentRevision "
                                     "postgres-6b9f ≠ updateRevision postgres-7d2c (the update has not finished), "
                                     + STS}),
    Case("sts-generation", lambda o: o["StatefulSet/postgres"]["metadata"].update(generation=5),
         {"kubernetes.statefulsets": "statefulset postgres: observedGeneration 4 behind generation 5 (the controller "
                                     f"has not acted on the latest spec), {STS}"}),
    Case("ds-unavailable", lambda o: o["DaemonSet/node-exporter"]["status"].update(
        numberReady=3, numberAvailable=3, numberUnavailable=1),
         {"kubernetes.daemonsets": "daemonset node-exporter: 4 of 4 scheduled pods updated, 3 ready, 1 unavailable, "
                                   + DS}),
    Case("ds-missing", lambda o: o.pop("DaemonSet/node-exporter"),
         {"kubernetes.daemonsets": f"daemonset node-exporter not found in namespace ds-missing, {DS}",
          "kubernetes.resources": f"daemonset node-exporter not found in namespace ds-missing, {RES}"}),
    Case("bare-crashloop", lambda o: not_ready(o["Pod/toolbox"], {"reason": "CrashLoopBackOff", "message": "back-off"}),
         {"kubernetes.bare_pods": "pod toolbox: CrashLoopBackOff (container app, 0 restarts: back-off), " + BARE}),
    Case("bare-gone", lambda o: o.pop("Pod/toolbox"),
         {"kubernetes.bare_pods": f"pod toolbox: not found in namespace bare-gone, {BARE}"}),
    Case("bare-selector", lambda o: (not_ready(o["Pod/sentinel-b"]),
                                     o["Pod/sentinel-a"]["status"]["containerStatuses"][0].update(restartCount=4)),
         {"kubernetes.bare_pods": "pods app=redis-sentinel: sentinel-a 4 container restart(s), ceiling 1, sentinel-b "
                                  f"not Ready (phase Running), 1 of 2 Ready, below min_ready 2, {BARE}"}),
    Case("no-limits", lambda o: o["Deployment/api"]["spec"]["template"]["spec"]["containers"][1].update(
        resources={"requests": {"cpu": "50m", "memory": "64Mi"}}),
         {"kubernetes.resources": f"deployment api: container envoy: no limits.cpu, no limits.memory, {RES}"}),
    Case("over-ceiling", lambda o: o["StatefulSet/postgres"]["spec"]["template"]["spec"]["containers"][0][
        "resources"]["limits"].update(memory="4Gi"),
         {"kubernetes.resources": f"statefulset postgres: container postgres: limits.memory 4Gi above 2Gi, {RES}"}),
    Case("init-unbounded", lambda o: o["StatefulSet/postgres"]["spec"]["template"]["spec"]["initContainers"][0].update(
        resources={}),
         {"kubernetes.resources": "statefulset postgres: container init-perms: no requests.cpu, no requests.memory, "
                                  f"no limits.cpu, no limits.memory, {RES}"}),
    Case("hpa-cpu-90", lambda o: metric(o, 0, type="Utilization", averageUtilization=90),
         {"kubernetes.hpa_metrics": f"hpa api: cpu averageUtilization 90 %, runbook says 70 %, {HPA}"}),
    Case("hpa-memory-value", lambda o: metric(o, 1, type="AverageValue", averageValue="1Gi"),
         {"kubernetes.hpa_metrics": f"hpa api: no memory Utilization metric in spec.metrics, {HPA}"}),
    Case("keda-bounds", lambda o: o["ScaledObject/worker"]["spec"].update(maxReplicaCount=5),
         {"kubernetes.scaled_objects": f"scaledobject worker: 1–5 replicas configured, runbook says 1–20, {SO}"}),
    Case("keda-not-ready", lambda o: (o["ScaledObject/worker"]["spec"].update(triggers=[{"type": "cpu"}]),
                                      o["ScaledObject/worker"]["status"].update(conditions=[{
                                          "type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
                                          "message": "failed to ensure HPA is correctly created"}])),
         {"kubernetes.scaled_objects": "scaledobject worker: no redis trigger (has cpu), not Ready "
                                       f"(ScaledObjectCheckFailed: failed to ensure HPA is correctly created), {SO}"}),
    Case("cron-stale", lambda o: o["CronJob/backup"]["status"].update(lastSuccessfulTime="2026-01-01T02:05:00Z"),
         {"kubernetes.cronjobs": r"cronjob backup: last success \d+\.\d h ago \(2026-01-01T02:05:00Z\), older than "
                                 + re.escape(f"25h, {CRON}")}, regex=True),
    Case("cron-suspended", lambda o: (o["CronJob/backup"]["spec"].update(suspend=True),
                                      o["CronJob/backup"].pop("status")),
         {"kubernetes.cronjobs": "cronjob backup: suspended (spec.suspend: true), never succeeded (no "
                                 f"status.lastSuccessfulTime), {CRON}"}),
]


def config(ns: str, kubeconfig: Path, **overrides: Any) -> Kubernetes:
    settings: dict[str, Any] = {
        "namespace": ns, "kubeconfig": str(kubeconfig), "timeout_s": 5,
        "statefulsets": {"postgres": Workload()}, "daemonsets": {"node-exporter": Workload()},
        "bare_pods": {"toolbox": BarePod(), "sentinels": BarePod(selector={"app": "redis-sentinel"}, min_ready=2,
                                                                   max_restarts=1)},
        "resources": {"deployment/api": Resources(), "statefulset/postgres": Resources(
            max_memory_limit="2Gi", min_memory_request="512Mi"), "daemonset/node-exporter": Resources()},
        "hpa": {"api": Hpa(min_replicas=3, max_replicas=10, cpu_utilization=70, memory_utilization=80)},
        "scaled_objects": {"worker": ScaledObject(min_replicas=1, max_replicas=20, triggers=["redis"])},
        "cronjobs": {"backup": CronJob(max_age="25h")},
    }
    return Kubernetes(**{**settings, **overrides})


emu, conns, test_each_state_fails_exactly_its_check = module_tests(CASES, PROBES, config, healthy, KINDS)


def test_healthy_observed_and_read_only(emu: Emulator, conns: Connections) -> None:
    before = len(emu.requests())
    results = run_all(PROBES, config("healthy", emu.kubeconfig), conns, "healthy")
    assert {c: r.observed for c, r in results.items()} == {
        "kubernetes.statefulsets": "statefulset postgres: 3/3 ready at revision postgres-6b9f",
        "kubernetes.daemonsets": "daemonset node-exporter: 4/4 updated and ready",
        "kubernetes.bare_pods": "pod toolbox: 1 Ready; pods app=redis-sentinel: 2 Ready",
        "kubernetes.resources": "deployment api: 2 container(s) declare requests and limits; statefulset postgres: "
                                "2 container(s) declare requests and limits; daemonset node-exporter: 1 container(s) "
                                "declare requests and limits",
        "kubernetes.hpa_metrics": "hpa api: cpu 70 %, memory 80 %",
        "kubernetes.scaled_objects": "scaledobject worker: Ready, 1–20 replicas on redis",
        "kubernetes.cronjobs": "cronjob backup: last success 2.9 h ago",
    }
    seen = emu.requests()[before:]
    assert {(r.method, r.action) for r in seen} == {(kmock.method.GET, kmock.action.LIST)}
    assert len(seen) == 9  # sts, ds, pods: 1 each; resources: 1 per kind (deployment, sts, ds); hpa, so, cron: 1
    assert results["kubernetes.resources"].evidence["statefulset/postgres"]["postgres"]["limits"]["memory"] == "2Gi"
