"""Kubernetes workloads: `kubectl rollout status`, `kubectl get pods -l …`, `kubectl get events` since the rollout.

The checks of the listed deployments: their rollout, their pods (and the restarts of the current ReplicaSet's), and
the Warning events in the namespace since the newest rollout. How the namespace is read: :mod:`.k8s_api`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opsproof.inventory import Kubernetes
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import (
    Findings,
    Namespace,
    Obj,
    at,
    condition,
    current_replicaset,
    generation_behind,
    owned_by,
    selects,
    timestamp,
)
from opsproof.result import Severity

BROKEN_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                  "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
EVENTS_SHOWN = 5


# --- kubectl rollout status -------------------------------------------------------------------------------

def _rolled_out(cfg: Kubernetes) -> str:
    return (f"{', '.join(cfg.deployments)} rolled out: latest generation observed, "
            "every replica updated, ready and available")


@probe("kubernetes.rollout", "kubernetes", Severity.CRITICAL, "kubectl rollout status deployment/NAME",
       applies=lambda cfg: bool(cfg.deployments), expected=_rolled_out)
def rollout(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl rollout status deployment/NAME` — each listed deployment has finished rolling out."""
    f = Findings(Namespace(target, conns))
    for name, dep in f.listed("deployment", target.config.deployments):
        want = target.config.deployments[name]
        desired = at(dep, "spec", "replicas", default=1)
        generation = at(dep, "metadata", "generation", default=0)
        seen = at(dep, "status", "observedGeneration", default=0)
        counts = {k: at(dep, "status", f"{k}Replicas", default=0)
                  for k in ("updated", "ready", "available", "unavailable")}
        total = at(dep, "status", "replicas", default=0)
        progressing = condition(dep, "Progressing")
        f.evidence[name] = {"replicas": desired, "generation": generation, "observedGeneration": seen,
                            "status_replicas": total, **counts, "progressing": progressing.get("reason")}
        found = generation_behind(dep)
        if (counts["updated"], counts["ready"], counts["available"]) != (desired, desired, desired):
            found.append(f"{counts['updated']} of {desired} replicas updated, {counts['ready']} ready, "
                         f"{counts['available']} available"
                         + (f", {counts['unavailable']} unavailable" if counts["unavailable"] else ""))
        elif total > counts["updated"]:
            found.append(f"{total - counts['updated']} old replica(s) pending termination")
        if want.min_ready is not None and counts["ready"] < want.min_ready:
            found.append(f"{counts['ready']} ready, below min_ready {want.min_ready}")
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            found.append(f"progress deadline exceeded ({progressing.get('message', '')})")
        f.judge(f"deployment {name}", found, f"deployment {name}: {desired}/{desired} updated, ready and available")
    return f.outcome()


# --- kubectl get pods -l … -------------------------------------------------------------------------------

def _pod_problem(pod: Obj, grace_s: float, now: datetime) -> str | None:
    """Why a pod is broken (CrashLoopBackOff, ImagePullBackOff, Error, Failed, Pending too long), or None."""
    status = pod.get("status") or {}
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting, ended = at(c, "state", "waiting", default={}), at(c, "state", "terminated", default={})
        if waiting.get("reason") in BROKEN_WAITING:
            detail = waiting.get("message") or c.get("image", "")
            return f"{waiting['reason']} (container {c.get('name')}, {c.get('restartCount', 0)} restarts: {detail})"
        if ended.get("reason") == "Error":
            return f"Error (container {c.get('name')} exited with code {ended.get('exitCode')})"
    phase = status.get("phase")
    if phase == "Failed":
        return f"Failed ({status.get('reason', '')}: {status.get('message', '')})"
    created = timestamp(at(pod, "metadata", "creationTimestamp"))
    if phase == "Pending" and created is not None and (now - created).total_seconds() > grace_s:
        why = condition(pod, "PodScheduled").get("message")
        return (f"Pending for {(now - created).total_seconds():.0f} s (grace {grace_s:g} s)"
                + (f": {why}" if why else ""))
    return None


def _restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount", 0)) for c in at(pod, "status", "containerStatuses", default=[]))


def _pods_expected(cfg: Kubernetes) -> str:
    ceilings = ", ".join(f"{n} ≤ {d.max_restarts}" for n, d in cfg.deployments.items())
    return ("no pod in CrashLoopBackOff, ImagePullBackOff, Error or Pending past its grace; "
            f"restarts since the rollout {ceilings}")


@probe("kubernetes.pods", "kubernetes", Severity.CRITICAL, "kubectl get pods -l SELECTOR",
       applies=lambda cfg: bool(cfg.deployments), expected=_pods_expected)
def pods(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get pods -l app=NAME` — the pods of each listed deployment run, and have not restarted since the
    rollout (restarts of pods of the current ReplicaSet) more than ``max_restarts`` times."""
    f = Findings(Namespace(target, conns))
    now = datetime.now(UTC)
    deployments = f.listed("deployment", target.config.deployments)
    replicasets, everything = f.ns.list("replicaset"), f.ns.list("pod")
    for name, dep in deployments:
        want = target.config.deployments[name]
        selector = at(dep, "spec", "selector", default={})
        selected = [p for p in everything if selects(selector, at(p, "metadata", "labels", default={}))]
        current = current_replicaset(dep, replicasets)
        seen: dict[str, Any] = {}
        restarted: dict[str, int] = {}
        for pod in selected:
            pod_name = at(pod, "metadata", "name")
            is_current = current is None or owned_by(pod, current)  # no known current RS: count every pod
            problem = _pod_problem(pod, want.pending_grace_s, now)
            seen[pod_name] = {"phase": at(pod, "status", "phase"), "current_replicaset": is_current,
                              "restarts": _restarts(pod), "problem": problem}
            if problem:
                f.problems.append(f"deployment {name}: pod {pod_name} {problem}")
            if is_current and _restarts(pod):
                restarted[pod_name] = _restarts(pod)
        total = sum(restarted.values())
        if total > want.max_restarts:
            f.problems.append(f"deployment {name}: {total} container restart(s) since the rollout ("
                            + ", ".join(f"{p}: {n}" for p, n in restarted.items())
                            + f"), ceiling {want.max_restarts}")
        f.evidence[name] = {"selector": selector, "current_replicaset": at(current or {}, "metadata", "name"),
                            "restarts_since_rollout": total, "pods": seen}
        f.fine.append(f"deployment {name}: {len(selected)} pod(s) running, {total} restart(s) since the rollout")
    return f.outcome()


# --- kubectl get events --field-selector type=Warning ----------------------------------------------------

def _event_time(event: Obj) -> datetime | None:
    return timestamp(event.get("lastTimestamp") or event.get("eventTime") or at(event, "series", "lastObservedTime")
                     or at(event, "metadata", "creationTimestamp"))


def _events_expected(cfg: Kubernetes) -> str:
    return f"≤ {cfg.max_warning_events} Warning events since the rollout"


@probe("kubernetes.events", "kubernetes", Severity.MEDIUM, "kubectl get events --field-selector type=Warning",
       expected=_events_expected)
def events(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get events --field-selector type=Warning` — few Warning events since the rollout (the newest
    current-ReplicaSet creation among the listed deployments; every event when none is listed)."""
    ns = Namespace(target, conns)
    since: datetime | None = None
    if target.config.deployments:
        deployments, replicasets = ns.by_name("deployment"), ns.list("replicaset")
        listed = [deployments[name] for name in target.config.deployments if name in deployments]
        current = [rs for rs in (current_replicaset(dep, replicasets) for dep in listed) if rs is not None]
        since = max((t for rs in current if (t := timestamp(at(rs, "metadata", "creationTimestamp")))), default=None)
    warnings = [e for e in ns.list("event", fieldSelector="type=Warning") if e.get("type") == "Warning"]
    recent = [e for e in warnings if since is None or (_event_time(e) or since) >= since]
    recent.sort(key=lambda e: _event_time(e) or datetime.min.replace(tzinfo=UTC), reverse=True)
    window = "since the rollout at " + since.isoformat() if since else "in the namespace"
    shown = [f"{e.get('reason')} on {at(e, 'involvedObject', 'kind')}/{at(e, 'involvedObject', 'name')}: "
             f"{str(e.get('message', '')).strip()[:120]}" for e in recent[:EVENTS_SHOWN]]
    evidence = {"since": since.isoformat() if since else None, "warnings": len(recent),
                "older_ignored": len(warnings) - len(recent), "events": shown}
    if len(recent) <= target.config.max_warning_events:
        return Outcome(True, f"{len(recent)} Warning event(s) {window}", evidence)
    more = f"; … {len(recent) - EVENTS_SHOWN} more" if len(recent) > EVENTS_SHOWN else ""
    return Outcome(False, f"{len(recent)} Warning event(s) {window}: " + "; ".join(shown) + more, evidence)
