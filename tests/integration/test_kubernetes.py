"""The Kubernetes probes against kmock's KubernetesEmulator: the real `kubernetes` client, over real HTTP.

There is no cluster here. The emulator (aiohttp, asyncio) runs on a loopback port in a background thread with its
own event loop; a kubeconfig points the client at it. It stores objects and serves GET/LIST on the usual paths
(/apis/apps/v1/namespaces/NS/deployments, …). It runs no controllers and ignores field selectors, so the objects
below are written the way the controllers would have left them, and every scenario breaks exactly one thing (on a
real cluster, a crash-looping pod would also lower the deployment's ready count, and the rollout check would fail
too).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import kmock
import pytest
import yaml
from support import run_suite

from opsproof.inventory import Deployment, Hpa, Kubernetes
from opsproof.probes import Connections, Target
from opsproof.probes import kubernetes as k8s
from opsproof.result import Result

Obj = dict[str, Any]
T = TypeVar("T")
PROBES = (k8s.rollout, k8s.pods, k8s.hpa, k8s.certificates, k8s.jobs, k8s.ingresses, k8s.events)
RESOURCES = {
    "Deployment": "apps/v1/deployments",
    "ReplicaSet": "apps/v1/replicasets",
    "Pod": "v1/pods",
    "HorizontalPodAutoscaler": "autoscaling/v2/horizontalpodautoscalers",
    "Certificate": "cert-manager.io/v1/certificates",
    "Job": "batch/v1/jobs",
    "Ingress": "networking.k8s.io/v1/ingresses",
    "Event": "v1/events",
}


class Emulator:
    """kmock's KubernetesEmulator served on 127.0.0.1 by an event loop of its own, in a background thread, with a
    kubeconfig pointing at it. kmock matches each request against every earlier one (its cost grows with the
    history), so each test gets a fresh emulator."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="kmock", daemon=True)
        self._stack = contextlib.AsyncExitStack()

    def __enter__(self) -> Emulator:
        self._thread.start()
        self.handler, self.server = self._run(self._start())
        write_kubeconfig(self.kubeconfig, self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self._stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    async def _start(self) -> tuple[kmock.KubernetesEmulator, kmock.Server]:
        handler = await self._stack.enter_async_context(kmock.KubernetesEmulator())
        server = await self._stack.enter_async_context(kmock.Server(handler))
        return handler, server

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def put(self, objects: Iterable[Obj]) -> None:
        """Store objects (in the loop's thread, so never while a request reads the store)."""
        async def store() -> None:
            for obj in objects:
                meta = obj["metadata"]
                self.handler.objects[RESOURCES[obj["kind"]], meta["namespace"], meta["name"]] = obj
        self._run(store())

    def react(self, namespace: str, error: kmock.KubernetesError) -> None:
        """Answer every request in a namespace with an API error (e.g. 403)."""
        async def add() -> None:
            self.handler[kmock.namespace(namespace)] << error
        self._run(add())

    def requests(self) -> list[Any]:
        async def snapshot() -> list[Any]:
            return list(self.handler)
        return self._run(snapshot())


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig for plain HTTP with a dummy token (the emulator checks no credentials)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "opsproof", "user": {"token": "dummy-token"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "opsproof"}}],
    }))
    return path


# --- objects, as the controllers leave them after rolling `app` out from revision 1 to 2 --------------------

def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(kind: str, ns: str, name: str, **extra: Any) -> Obj:
    return {"kind": kind, "metadata": {"name": name, "namespace": ns, "uid": f"{ns}/{kind}/{name}",
                                       "creationTimestamp": ago(3600), **extra}}


def owner(obj: Obj) -> list[Obj]:
    m = obj["metadata"]
    return [{"apiVersion": "apps/v1", "kind": obj["kind"], "name": m["name"], "uid": m["uid"], "controller": True}]


def pod(ns: str, name: str, rs: Obj, app: str, *, phase: str = "Running", state: Obj | None = None,
        restarts: int = 0, age_s: float = 280) -> Obj:
    running = phase == "Running" and state is None
    obj = meta("Pod", ns, name, labels={"app": app, "pod-template-hash": rs["metadata"]["labels"]["pod-template-hash"]},
               ownerReferences=owner(rs), creationTimestamp=ago(age_s))
    obj["status"] = {
        "phase": phase,
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": str(running)}],
        "containerStatuses": [{"name": "app", "image": f"registry.example.com/{app}:2.0.0", "ready": running,
                               "restartCount": restarts,
                               "state": state or {"running": {"startedAt": ago(age_s - 5)}}}],
    }
    return obj


def app_objects(ns: str, app: str, replicas: int = 3) -> dict[str, Obj]:
    """Everything one healthy application leaves in a namespace, keyed ``Kind/name``."""
    dep = meta("Deployment", ns, app, generation=7, annotations={k8s.REVISION: "2"}, labels={"app": app})
    dep["spec"] = {"replicas": replicas, "selector": {"matchLabels": {"app": app}}}
    dep["status"] = {"observedGeneration": 7, "replicas": replicas, "updatedReplicas": replicas,
                     "readyReplicas": replicas, "availableReplicas": replicas, "conditions": [
                         {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                         {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
    old, new = (meta("ReplicaSet", ns, f"{app}-{h}", annotations={k8s.REVISION: rev},
                     labels={"app": app, "pod-template-hash": h}, ownerReferences=owner(dep),
                     creationTimestamp=ago(age))
                for h, rev, age in (("5d8f6", "1", 86400), ("7c9b4", "2", 300)))
    objs = {f"{o['kind']}/{o['metadata']['name']}": o for o in (dep, old, new)}
    for i in range(replicas):
        objs[f"Pod/{app}-7c9b4-{i}"] = pod(ns, f"{app}-7c9b4-{i}", new, app)
    hpa = meta("HorizontalPodAutoscaler", ns, app)
    hpa["spec"] = {"minReplicas": 3, "maxReplicas": 10,
                   "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app}}
    hpa["status"] = {"currentReplicas": 3, "desiredReplicas": 3}
    cert = meta("Certificate", ns, f"{app}-tls")
    cert["status"] = {"notAfter": (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                      "message": "Certificate is up to date and has not expired"}]}
    job = meta("Job", ns, f"{app}-db-migrate")
    job["status"] = {"succeeded": 1, "completionTime": ago(320), "conditions": [{"type": "Complete", "status": "True"}]}
    ing = meta("Ingress", ns, app)
    ing["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    before = event(ns, f"{app}-old-backoff", "BackOff", f"{app}-5d8f6-0", "Back-off restarting failed container",
                   age_s=3000)  # before the rollout: ignored
    normal = event(ns, f"{app}-scaled", "ScalingReplicaSet", app, "Scaled up replica set", kind="Deployment",
                   type_="Normal", age_s=290)
    objs.update({f"{o['kind']}/{o['metadata']['name']}": o for o in (hpa, cert, job, ing, before, normal)})
    return objs


def event(ns: str, name: str, reason: str, about: str, message: str, *, kind: str = "Pod", type_: str = "Warning",
          age_s: float = 60) -> Obj:
    obj = meta("Event", ns, name, creationTimestamp=ago(age_s))
    obj.update({"type": type_, "reason": reason, "message": message, "count": 1, "lastTimestamp": ago(age_s),
                "involvedObject": {"kind": kind, "name": about, "namespace": ns}})
    return obj


def healthy(ns: str) -> dict[str, Obj]:
    objs = app_objects(ns, "api")
    # another application's pod, crash-looping: not selected by app=api, so never counted
    other = meta("ReplicaSet", ns, "other-1a2b3", labels={"app": "other", "pod-template-hash": "1a2b3"})
    objs["Pod/other-1a2b3-0"] = pod(ns, "other-1a2b3-0", other, "other", restarts=9, state={
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}})
    return objs


# --- scenarios: one namespace each ------------------------------------------------------------------------

def set_at(obj: Obj, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        obj = obj.setdefault(key, {})
    obj[leaf] = value


def condition(obj: Obj, kind: str, status: str, reason: str, message: str) -> None:
    conds = [c for c in obj["status"].get("conditions", []) if c["type"] != kind]
    obj["status"]["conditions"] = [*conds, {"type": kind, "status": status, "reason": reason, "message": message}]


def waiting(reason: str, message: str) -> Obj:
    return {"waiting": {"reason": reason, "message": message}}


def new_pod(objs: dict[str, Obj], ns: str, index: int, **kw: Any) -> None:
    rs = objs["ReplicaSet/api-7c9b4"]
    objs[f"Pod/api-7c9b4-{index}"] = pod(ns, f"api-7c9b4-{index}", rs, "api", **kw)


def unschedulable(objs: dict[str, Obj], ns: str, age_s: float) -> None:
    new_pod(objs, ns, 3, phase="Pending", age_s=age_s, state=waiting("ContainerCreating", ""))
    condition(objs["Pod/api-7c9b4-3"], "PodScheduled", "False", "Unschedulable",
              "0/3 nodes are available: 3 Insufficient cpu.")


@dataclass
class Case:
    name: str
    breaks: Callable[[dict[str, Obj], str], None]
    fails: dict[str, str] = field(default_factory=dict)  # check -> regex the whole finding must match
    config: dict[str, Any] = field(default_factory=dict)


def nothing(objs: dict[str, Obj], ns: str) -> None:
    pass


ROLLED_OUT = "expected api rolled out: latest generation observed, every replica updated, ready and available"
PODS_OK = ("expected no pod in CrashLoopBackOff, ImagePullBackOff, Error or Pending past its grace; "
           "restarts since the rollout api ≤ 1")

CASES = [
    Case("healthy", nothing),
    Case("partial", lambda o, ns: o["Deployment/api"]["status"].update(updatedReplicas=2, availableReplicas=2,
                                                                        unavailableReplicas=1),
         {"kubernetes.rollout": re.escape("kubernetes[partial]: deployment api: 2 of 3 replicas updated, 3 ready, "
                                          f"2 available, 1 unavailable, {ROLLED_OUT}")}),
    Case("generation", lambda o, ns: set_at(o["Deployment/api"], "metadata.generation", 8),
         {"kubernetes.rollout": re.escape("kubernetes[generation]: deployment api: observedGeneration 7 behind "
                                          "generation 8 (the controller has not acted on the latest spec), "
                                          f"{ROLLED_OUT}")}),
    Case("deadline", lambda o, ns: condition(o["Deployment/api"], "Progressing", "False", "ProgressDeadlineExceeded",
                                             'ReplicaSet "api-7c9b4" has timed out progressing.'),
         {"kubernetes.rollout": re.escape("kubernetes[deadline]: deployment api: progress deadline exceeded "
                                          f'(ReplicaSet "api-7c9b4" has timed out progressing.), {ROLLED_OUT}')}),
    Case("missing", nothing,
         {"kubernetes.rollout": re.escape("kubernetes[missing]: deployment worker not found in namespace missing, "
                                          + ROLLED_OUT.replace("api", "api, worker")),
          "kubernetes.pods": re.escape("kubernetes[missing]: deployment worker not found in namespace missing, "
                                       f"{PODS_OK}, worker ≤ 0")},
         {"deployments": {"api": Deployment(max_restarts=1), "worker": Deployment()}}),
    Case("crashloop", lambda o, ns: new_pod(o, ns, 1, restarts=7, state=waiting(
        "CrashLoopBackOff", "back-off 5m0s restarting failed container=app pod=api-7c9b4-1")),
         {"kubernetes.pods": re.escape(
             "kubernetes[crashloop]: deployment api: pod api-7c9b4-1 CrashLoopBackOff (container app, 7 restarts: "
             "back-off 5m0s restarting failed container=app pod=api-7c9b4-1); deployment api: 7 container "
             f"restart(s) since the rollout (api-7c9b4-1: 7), ceiling 1, {PODS_OK}")}),
    Case("imagepull", lambda o, ns: new_pod(o, ns, 2, phase="Pending", age_s=30, state=waiting(
        "ImagePullBackOff", 'Back-off pulling image "registry.example.com/api:2.0.1"')),
         {"kubernetes.pods": re.escape(
             "kubernetes[imagepull]: deployment api: pod api-7c9b4-2 ImagePullBackOff (container app, 0 restarts: "
             f'Back-off pulling image "registry.example.com/api:2.0.1"), {PODS_OK}')}),
    Case("error", lambda o, ns: new_pod(o, ns, 0, phase="Running", state={
        "terminated": {"reason": "Error", "exitCode": 3}}),
         {"kubernetes.pods": re.escape("kubernetes[error]: deployment api: pod api-7c9b4-0 Error (container app "
                                       f"exited with code 3), {PODS_OK}")}),
    Case("pending", lambda o, ns: unschedulable(o, ns, age_s=600),
         {"kubernetes.pods": r"kubernetes\[pending\]: deployment api: pod api-7c9b4-3 Pending for 6\d\d s "
                             r"\(grace 120 s\): 0/3 nodes are available: 3 Insufficient cpu\., "
          + re.escape(PODS_OK)}),
    Case("pending-within-grace", lambda o, ns: unschedulable(o, ns, age_s=10)),
    Case("restarts", lambda o, ns: o["Pod/api-7c9b4-0"]["status"]["containerStatuses"][0].update(restartCount=3),
         {"kubernetes.pods": re.escape("kubernetes[restarts]: deployment api: 3 container restart(s) since the "
                                       f"rollout (api-7c9b4-0: 3), ceiling 1, {PODS_OK}")}),
    Case("old-rs-restarts", lambda o, ns: o.update({"Pod/api-5d8f6-0": pod(
        ns, "api-5d8f6-0", o["ReplicaSet/api-5d8f6"], "api", restarts=5, age_s=80000)})),
    Case("hpa-at-max", lambda o, ns: o["HorizontalPodAutoscaler/api"]["status"].update(currentReplicas=10,
                                                                                         desiredReplicas=10),
         {"kubernetes.hpa": re.escape("kubernetes[hpa-at-max]: hpa api: pinned at maxReplicas (10 of 10), "
                                      "expected hpa api: 3–10 replicas, below max")}),
    Case("hpa-bounds", lambda o, ns: o["HorizontalPodAutoscaler/api"]["spec"].update(minReplicas=2, maxReplicas=6),
         {"kubernetes.hpa": re.escape("kubernetes[hpa-bounds]: hpa api: 2–6 replicas configured, runbook says "
                                      "3–10, expected hpa api: 3–10 replicas, below max")}),
    Case("cert-not-ready", lambda o, ns: condition(o["Certificate/api-tls"], "Ready", "False", "Failed",
                                                   'The certificate request has failed to complete'),
         {"kubernetes.certificates": re.escape(
             "kubernetes[cert-not-ready]: certificate api-tls: not Ready (Failed: The certificate request has "
             "failed to complete), expected Ready, and valid for more than 14 days")}),
    Case("cert-expiring", lambda o, ns: set_at(o["Certificate/api-tls"], "status.notAfter", (
        datetime.now(UTC) + timedelta(days=5, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")),
         {"kubernetes.certificates": r"kubernetes\[cert-expiring\]: certificate api-tls: expires in 5\.0 days "
                                     r"\(\d{4}-\d\d-\d\dT[\d:]+Z\), expected Ready, and valid for more than 14 days"}),
    Case("job-failed", lambda o, ns: o["Job/api-db-migrate"].update(status={
        "failed": 6, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                     "message": "Job has reached the specified backoff limit"}]}),
         {"kubernetes.jobs": re.escape("kubernetes[job-failed]: job api-db-migrate: failed (BackoffLimitExceeded: "
                                       "Job has reached the specified backoff limit), expected api-db-migrate "
                                       "succeeded (≥ 1 completion, not failed)")}),
    Case("ingress", lambda o, ns: o["Ingress/api"].update(status={"loadBalancer": {}}),
         {"kubernetes.ingresses": re.escape("kubernetes[ingress]: ingress api: no load balancer address, expected "
                                            "a load balancer address on api")}),
    Case("events", lambda o, ns: o.update({"Event/api-unhealthy": event(
        ns, "api-unhealthy", "Unhealthy", "api-7c9b4-0", "Readiness probe failed: HTTP probe failed with statuscode: "
        "503")}),
         {"kubernetes.events": r"kubernetes\[events\]: 1 Warning event\(s\) since the rollout at [\d-]+T[\d:]+\+00:00: "
                               + re.escape("Unhealthy on Pod/api-7c9b4-0: Readiness probe failed: HTTP probe failed "
                                           "with statuscode: 503, expected ≤ 0 Warning events since the rollout")}),
]


def config(ns: str, kubeconfig: Path, **overrides: Any) -> Kubernetes:
    settings: dict[str, Any] = {
        "namespace": ns, "kubeconfig": str(kubeconfig), "timeout_s": 5,
        "deployments": {"api": Deployment(max_restarts=1, pending_grace_s=120)},
        "hpa": {"api": Hpa(min_replicas=3, max_replicas=10)},
        "certificates": ["api-tls"], "jobs": ["api-db-migrate"], "ingresses": ["api"],
    }
    return Kubernetes(**{**settings, **overrides})


def scenario(case: Case) -> Iterable[Obj]:
    """The healthy namespace, named after the case, with the case's breakage applied."""
    objs = healthy(case.name)
    case.breaks(objs, case.name)
    return objs.values()


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(tmp_path / "kubeconfig") as emulator:
        yield emulator


@pytest.fixture
def conns() -> Iterator[Connections]:
    with Connections() as c:
        yield c


def run_all(cfg: Kubernetes, conns: Connections, name: str) -> dict[str, Result]:
    target = Target("kubernetes", name, cfg)
    return {spec.check: spec(target, conns) for spec in PROBES}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_state_fails_exactly_its_check(case: Case, emu: Emulator, conns: Connections) -> None:
    emu.put(scenario(case))
    results = run_all(config(case.name, emu.kubeconfig, **case.config), conns, case.name)
    failed = {check for check, r in results.items() if r.ok is not True}
    assert failed == set(case.fails), {c: results[c].explain() for c in failed}
    for check, pattern in case.fails.items():
        assert re.fullmatch(pattern, results[check].explain()), results[check].explain()


def test_healthy_results_carry_evidence(emu: Emulator, conns: Connections) -> None:
    emu.put(healthy("healthy").values())
    results = run_all(config("healthy", emu.kubeconfig), conns, "healthy")
    assert results["kubernetes.rollout"].observed == "deployment api: 3/3 updated, ready and available"
    assert results["kubernetes.pods"].observed == "deployment api: 3 pod(s) running, 0 restart(s) since the rollout"
    assert results["kubernetes.pods"].evidence["api"]["current_replicaset"] == "api-7c9b4"
    assert "other-1a2b3-0" not in results["kubernetes.pods"].evidence["api"]["pods"]
    assert results["kubernetes.events"].evidence["older_ignored"] == 1
    assert results["kubernetes.hpa"].evidence["api"] == {"minReplicas": 3, "maxReplicas": 10, "currentReplicas": 3,
                                                         "desiredReplicas": 3}
    # read-only, and one LIST per kind a check reads: rollout 1, pods 3, hpa/certificates/jobs/ingresses 1, events 3
    seen = emu.requests()
    assert {(r.method, r.action) for r in seen} == {(kmock.method.GET, kmock.action.LIST)}
    assert len(seen) == 11
    assert {r.headers.get("Authorization") for r in seen} == {"Bearer dummy-token"}  # the kubeconfig's credentials
    assert [r.params for r in seen if "events" in r.url.path] == [{"fieldSelector": "type=Warning"}]


def test_deployments_scale_without_more_calls(emu: Emulator, conns: Connections) -> None:
    apps = [f"app-{i:02d}" for i in range(20)]
    for app in apps:
        emu.put(app_objects("many", app).values())
    cfg = config("many", emu.kubeconfig, deployments={a: Deployment() for a in apps},
                 hpa={a: Hpa(min_replicas=3, max_replicas=10) for a in apps}, certificates=[f"{a}-tls" for a in apps],
                 jobs=[f"{a}-db-migrate" for a in apps], ingresses=apps)
    results = run_all(cfg, conns, "many")
    assert all(r.ok for r in results.values()), [r.explain() for r in results.values() if not r.ok]
    assert len(results["kubernetes.pods"].evidence) == 20
    assert len(emu.requests()) == 11


def test_resource_not_served_names_it(emu: Emulator, conns: Connections) -> None:
    """No cert-manager: a LIST of certificates answers 404, which is not "certificate not found"."""
    emu.put(o for o in healthy("plain").values() if o["kind"] != "Certificate")
    result = k8s.certificates(Target("kubernetes", "plain", config("plain", emu.kubeconfig)), conns)
    assert result.ok is False
    assert result.observed.startswith("unreachable (ApiError: /apis/cert-manager.io/v1/namespaces/plain/certificates "
                                      "not served by the API server (404 Not Found): "), result.observed


def test_one_client_per_target_reused_and_closed(emu: Emulator) -> None:
    conns = Connections()
    cfg = config("healthy", emu.kubeconfig)
    first = conns.kubernetes("kubernetes[healthy]", cfg)
    assert conns.kubernetes("kubernetes[healthy]", cfg) is first
    assert first.configuration.retries == 0
    conns.close()
    assert conns.kubernetes("kubernetes[healthy]", cfg) is not first
    conns.close()


def test_forbidden_is_a_failure_with_the_server_reason(emu: Emulator, conns: Connections) -> None:
    denied = ('deployments.apps is forbidden: User "system:serviceaccount:ci:opsproof" cannot list resource '
              '"deployments" in API group "apps" in the namespace "forbidden"')
    emu.react("forbidden", kmock.KubernetesError(status=403, reason="Forbidden", message=denied))
    result = k8s.rollout(Target("kubernetes", "forbidden", config("forbidden", emu.kubeconfig)), conns)
    assert result.ok is False
    assert result.explain() == f"kubernetes[forbidden]: unreachable (ApiError: 403 Forbidden: {denied}), {ROLLED_OUT}"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """The kernel completes the handshake; nobody ever answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_api_server_unreachable(closed_port: int, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", f"http://127.0.0.1:{closed_port}")
    cfg = config("apex", kubeconfig, timeout_s=2)
    with Connections() as conns:
        results = run_all(cfg, conns, "prod")
        # the refusal is the finding at once: no retry loop (urllib3 retries 3 times by default) before it
        assert conns.kubernetes("kubernetes[prod]", cfg).configuration.retries == 0
    for check, r in results.items():
        assert r.ok is False, check
        assert r.observed == (f"unreachable (ApiError: API server http://127.0.0.1:{closed_port}: "
                              "Failed to establish a new connection: [Errno 111] Connection refused)"), r.observed


def test_api_server_silent_times_out(silent_port: int, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "config", f"http://127.0.0.1:{silent_port}")
    with Connections() as conns:
        result = k8s.jobs(Target("kubernetes", "prod", config("apex", kubeconfig, timeout_s=0.5)), conns)
    assert result.explain() == (
        f"kubernetes[prod]: API server http://127.0.0.1:{silent_port}: timed out, no answer within 0.5 s, "
        "expected api-db-migrate succeeded (≥ 1 completion, not failed)")  # the deadline's finding, as every kind


def test_suite_as_users_run_it(emu: Emulator, tmp_path: Path) -> None:
    emu.put([*scenario(CASES[0]), *scenario(next(c for c in CASES if c.name == "crashloop"))])
    entry = {"kubeconfig": str(emu.kubeconfig), "deployments": {"api": {"max_restarts": 1}},
             "hpa": {"api": {"min_replicas": 3, "max_replicas": 10}}, "certificates": ["api-tls"],
             "jobs": ["api-db-migrate"], "ingresses": ["api"]}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"environment": "emulated", "kubernetes": {
        "healthy": {"namespace": "healthy", **entry}, "crashloop": {"namespace": "crashloop", **entry}}}))
    run = run_suite(inventory, tmp_path / "out", suite="checks/post_deploy/test_01_rollout.py")
    assert run.code == 1, run.output
    assert run.failed == {"kubernetes.pods@kubernetes[crashloop]"}, run.output
    assert len(run.records) == 14
    assert "13 passed" in run.output
    assert ("kubernetes[crashloop]: deployment api: pod api-7c9b4-1 CrashLoopBackOff (container app, 7 restarts"
            in run.output)
