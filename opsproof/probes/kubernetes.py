"""Kubernetes: the `kubectl` lines of a post-deploy runbook (`rollout status`, `get pods`, `get hpa`, …).

One name for the kind's probes, in modules by concern: how a namespace is read (:mod:`.k8s_api`: LIST-only access,
errors, the shared object helpers), the listed deployments' workloads (:mod:`.k8s_workloads`: rollout, pods, events),
the other objects a runbook names (:mod:`.k8s_objects`: hpa, certificates, jobs, ingresses), workloads beyond
Deployments (:mod:`.k8s_stateful`: statefulsets, daemonsets, bare pods, container resources), scaling and schedules
(:mod:`.k8s_scaling`: HPA metric targets, KEDA ScaledObjects, CronJobs) and presence (:mod:`.k8s_presence`: Secrets,
Endpoints, NetworkPolicies, LoadBalancer Services, Helm releases, blue/green) and the pods' logs (:mod:`.k8s_logs`:
error lines over a window, `kubectl logs deploy/NAME | grep ERROR`).
"""

from opsproof.probes.k8s_api import PATHS, REVISION, ApiError, Namespace
from opsproof.probes.k8s_api import selects as _selects  # the label-selector rule, tested on its own
from opsproof.probes.k8s_config import config_maps, hpa_behavior, ingress_annotations, service_ports, volume_claims
from opsproof.probes.k8s_logs import logs
from opsproof.probes.k8s_objects import certificates, hpa, ingresses, jobs
from opsproof.probes.k8s_presence import (
    blue_green,
    endpoints,
    helm_releases,
    load_balancers,
    network_policies,
    secrets,
)
from opsproof.probes.k8s_scaling import cronjobs, hpa_metrics, scaled_objects
from opsproof.probes.k8s_stateful import bare_pods, daemonsets, resources, statefulsets
from opsproof.probes.k8s_workloads import events, pods, rollout

__all__ = ["PATHS", "REVISION", "ApiError", "Namespace", "_selects", "bare_pods", "blue_green", "certificates",
           "cronjobs", "daemonsets", "endpoints", "events", "helm_releases", "hpa", "hpa_metrics", "ingresses", "jobs",
           "load_balancers", "logs", "network_policies", "pods", "resources", "rollout", "scaled_objects", "secrets",
           "statefulsets"]
__all__ += ["config_maps", "hpa_behavior", "ingress_annotations", "service_ports", "volume_claims"]
