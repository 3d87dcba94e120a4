"""Kubernetes faults through the official client: pod delete (``kubectl delete pod -l …``) and deployment scale
(``kubectl scale deployment/NAME --replicas=N``), in the namespace of an inventory ``kubernetes`` entry.

Tested against kmock's KubernetesEmulator (an API-level stand-in: it stores and serves objects but runs no
controllers, so a deleted pod is not recreated there as a ReplicaSet would on a cluster).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opsproof.chaos import timeline
from opsproof.chaos.context import Configuration, Context, fail
from opsproof.probes import Connections


@contextmanager
def _api(configuration: Configuration | Context, target: str | None) -> Iterator[tuple[str, Any, Any]]:
    ctx = configuration if isinstance(configuration, Context) else Context.of(configuration)
    cluster = ctx.target("kubernetes", target)
    conns = Connections()
    try:
        yield cluster.id, cluster.config, conns.kubernetes(cluster.id, cluster.config)
    finally:
        conns.close()


def _json(response: Any) -> Any:
    """The decoded body of a raw (``_preload_content=False``) response: the client's typed models reject objects a
    cluster (or the emulator) may legitimately serve with fields left out."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def _reason(e: Exception) -> str:
    status = getattr(e, "status", None)
    return f"{type(e).__name__}" + (f" {status} {getattr(e, 'reason', '')}".rstrip() if status else f": {e}")


def _api_failure(e: Exception) -> bool:
    """An answer from the API server (an ApiException has ``status``) or no answer at all (socket errors, and
    urllib3's MaxRetryError / timeouts, which are not OSError): a failed fault, never a traceback."""
    import urllib3.exceptions

    return hasattr(e, "status") or isinstance(e, OSError | urllib3.exceptions.HTTPError)


def delete_pods(label_selector: str, count: int = 1, target: str | None = None,
                configuration: Configuration = None) -> dict[str, Any]:
    """Delete ``count`` pods matching ``label_selector`` (the first by name); fails when none matches."""
    Context.of(configuration).destructive(f"delete pods {label_selector}")
    return _delete_pods(Context.of(configuration), label_selector, count, target)


def _delete_pods(configuration: Context, label_selector: str, count: int, target: str | None,
                 mark: bool = True) -> dict[str, Any]:
    from kubernetes.client import CoreV1Api

    with _api(configuration, target) as (target_id, entry, client):
        core = CoreV1Api(client)
        try:
            pods = _json(core.list_namespaced_pod(entry.namespace, label_selector=label_selector,
                                                  _request_timeout=entry.timeout_s, _preload_content=False))
            names = sorted(str(p["metadata"]["name"]) for p in pods.get("items", []))[:count]
            if not names:
                raise fail(target_id, f"no pod matches {label_selector} in namespace {entry.namespace}",
                           f"at least {count} pod(s) to delete")
            for name in names:
                _json(core.delete_namespaced_pod(name, entry.namespace, _request_timeout=entry.timeout_s,
                                                 _preload_content=False))
        except Exception as e:
            if not _api_failure(e):
                raise
            raise fail(target_id, f"API call failed ({_reason(e)})", f"pods {label_selector} deleted") from None
    at = timeline.mark("fault_injected", fault=f"deleted pods {', '.join(names)} in {entry.namespace}") if mark \
        else None
    return {"target": target_id, "deleted": names, "injected_at": at}


def scale_deployment(name: str, replicas: int, target: str | None = None,
                     configuration: Configuration = None) -> dict[str, Any]:
    """Set a deployment's replicas (``kubectl scale``); returns the previous count, for the rollback to restore."""
    Context.of(configuration).destructive(f"scale deployment {name}")
    return _scale(Context.of(configuration), name, replicas, target)


def replicas_of(ctx: Context, name: str, target: str | None) -> int:
    """The replicas a deployment's spec asks for (``kubectl get deployment NAME -o jsonpath={.spec.replicas}``)."""
    from kubernetes.client import AppsV1Api

    with _api(ctx, target) as (target_id, entry, client):
        try:
            return int(_json(AppsV1Api(client).read_namespaced_deployment(
                name, entry.namespace, _request_timeout=entry.timeout_s, _preload_content=False))["spec"]["replicas"])
        except Exception as e:
            if not _api_failure(e):
                raise
            raise fail(target_id, f"deployment {name}: API call failed ({_reason(e)})",
                       f"deployment {name} readable") from None


def _scale(configuration: Context, name: str, replicas: int, target: str | None, mark: bool = True) -> dict[str, Any]:
    from kubernetes.client import AppsV1Api

    with _api(configuration, target) as (target_id, entry, client):
        apps = AppsV1Api(client)
        try:
            read = {"_request_timeout": entry.timeout_s, "_preload_content": False}
            previous = _json(apps.read_namespaced_deployment(name, entry.namespace, **read))["spec"]["replicas"]
            _json(apps.patch_namespaced_deployment(name, entry.namespace, {"spec": {"replicas": int(replicas)}},
                                                   **read))
            now = _json(apps.read_namespaced_deployment(name, entry.namespace, **read))["spec"]["replicas"]
        except Exception as e:
            if not _api_failure(e):
                raise
            raise fail(target_id, f"deployment {name}: API call failed ({_reason(e)})",
                       f"deployment {name} scaled to {replicas}") from None
    if now != int(replicas):
        raise fail(target_id, f"deployment {name} has {now} replicas after the change",
                   f"{replicas} replicas")
    at = timeline.mark("fault_injected", fault=f"scaled {name} from {previous} to {replicas}") if mark else None
    return {"target": target_id, "deployment": name, "previous": previous, "replicas": int(replicas),
            "injected_at": at}


class KubernetesBackend:
    """The existing pod delete and deployment scale behind the target-backend interface (opsproof.chaos.targets):
    a target is a ``kubernetes`` entry of the inventory; ``scale`` is rolled back to the replicas read before it
    (idempotent: nothing to do when they are back), ``delete_pods`` has nothing to undo (its controller recreates
    the pods)."""

    name = "kubernetes"
    faults = frozenset({"delete_pods", "scale"})

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def available(self) -> str | None:
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            return "the kubernetes client is not installed (pip install kubernetes)"
        return None

    def option_problems(self, target: str, fault: str, options: dict[str, Any]) -> list[str]:
        need = {"delete_pods": ("selector",), "scale": ("deployment", "replicas")}[fault]
        return [f"{fault} needs {key}:" for key in need if options.get(key) is None]

    def prepare(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        if fault == "scale":
            return {**options, "previous": replicas_of(self.ctx, options["deployment"], target)}
        return options

    def inject(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        if fault == "scale":
            return _scale(self.ctx, options["deployment"], int(options["replicas"]), target, mark=False)
        return _delete_pods(self.ctx, options["selector"], int(options.get("count") or 1), target, mark=False)

    def rollback(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        if fault != "scale" or options.get("previous") is None:
            return {"actions": []}
        name, previous = options["deployment"], int(options["previous"])
        if replicas_of(self.ctx, name, target) == previous:
            return {"actions": []}
        _scale(self.ctx, name, previous, target, mark=False)
        return {"actions": [f"{name} scaled back to {previous}"]}

    def leftovers(self, target: str, fault: str, options: dict[str, Any]) -> str:
        if fault != "scale" or options.get("previous") is None:
            return ""
        now = replicas_of(self.ctx, options["deployment"], target)
        return "" if now == int(options["previous"]) else f"deployment {options['deployment']} has {now} replicas, " \
            f"{options['previous']} before the run"
