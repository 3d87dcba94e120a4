"""Workloads beyond Deployments: `kubectl rollout status sts/NAME` and `ds/NAME`, bare Pods, and the resources every
container declares. Each check reads one LIST per kind it needs. How the namespace is read: :mod:`.k8s_api`."""

from __future__ import annotations

from datetime import UTC, datetime

from opsproof.inventory import Kubernetes, Resources, quantity
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import Findings, Namespace, Obj, at, condition, generation_behind, selects
from opsproof.probes.k8s_workloads import _pod_problem, _restarts
from opsproof.result import Severity

# --- kubectl rollout status statefulset/NAME -------------------------------------------------------------

def _sts_expected(cfg: Kubernetes) -> str:
    return (f"{', '.join(cfg.statefulsets)} rolled out: latest generation observed, every replica updated and "
            "ready, currentRevision = updateRevision")


@probe("kubernetes.statefulsets", "kubernetes", Severity.CRITICAL, "kubectl rollout status statefulset/NAME",
       applies=lambda cfg: bool(cfg.statefulsets), expected=_sts_expected)
def statefulsets(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl rollout status statefulset/postgres` — each listed StatefulSet has finished its rolling update."""
    f = Findings(Namespace(target, conns))
    for name, sts in f.listed("statefulset", target.config.statefulsets):
        want = target.config.statefulsets[name]
        desired = at(sts, "spec", "replicas", default=1)
        partition = at(sts, "spec", "updateStrategy", "rollingUpdate", "partition", default=0)
        status = sts.get("status") or {}
        updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
        current, update = status.get("currentRevision"), status.get("updateRevision")
        f.evidence[name] = {"replicas": desired, "partition": partition, "updatedReplicas": updated,
                            "readyReplicas": ready, "currentRevision": current, "updateRevision": update,
                            "generation": at(sts, "metadata", "generation"),
                            "observedGeneration": status.get("observedGeneration")}
        found = generation_behind(sts)
        if updated < desired - partition or ready < desired:
            found.append(f"{updated} of {desired} replicas updated, {ready} ready")
        if partition == 0 and current != update:  # kubectl waits for this, unless a partition holds pods back
            found.append(f"currentRevision {current} ≠ updateRevision {update} (the update has not finished)")
        if want.min_ready is not None and ready < want.min_ready:
            found.append(f"{ready} ready, below min_ready {want.min_ready}")
        f.judge(f"statefulset {name}", found, f"statefulset {name}: {ready}/{desired} ready at revision {update}")
    return f.outcome()


# --- kubectl rollout status daemonset/NAME ---------------------------------------------------------------

def _ds_expected(cfg: Kubernetes) -> str:
    return (f"{', '.join(cfg.daemonsets)} rolled out: latest generation observed, on every scheduled node "
            "updated, ready and none unavailable")


@probe("kubernetes.daemonsets", "kubernetes", Severity.HIGH, "kubectl rollout status daemonset/NAME",
       applies=lambda cfg: bool(cfg.daemonsets), expected=_ds_expected)
def daemonsets(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl rollout status daemonset/node-exporter` — each listed DaemonSet runs, updated, on every node."""
    f = Findings(Namespace(target, conns))
    for name, ds in f.listed("daemonset", target.config.daemonsets):
        want = target.config.daemonsets[name]
        s = ds.get("status") or {}
        desired, ready = s.get("desiredNumberScheduled", 0), s.get("numberReady", 0)
        updated, unavailable = s.get("updatedNumberScheduled", 0), s.get("numberUnavailable", 0)
        f.evidence[name] = {k: s.get(k) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                                  "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
                                                  "numberMisscheduled", "observedGeneration")}
        found = generation_behind(ds)
        if (updated, ready, unavailable) != (desired, desired, 0):
            found.append(f"{updated} of {desired} scheduled pods updated, {ready} ready, {unavailable} unavailable")
        if want.min_ready is not None and ready < want.min_ready:
            found.append(f"{ready} ready, below min_ready {want.min_ready}")
        f.judge(f"daemonset {name}", found, f"daemonset {name}: {ready}/{desired} updated and ready")
    return f.outcome()


# --- kubectl get pod NAME / -l SELECTOR (no controller) --------------------------------------------------

def _bare_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"pod{'s ' + _labels(p.selector) if p.selector else ' ' + n}: "
                     + (f"≥ {p.min_ready} Ready" if p.selector else "Ready") + f", restarts ≤ {p.max_restarts}"
                     for n, p in cfg.bare_pods.items())


def _labels(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


@probe("kubernetes.bare_pods", "kubernetes", Severity.HIGH, "kubectl get pod NAME",
       applies=lambda cfg: bool(cfg.bare_pods), expected=_bare_expected)
def bare_pods(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get pod redis-0` / `kubectl get pods -l app=redis` — pods named, or selected, are Ready and have not
    restarted more than ``max_restarts`` times each."""
    f = Findings(Namespace(target, conns))
    now = datetime.now(UTC)
    everything = f.ns.list("pod")
    names = {at(p, "metadata", "name"): p for p in everything}
    for key, want in target.config.bare_pods.items():
        if want.selector:
            label = f"pods {_labels(want.selector)}"
            chosen = [p for p in everything
                      if selects({"matchLabels": want.selector}, at(p, "metadata", "labels", default={}))]
        else:
            label, chosen = f"pod {key}", [names[key]] if key in names else []
        found: list[str] = []
        seen: dict[str, object] = {}
        ready = 0
        for pod in chosen:
            pod_name, is_ready = at(pod, "metadata", "name"), condition(pod, "Ready").get("status") == "True"
            ready += is_ready
            phase = at(pod, "status", "phase")
            problem = _pod_problem(pod, 0, now) or (None if is_ready else f"not Ready (phase {phase})")
            seen[pod_name] = {"ready": is_ready, "restarts": _restarts(pod), "problem": problem}
            if problem:
                found.append(f"{pod_name} {problem}" if want.selector else problem)
            if _restarts(pod) > want.max_restarts:
                found.append(f"{pod_name + ' ' if want.selector else ''}{_restarts(pod)} container restart(s), "
                             f"ceiling {want.max_restarts}")
        f.evidence[key] = {"selector": want.selector, "pods": seen}
        if not chosen:
            found.append(f"no pod matches in namespace {f.ns.name}" if want.selector
                         else f"not found in namespace {f.ns.name}")
        elif want.selector and ready < want.min_ready:
            found.append(f"{ready} of {len(chosen)} Ready, below min_ready {want.min_ready}")
        f.judge(label, found, f"{label}: {ready} Ready")
    return f.outcome()


# --- resources.requests / resources.limits of every container -------------------------------------------

def _resources_expected(cfg: Kubernetes) -> str:
    bounds = [f"{ref}: {b}" for ref, r in cfg.resources.items() if (b := ", ".join(_bounds(r)))]
    return ("every container of " + ", ".join(cfg.resources) + " declares cpu and memory requests and limits"
            + (f" ({'; '.join(bounds)})" if bounds else ""))


def _bounds(r: Resources) -> list[str]:
    return [text for value, text in ((r.max_cpu_limit, f"limits.cpu ≤ {r.max_cpu_limit}"),
                                     (r.max_memory_limit, f"limits.memory ≤ {r.max_memory_limit}"),
                                     (r.min_cpu_request, f"requests.cpu ≥ {r.min_cpu_request}"),
                                     (r.min_memory_request, f"requests.memory ≥ {r.min_memory_request}")) if value]


def _container_problems(container: Obj, want: Resources) -> list[str]:
    declared = container.get("resources") or {}
    found = [f"no {part}.{res}" for part in ("requests", "limits") for res in ("cpu", "memory")
             if at(declared, part, res) is None]
    for part, res, bound, above in (("limits", "cpu", want.max_cpu_limit, True),
                                    ("limits", "memory", want.max_memory_limit, True),
                                    ("requests", "cpu", want.min_cpu_request, False),
                                    ("requests", "memory", want.min_memory_request, False)):
        value = at(declared, part, res)
        if bound is None or value is None:
            continue
        if (quantity(value) > quantity(bound)) if above else (quantity(value) < quantity(bound)):
            found.append(f"{part}.{res} {value} {'above' if above else 'below'} {bound}")
    return found


@probe("kubernetes.resources", "kubernetes", Severity.HIGH, "kubectl get deployment NAME -o jsonpath='{..resources}'",
       applies=lambda cfg: bool(cfg.resources), expected=_resources_expected)
def resources(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get deploy api -o jsonpath='{..resources}'` — every container (init containers too) of each listed
    workload declares cpu and memory requests and limits, within the ceilings and floors the inventory states."""
    f = Findings(Namespace(target, conns))
    refs = target.config.resources
    by_kind: dict[str, list[str]] = {}
    for ref in refs:
        kind, _, name = ref.partition("/")
        by_kind.setdefault(kind, []).append(name)
    for kind, names in by_kind.items():
        for name, obj in f.listed(kind, names):
            want = refs[f"{kind}/{name}"]
            spec = at(obj, "spec", "template", "spec", default={})
            containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
            f.evidence[f"{kind}/{name}"] = {c.get("name"): c.get("resources") or {} for c in containers}
            found = [f"container {c.get('name')}: " + ", ".join(p)
                     for c in containers if (p := _container_problems(c, want))]
            f.judge(f"{kind} {name}", found, f"{kind} {name}: {len(containers)} container(s) declare requests and "
                                             "limits")
    return f.outcome()
