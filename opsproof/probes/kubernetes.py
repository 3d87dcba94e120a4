"""Kubernetes: the `kubectl` lines of a post-deploy runbook (`rollout status`, `get pods`, `get hpa`, …).

One name for the kind's probes, in three modules by concern: how a namespace is read (:mod:`.k8s_api`: LIST-only
access, errors, the shared object helpers), the listed deployments' workloads (:mod:`.k8s_workloads`: rollout, pods,
events) and the other objects a runbook names (:mod:`.k8s_objects`: hpa, certificates, jobs, ingresses).
"""

from opsproof.probes.k8s_api import PATHS, REVISION, ApiError, Namespace
from opsproof.probes.k8s_api import selects as _selects  # the label-selector rule, tested on its own
from opsproof.probes.k8s_objects import certificates, hpa, ingresses, jobs
from opsproof.probes.k8s_scaling import cronjobs, hpa_metrics, scaled_objects
from opsproof.probes.k8s_stateful import bare_pods, daemonsets, resources, statefulsets
from opsproof.probes.k8s_workloads import events, pods, rollout

__all__ = ["PATHS", "REVISION", "ApiError", "Namespace", "_selects", "bare_pods", "certificates", "cronjobs",
           "daemonsets", "events", "hpa", "hpa_metrics", "ingresses", "jobs", "pods", "resources", "rollout",
           "scaled_objects", "statefulsets"]
