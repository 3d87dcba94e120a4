"""How the Kubernetes probes reach a namespace, and what they share to read the objects they get back.

Read-only: every call is a LIST (an HTTP GET) in the entry's namespace, what `kubectl get KIND -o json` does, or
the GET of one container's log (`kubectl logs POD -c CONTAINER`, read to a cap), through one API client per target
and bounded by ``timeout_s``. A check makes one call per kind it reads, however many objects the inventory names
(the pods of 20 deployments: 3 calls, not 60), and picks objects here: by name, by the deployment's label selector,
by owner. Responses stay plain JSON, not model classes: field names match the runbook, and large lists are not
converted object by object. The client is imported where used, so a run without
Kubernetes checks does not pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opsproof.inventory import Kubernetes
from opsproof.probes.base import Outcome, Target
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Finding, bound, current
from opsproof.probes.watchdog import Watchdog, watching

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"


class ApiError(Exception):
    """The API server refused the call or did not answer; the message is the reason, on one line."""


class ApiTimeout(ApiError, Finding):
    """The check's deadline passed while the API server's answer was read: its socket was shut."""


PATHS = {  # kind: its LIST path, the one `kubectl get KIND -v6` shows
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments",
    "replicaset": "/apis/apps/v1/namespaces/{namespace}/replicasets",
    "pod": "/api/v1/namespaces/{namespace}/pods",
    "event": "/api/v1/namespaces/{namespace}/events",
    "hpa": "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
    "certificate": "/apis/cert-manager.io/v1/namespaces/{namespace}/certificates",
    "job": "/apis/batch/v1/namespaces/{namespace}/jobs",
    "ingress": "/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
    "statefulset": "/apis/apps/v1/namespaces/{namespace}/statefulsets",
    "daemonset": "/apis/apps/v1/namespaces/{namespace}/daemonsets",
    "cronjob": "/apis/batch/v1/namespaces/{namespace}/cronjobs",
    "scaledobject": "/apis/keda.sh/v1alpha1/namespaces/{namespace}/scaledobjects",
    "secret": "/api/v1/namespaces/{namespace}/secrets",
    "endpoints": "/api/v1/namespaces/{namespace}/endpoints",
    "networkpolicy": "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
    "service": "/api/v1/namespaces/{namespace}/services",
}
LOG_PATH = "/api/v1/namespaces/{namespace}/pods/{name}/log"  # `kubectl logs POD`: text/plain, not JSON
# Secrets are asked for as metadata only (a PartialObjectMetadataList: no `data`, no annotations), and whatever
# comes back is cut to name, labels and type before anything reads it: a server that ignores the ask leaks nothing.
ACCEPT = {"secret": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"}


@dataclass(frozen=True)
class Reply:
    """An API server's answer: its status, its body (read whole, or to a cap) and whether the check's deadline
    watched its socket."""

    status: int
    reason: str
    body: bytes
    watched: bool
    over: bool = False  # the body had more than the cap: only the cap was read


class Namespace:
    """LIST-only access to the entry's namespace (and its pods' logs); every call carries
    ``_request_timeout=timeout_s``.

    Requests go through the client's ``ApiClient`` (kubeconfig auth, TLS, token refresh) with the paths above,
    rather than its generated ``AppsV1Api``-style classes, whose import and first calls cost about a second.
    """

    def __init__(self, target: Target[Kubernetes], conns: Connections) -> None:
        self.api = conns.kubernetes(target.id, target.config)
        self.name = target.config.namespace
        self.timeout = target.config.timeout_s

    def list(self, kind: str, **query: str) -> list[Obj]:
        """Every object of a kind in the namespace (one GET); of Secrets, only name, labels and type."""
        reply = self._get(PATHS[kind], {"namespace": self.name}, query, ACCEPT.get(kind, "application/json"))
        if reply.status == 404:  # a LIST answers 404 only for a resource the server does not serve (a missing CRD)
            path = PATHS[kind].format(namespace=self.name)
            raise ApiError(f"{path} not served by the API server (404 {reply.reason}): {_message(reply.body)}")
        if not 200 <= reply.status < 300:
            raise ApiError(f"{reply.status} {reply.reason}: {_message(reply.body)}")
        try:
            items: list[Obj] = json.loads(reply.body).get("items") or []
        except ValueError:
            deadline = current()  # an answer cut at the deadline can end as if whole, with no body
            if reply.watched and deadline is not None and deadline.passed():
                raise _timed_out(self.host, deadline.seconds) from None
            raise ApiError(f"API server {self.host}: {reply.status} answer is not JSON: "
                           f"{_message(reply.body)}") from None
        if kind == "secret":
            items = [{"metadata": {k: at(i, "metadata", k) for k in ("name", "labels", "creationTimestamp")},
                      "type": i.get("type")} for i in items]
        return items

    def log(self, pod: str, cap: int, **query: str) -> Reply:
        """`kubectl logs POD -c CONTAINER …`: GET pods/POD/log with ``query`` (container, sinceSeconds, tailLines,
        limitBytes, timestamps, previous); at most ``cap`` bytes of the answer are read (``Reply.over``: it had more).
        The status is the caller's to judge (400: the container has not started; 404: the pod is gone)."""
        return self._get(LOG_PATH, {"namespace": self.name, "name": pod}, query, "text/plain", cap)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def _get(self, path: str, params: dict[str, str], query: dict[str, str], accept: str,
             cap: int | None = None) -> Reply:
        """One GET within the check's deadline; errors of the connection and a cut answer as :class:`ApiError`."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, NewConnectionError
        from urllib3.exceptions import TimeoutError as Timeout

        host = self.host
        request = self.api.param_serialize("GET", path, path_params=params, query_params=list(query.items()),
                                           auth_settings=["BearerToken"], header_params={"Accept": accept})
        try:
            with watching() as dog:  # urllib3 bounds each read: the socket is shut at the check's deadline
                try:
                    response = self.api.call_api(*request, _request_timeout=bound(self.timeout, "connect")).response
                    over = False
                    try:
                        status, reason = response.status, response.reason
                        if cap is None:
                            body = response.data
                        else:  # read to the cap, and one byte more to know whether there was more
                            body = response.read(cap + 1)
                            over = len(body) > cap
                            body = body[:cap]
                            if over:
                                response.close()  # the rest is not read: the connection is not reused
                    finally:
                        response.release_conn()
                except (ApiException, HTTPError):
                    _cut(dog, host, dog is not None and dog.cut > 0)
                    raise
                deadline = current()  # an answer that ended as the deadline passed is not whole
                _cut(dog, host, dog is not None and (dog.fired or (deadline is not None and deadline.passed())))
        except ApiException as e:  # the client's wrapping of TLS errors
            raise ApiError(f"API server {host}: {str(e.reason).splitlines()[-1]}") from None
        except HTTPError as e:
            cause = getattr(e, "reason", None) or e
            timed_out = isinstance(cause, Timeout) and not isinstance(cause, NewConnectionError)  # a subclass, oddly
            if timed_out:  # the read's timeout is what was left of the deadline: the deadline's finding
                raise _timed_out(host, self.timeout) from None
            raise ApiError(f"API server {host}: {str(cause).rpartition('): ')[2] or str(cause)}") from None
        return Reply(status, str(reason), body, dog is not None, over)

    def by_name(self, kind: str) -> dict[str, Obj]:
        return {at(obj, "metadata", "name"): obj for obj in self.list(kind)}


def _cut(dog: Watchdog | None, host: str, cut: bool) -> None:
    """The deadline's finding, when the deadline ended the answer (headers cut short end as if complete)."""
    if cut:
        raise _timed_out(host, dog.seconds if dog is not None else None) from None


def _timed_out(host: str, seconds: float | None) -> ApiTimeout:
    return ApiTimeout(f"API server {host}: timed out, no answer within {seconds:g} s",
                      {"deadline_s": seconds, "waiting_for": "answer"})


def _message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, else its first line."""
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return (str(body or "").strip().splitlines() or ["no message"])[0][:200]


def at(obj: Obj, *path: str, default: Any = None) -> Any:
    """``at(dep, "status", "readyReplicas", default=0)``: a nested field, or the default when absent."""
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return default
        obj = obj[key]
    return obj


def generation_behind(obj: Obj) -> list[str]:
    """The finding of a workload whose controller has not acted on its latest spec yet (none when it has)."""
    generation, seen = at(obj, "metadata", "generation", default=0), at(obj, "status", "observedGeneration", default=0)
    return ([f"observedGeneration {seen} behind generation {generation} (the controller has not acted on the "
             "latest spec)"] if seen < generation else [])


def condition(obj: Obj, kind: str) -> Obj:
    return next((c for c in at(obj, "status", "conditions", default=[]) if c.get("type") == kind), {})


def timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def owned_by(obj: Obj, owner: Obj) -> bool:
    uid = at(owner, "metadata", "uid")
    return any(ref.get("uid") == uid for ref in at(obj, "metadata", "ownerReferences", default=[])) if uid else False


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
                self.problems.append(missing(kind, name, self.ns))
                self.evidence[name] = {"found": False}
            else:
                yield name, obj

    def judge(self, label: str, found: list[str], fine: str) -> None:
        """Record one object's verdict: its problems (``label: a, b``) or what is fine about it."""
        if found:
            self.problems.append(f"{label}: " + ", ".join(found))
        else:
            self.fine.append(fine)

    def outcome(self) -> Outcome:
        """Pass when no object has a problem; observed: the problems, else what is fine."""
        return Outcome(not self.problems, "; ".join(self.problems or self.fine), self.evidence)


def current_replicaset(dep: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet of the deployment's current revision: owned by it, with the same revision annotation."""
    revision = at(dep, "metadata", "annotations", REVISION)
    return next((rs for rs in replicasets if revision is not None and owned_by(rs, dep)
                 and at(rs, "metadata", "annotations", REVISION) == revision), None)


def selects(selector: Obj, labels: dict[str, str]) -> bool:
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


def missing(kind: str, name: str, ns: Namespace) -> str:
    return f"{kind} {name} not found in namespace {ns.name}"
