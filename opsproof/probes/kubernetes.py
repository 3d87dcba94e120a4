"""Kubernetes: the `kubectl` lines of a post-deploy runbook (`rollout status`, `get pods`, `get hpa`, …).

Read-only: every call is a LIST (an HTTP GET) in the entry's namespace, what `kubectl get KIND -o json` does,
through one API client per target and bounded by ``timeout_s``. A check makes one call per kind it reads, however
many objects the inventory names (the pods of 20 deployments: 3 calls, not 60), and picks objects here: by name,
by the deployment's label selector, by owner. Responses stay plain JSON, not model classes: field names match the
runbook, and large lists are not converted object by object. The client is imported where used, so a run without
Kubernetes checks does not pay for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# `kubernetes` imports `requests`, whose import makes urllib3 warn that PySocks is missing, a warning requests then
# silences with a filter of its own. Imported here, while only one thread runs: imported first in a probe thread, a
# pytest warnings context the main thread enters meanwhile can put `error` back in front of that filter, and the
# client import fails (flakily, under filterwarnings = error). ~50 ms; the client itself is imported where used.
import requests  # noqa: F401

from opsproof.inventory import Kubernetes
from opsproof.probes.base import Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Result, Severity

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
BROKEN_WAITING = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                  "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
EVENTS_SHOWN = 5


class ApiError(Exception):
    """The API server refused the call or did not answer; the message is the reason, on one line."""


PATHS = {  # kind: its LIST path, the one `kubectl get KIND -v6` shows
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments",
    "replicaset": "/apis/apps/v1/namespaces/{namespace}/replicasets",
    "pod": "/api/v1/namespaces/{namespace}/pods",
    "event": "/api/v1/namespaces/{namespace}/events",
    "hpa": "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
    "certificate": "/apis/cert-manager.io/v1/namespaces/{namespace}/certificates",
    "job": "/apis/batch/v1/namespaces/{namespace}/jobs",
    "ingress": "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
}


class Namespace:
    """LIST-only access to the entry's namespace; every call carries ``_request_timeout=timeout_s``.

    Requests go through the client's ``ApiClient`` (kubeconfig auth, TLS, token refresh) with the paths above,
    rather than its generated ``AppsV1Api``-style classes, whose import and first calls cost about a second.
    """

    def __init__(self, target: Target[Kubernetes], conns: Connections) -> None:
        self.api = conns.kubernetes(target.id, target.config)
        self.name = target.config.namespace
        self.timeout = target.config.timeout_s

    def list(self, kind: str, **query: str) -> list[Obj]:
        """Every object of a kind in the namespace (one GET)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, NewConnectionError
        from urllib3.exceptions import TimeoutError as Timeout

        host = self.api.configuration.host
        request = self.api.param_serialize("GET", PATHS[kind], path_params={"namespace": self.name},
                                           query_params=list(query.items()), auth_settings=["BearerToken"],
                                           header_params={"Accept": "application/json"})
        try:
            response = self.api.call_api(*request, _request_timeout=self.timeout).response
            try:
                status, reason, body = response.status, response.reason, response.data
            finally:
                response.release_conn()
        except ApiException as e:  # the client's wrapping of TLS errors
            raise ApiError(f"API server {host}: {str(e.reason).splitlines()[-1]}") from None
        except HTTPError as e:
            cause = getattr(e, "reason", None) or e
            timed_out = isinstance(cause, Timeout) and not isinstance(cause, NewConnectionError)  # a subclass, oddly
            what = (f"timed out, no answer within {self.timeout:g} s" if timed_out
                    else str(cause).rpartition("): ")[2] or str(cause))
            raise ApiError(f"API server {host}: {what}") from None
        if status == 404:  # a LIST answers 404 only for a resource the server does not serve (a missing CRD)
            path = PATHS[kind].format(namespace=self.name)
            raise ApiError(f"{path} not served by the API server (404 {reason}): {_message(body)}")
        if not 200 <= status < 300:
            raise ApiError(f"{status} {reason}: {_message(body)}")
        items: list[Obj] = json.loads(body).get("items") or []
        return items

    def by_name(self, kind: str) -> dict[str, Obj]:
        return {_at(obj, "metadata", "name"): obj for obj in self.list(kind)}


def _message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, else its first line."""
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return (str(body or "").strip().splitlines() or ["no message"])[0][:200]


def _at(obj: Obj, *path: str, default: Any = None) -> Any:
    """``_at(dep, "status", "readyReplicas", default=0)``: a nested field, or the default when absent."""
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return default
        obj = obj[key]
    return obj


def _condition(obj: Obj, kind: str) -> Obj:
    return next((c for c in _at(obj, "status", "conditions", default=[]) if c.get("type") == kind), {})


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _owned_by(obj: Obj, owner: Obj) -> bool:
    uid = _at(owner, "metadata", "uid")
    return any(ref.get("uid") == uid for ref in _at(obj, "metadata", "ownerReferences", default=[])) if uid else False


def _result(target: Target[Kubernetes], check: str, problems: list[str], fine: list[str], expected: str,
            evidence: dict[str, Any], start: float) -> Result:
    return Result(target.id, check, not problems, "; ".join(problems or fine), expected, evidence,
                  time.perf_counter() - start)


@dataclass
class Findings:
    """What a check found, object by object: problems, what is fine, and evidence per object."""

    ns: Namespace
    problems: list[str] = field(default_factory=list)
    fine: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def listed(self, kind: str, names: Iterable[str]) -> Iterator[tuple[str, Obj]]:
        """The listed objects of a kind that exist (one LIST); each missing one is recorded as a problem."""
        found = self.ns.by_name(kind)
        for name in names:
            obj = found.get(name)
            if obj is None:
                self.problems.append(_missing(kind, name, self.ns))
                self.evidence[name] = {"found": False}
            else:
                yield name, obj

    def judge(self, label: str, found: list[str], fine: str) -> None:
        """Record one object's verdict: its problems (``label: a, b``) or what is fine about it."""
        if found:
            self.problems.append(f"{label}: " + ", ".join(found))
        else:
            self.fine.append(fine)

    def result(self, target: Target[Kubernetes], check: str, expected: str, start: float) -> Result:
        return _result(target, check, self.problems, self.fine, expected, self.evidence, start)


def _current_replicaset(dep: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet of the deployment's current revision: owned by it, with the same revision annotation."""
    revision = _at(dep, "metadata", "annotations", REVISION)
    return next((rs for rs in replicasets if revision is not None and _owned_by(rs, dep)
                 and _at(rs, "metadata", "annotations", REVISION) == revision), None)


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) applied as the API server applies it."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, values = expr.get("key", ""), expr.get("values") or []
        matches = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                   "Exists": key in labels, "DoesNotExist": key not in labels}
        if not matches.get(expr.get("operator", ""), False):
            return False
    return True


def _missing(kind: str, name: str, ns: Namespace) -> str:
    return f"{kind} {name} not found in namespace {ns.name}"


# --- kubectl rollout status -------------------------------------------------------------------------------

def _rolled_out(cfg: Kubernetes) -> str:
    return (f"{', '.join(cfg.deployments)} rolled out: latest generation observed, "
            "every replica updated, ready and available")


@probe("kubernetes.rollout", "kubernetes", Severity.CRITICAL, "kubectl rollout status deployment/NAME",
       applies=lambda cfg: bool(cfg.deployments), expected=_rolled_out)
def rollout(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl rollout status deployment/NAME` — each listed deployment has finished rolling out."""
    start = time.perf_counter()
    ns = Namespace(target, conns)
    problems: list[str] = []
    fine: list[str] = []
    evidence: dict[str, Any] = {}
    deployments = ns.by_name("deployment")
    for name, want in target.config.deployments.items():
        dep = deployments.get(name)
        if dep is None:
            problems.append(_missing("deployment", name, ns))
            evidence[name] = {"found": False}
            continue
        desired = _at(dep, "spec", "replicas", default=1)
        generation = _at(dep, "metadata", "generation", default=0)
        seen = _at(dep, "status", "observedGeneration", default=0)
        counts = {k: _at(dep, "status", f"{k}Replicas", default=0)
                  for k in ("updated", "ready", "available", "unavailable")}
        total = _at(dep, "status", "replicas", default=0)
        progressing = _condition(dep, "Progressing")
        evidence[name] = {"replicas": desired, "generation": generation, "observedGeneration": seen,
                          "status_replicas": total, **counts, "progressing": progressing.get("reason")}
        found: list[str] = []
        if seen < generation:
            found.append(f"observedGeneration {seen} behind generation {generation} "
                         "(the controller has not acted on the latest spec)")
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
        if found:
            problems.append(f"deployment {name}: " + ", ".join(found))
        else:
            fine.append(f"deployment {name}: {desired}/{desired} updated, ready and available")
    return _result(target, "kubernetes.rollout", problems, fine, _rolled_out(target.config), evidence, start)


# --- kubectl get pods -l … -------------------------------------------------------------------------------

def _pod_problem(pod: Obj, grace_s: float, now: datetime) -> str | None:
    """Why a pod is broken (CrashLoopBackOff, ImagePullBackOff, Error, Failed, Pending too long), or None."""
    status = pod.get("status") or {}
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting, ended = _at(c, "state", "waiting", default={}), _at(c, "state", "terminated", default={})
        if waiting.get("reason") in BROKEN_WAITING:
            detail = waiting.get("message") or c.get("image", "")
            return f"{waiting['reason']} (container {c.get('name')}, {c.get('restartCount', 0)} restarts: {detail})"
        if ended.get("reason") == "Error":
            return f"Error (container {c.get('name')} exited with code {ended.get('exitCode')})"
    phase = status.get("phase")
    if phase == "Failed":
        return f"Failed ({status.get('reason', '')}: {status.get('message', '')})"
    created = _time(_at(pod, "metadata", "creationTimestamp"))
    if phase == "Pending" and created is not None and (now - created).total_seconds() > grace_s:
        why = _condition(pod, "PodScheduled").get("message")
        return (f"Pending for {(now - created).total_seconds():.0f} s (grace {grace_s:g} s)"
                + (f": {why}" if why else ""))
    return None


def _restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount", 0)) for c in _at(pod, "status", "containerStatuses", default=[]))


def _pods_expected(cfg: Kubernetes) -> str:
    ceilings = ", ".join(f"{n} ≤ {d.max_restarts}" for n, d in cfg.deployments.items())
    return ("no pod in CrashLoopBackOff, ImagePullBackOff, Error or Pending past its grace; "
            f"restarts since the rollout {ceilings}")


@probe("kubernetes.pods", "kubernetes", Severity.CRITICAL, "kubectl get pods -l SELECTOR",
       applies=lambda cfg: bool(cfg.deployments), expected=_pods_expected)
def pods(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl get pods -l app=NAME` — the pods of each listed deployment run, and have not restarted since the
    rollout (restarts of pods of the current ReplicaSet) more than ``max_restarts`` times."""
    start = time.perf_counter()
    ns = Namespace(target, conns)
    now = datetime.now(UTC)
    problems: list[str] = []
    fine: list[str] = []
    evidence: dict[str, Any] = {}
    deployments, replicasets, everything = ns.by_name("deployment"), ns.list("replicaset"), ns.list("pod")
    for name, want in target.config.deployments.items():
        dep = deployments.get(name)
        if dep is None:
            problems.append(_missing("deployment", name, ns))
            evidence[name] = {"found": False}
            continue
        selector = _at(dep, "spec", "selector", default={})
        selected = [p for p in everything if _selects(selector, _at(p, "metadata", "labels", default={}))]
        current = _current_replicaset(dep, replicasets)
        seen: dict[str, Any] = {}
        restarted: dict[str, int] = {}
        for pod in selected:
            pod_name = _at(pod, "metadata", "name")
            is_current = current is None or _owned_by(pod, current)  # no known current RS: count every pod
            problem = _pod_problem(pod, want.pending_grace_s, now)
            seen[pod_name] = {"phase": _at(pod, "status", "phase"), "current_replicaset": is_current,
                              "restarts": _restarts(pod), "problem": problem}
            if problem:
                problems.append(f"deployment {name}: pod {pod_name} {problem}")
            if is_current and _restarts(pod):
                restarted[pod_name] = _restarts(pod)
        total = sum(restarted.values())
        if total > want.max_restarts:
            problems.append(f"deployment {name}: {total} container restart(s) since the rollout ("
                            + ", ".join(f"{p}: {n}" for p, n in restarted.items())
                            + f"), ceiling {want.max_restarts}")
        evidence[name] = {"selector": selector, "current_replicaset": _at(current or {}, "metadata", "name"),
                          "restarts_since_rollout": total, "pods": seen}
        fine.append(f"deployment {name}: {len(selected)} pod(s) running, {total} restart(s) since the rollout")
    return _result(target, "kubernetes.pods", problems, fine, _pods_expected(target.config), evidence, start)


# --- kubectl get hpa -------------------------------------------------------------------------------------

def _hpa_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"hpa {n}: {h.min_replicas}–{h.max_replicas} replicas"
                     + ("" if h.allow_at_max else ", below max") for n, h in cfg.hpa.items())


@probe("kubernetes.hpa", "kubernetes", Severity.HIGH, "kubectl get hpa",
       applies=lambda cfg: bool(cfg.hpa), expected=_hpa_expected)
def hpa(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl get hpa` — each listed autoscaler (autoscaling/v2) has the runbook's min/max and room to scale."""
    start = time.perf_counter()
    f = Findings(Namespace(target, conns))
    for name, obj in f.listed("hpa", target.config.hpa):
        want = target.config.hpa[name]
        low, high = _at(obj, "spec", "minReplicas", default=1), _at(obj, "spec", "maxReplicas", default=0)
        current = _at(obj, "status", "currentReplicas", default=0)
        f.evidence[name] = {"minReplicas": low, "maxReplicas": high, "currentReplicas": current,
                            "desiredReplicas": _at(obj, "status", "desiredReplicas")}
        found: list[str] = []
        if (low, high) != (want.min_replicas, want.max_replicas):
            found.append(f"{low}–{high} replicas configured, runbook says {want.min_replicas}–{want.max_replicas}")
        if not low <= current <= high:
            found.append(f"{current} current replicas, outside {low}–{high}")
        elif current >= high and not want.allow_at_max:
            found.append(f"pinned at maxReplicas ({current} of {high})")
        f.judge(f"hpa {name}", found, f"hpa {name}: {current} replicas within {low}–{high}")
    return f.result(target, "kubernetes.hpa", _hpa_expected(target.config), start)


# --- kubectl get certificate -----------------------------------------------------------------------------

def _certs_expected(cfg: Kubernetes) -> str:
    return f"Ready, and valid for more than {cfg.certificate_min_days} days"


@probe("kubernetes.certificates", "kubernetes", Severity.HIGH, "kubectl get certificate",
       applies=lambda cfg: bool(cfg.certificates), expected=_certs_expected)
def certificates(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl get certificate` — each listed cert-manager Certificate is Ready and not about to expire."""
    start = time.perf_counter()
    f = Findings(Namespace(target, conns))
    now = datetime.now(UTC)
    min_days = target.config.certificate_min_days
    for name, cert in f.listed("certificate", target.config.certificates):
        ready, not_after = _condition(cert, "Ready"), _at(cert, "status", "notAfter")
        end = _time(not_after)
        days = None if end is None else (end - now).total_seconds() / 86400
        f.evidence[name] = {"ready": ready.get("status"), "reason": ready.get("reason"), "notAfter": not_after,
                            "days_left": None if days is None else round(days, 1)}
        found: list[str] = []
        if ready.get("status") != "True":
            found.append(f"not Ready ({ready.get('reason', 'no Ready condition')}: {ready.get('message', '')})")
        if days is None:
            found.append("no status.notAfter")
        elif days <= min_days:
            found.append(f"expires in {days:.1f} days ({not_after})")
        f.judge(f"certificate {name}", found, f"certificate {name}: Ready, {days or 0:.0f} days left")
    return f.result(target, "kubernetes.certificates", _certs_expected(target.config), start)


# --- kubectl get job -------------------------------------------------------------------------------------

def _jobs_expected(cfg: Kubernetes) -> str:
    return f"{', '.join(cfg.jobs)} succeeded (≥ 1 completion, not failed)"


@probe("kubernetes.jobs", "kubernetes", Severity.HIGH, "kubectl get job NAME",
       applies=lambda cfg: bool(cfg.jobs), expected=_jobs_expected)
def jobs(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl get job db-migrate` — each listed Job (a migration, say) has succeeded and has not failed."""
    start = time.perf_counter()
    f = Findings(Namespace(target, conns))
    for name, job in f.listed("job", target.config.jobs):
        status, failed = job.get("status") or {}, _condition(job, "Failed")
        f.evidence[name] = {k: status.get(k) for k in ("succeeded", "failed", "active", "completionTime")}
        found: list[str] = []
        if failed.get("status") == "True":
            found.append(f"failed ({failed.get('reason', '')}: {failed.get('message', '')})")
        elif status.get("succeeded", 0) < 1:
            found.append(f"not complete ({status.get('active', 0)} active, {status.get('failed', 0)} failed pod(s))")
        f.judge(f"job {name}", found, f"job {name}: complete ({status.get('completionTime')})")
    return f.result(target, "kubernetes.jobs", _jobs_expected(target.config), start)


# --- kubectl get ingress ---------------------------------------------------------------------------------

def _ingresses_expected(cfg: Kubernetes) -> str:
    return f"a load balancer address on {', '.join(cfg.ingresses)}"


@probe("kubernetes.ingresses", "kubernetes", Severity.MEDIUM, "kubectl get ingress",
       applies=lambda cfg: bool(cfg.ingresses), expected=_ingresses_expected)
def ingresses(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl get ingress` — each listed Ingress has been given a load balancer address."""
    start = time.perf_counter()
    f = Findings(Namespace(target, conns))
    for name, ing in f.listed("ingress", target.config.ingresses):
        entries = _at(ing, "status", "loadBalancer", "ingress", default=[])
        addresses = [a.get("ip") or a.get("hostname") for a in entries if a.get("ip") or a.get("hostname")]
        f.evidence[name] = {"addresses": addresses}
        f.judge(f"ingress {name}", [] if addresses else ["no load balancer address"],
                f"ingress {name}: {', '.join(addresses)}")
    return f.result(target, "kubernetes.ingresses", _ingresses_expected(target.config), start)


# --- kubectl get events --field-selector type=Warning ----------------------------------------------------

def _event_time(event: Obj) -> datetime | None:
    return _time(event.get("lastTimestamp") or event.get("eventTime") or _at(event, "series", "lastObservedTime")
                 or _at(event, "metadata", "creationTimestamp"))


def _events_expected(cfg: Kubernetes) -> str:
    return f"≤ {cfg.max_warning_events} Warning events since the rollout"


@probe("kubernetes.events", "kubernetes", Severity.MEDIUM, "kubectl get events --field-selector type=Warning",
       expected=_events_expected)
def events(target: Target[Kubernetes], conns: Connections) -> Result:
    """`kubectl get events --field-selector type=Warning` — few Warning events since the rollout (the newest
    current-ReplicaSet creation among the listed deployments; every event when none is listed)."""
    start = time.perf_counter()
    ns = Namespace(target, conns)
    since: datetime | None = None
    if target.config.deployments:
        deployments, replicasets = ns.by_name("deployment"), ns.list("replicaset")
        listed = [deployments[name] for name in target.config.deployments if name in deployments]
        current = [rs for rs in (_current_replicaset(dep, replicasets) for dep in listed) if rs is not None]
        since = max((t for rs in current if (t := _time(_at(rs, "metadata", "creationTimestamp")))), default=None)
    warnings = [e for e in ns.list("event", fieldSelector="type=Warning") if e.get("type") == "Warning"]
    recent = [e for e in warnings if since is None or (_event_time(e) or since) >= since]
    recent.sort(key=lambda e: _event_time(e) or datetime.min.replace(tzinfo=UTC), reverse=True)
    window = "since the rollout at " + since.isoformat() if since else "in the namespace"
    shown = [f"{e.get('reason')} on {_at(e, 'involvedObject', 'kind')}/{_at(e, 'involvedObject', 'name')}: "
             f"{str(e.get('message', '')).strip()[:120]}" for e in recent[:EVENTS_SHOWN]]
    evidence = {"since": since.isoformat() if since else None, "warnings": len(recent),
                "older_ignored": len(warnings) - len(recent), "events": shown}
    ceiling = target.config.max_warning_events
    problems = []
    if len(recent) > ceiling:
        more = f"; … {len(recent) - EVENTS_SHOWN} more" if len(recent) > EVENTS_SHOWN else ""
        problems.append(f"{len(recent)} Warning event(s) {window}: " + "; ".join(shown) + more)
    return _result(target, "kubernetes.events", problems, [f"{len(recent)} Warning event(s) {window}"],
                   _events_expected(target.config), evidence, start)
