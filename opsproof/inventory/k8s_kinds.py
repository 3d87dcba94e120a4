"""What a ``kubernetes`` entry may list beyond deployments: StatefulSets, DaemonSets, bare Pods, container resources,
KEDA ScaledObjects, CronJobs, present objects, Helm releases and a blue/green switch (the checks:
:mod:`opsproof.probes.k8s_stateful`, :mod:`~opsproof.probes.k8s_scaling`, :mod:`~opsproof.probes.k8s_presence`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from opsproof.inventory.base import NAME, _Model
from opsproof.inventory.logs import PodLogs
from opsproof.util.durations import parse_duration

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_FACTORS = {None: 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
            "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60}


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity as a number: ``500m`` → 0.5 (CPU), ``2Gi`` → 2147483648 (bytes)."""
    m = _QUANTITY.match(str(text).strip())
    if m is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (write it like 500m, 2, 512Mi or 2Gi)")
    return float(m.group(1)) * _FACTORS[m.group(2)]


def _valid_quantity(text: str) -> str:
    quantity(text)
    return text


Quantity = Annotated[str, BeforeValidator(str), AfterValidator(_valid_quantity)]
_REF = re.compile(r"^(deployment|statefulset|daemonset)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _valid_ref(text: str) -> str:
    if not _REF.match(text):
        raise ValueError(f"{text!r} names no workload: write KIND/NAME, KIND one of deployment, statefulset, daemonset "
                         "(deployment/api, statefulset/postgres)")
    return text


WorkloadRef = Annotated[str, AfterValidator(_valid_ref)]
_LOG_SOURCE = re.compile(r"^(deployment|statefulset|daemonset|pod)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class Workload(_Model):
    """A StatefulSet or DaemonSet: `kubectl rollout status sts/NAME` / `ds/NAME`."""

    min_ready: int | None = Field(None, ge=0)  # default: all desired replicas (sts) or scheduled pods (ds)


class BarePod(_Model):
    """A Pod no controller restarts: by its name (the entry's key), or every pod a label selector picks."""

    selector: dict[str, str] = Field(default_factory=dict, description="{app: redis}")  # empty: key = pod name
    min_ready: int = Field(1, ge=0)  # with a selector: at least this many selected pods Ready
    max_restarts: int = Field(0, ge=0)  # container restarts, per pod


class Resources(_Model):
    """Each container of a workload declares cpu and memory requests and limits, within the stated bounds."""

    max_cpu_limit: Quantity | None = Field(None, description="4")
    max_memory_limit: Quantity | None = Field(None, description="2Gi")
    min_cpu_request: Quantity | None = Field(None, description="100m")
    min_memory_request: Quantity | None = Field(None, description="256Mi")


class ScaledObject(_Model):
    """A KEDA ScaledObject (keda.sh/v1alpha1): its replica bounds, its triggers, Ready."""

    min_replicas: int = Field(ge=0)
    max_replicas: int = Field(ge=1)
    triggers: list[str] = Field(default_factory=list, description="[prometheus, redis]")  # types that must be there

    @model_validator(mode="after")
    def _possible(self) -> ScaledObject:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}. "
                             "Fix: swap them, or correct the one that is wrong")
        return self


class CronJob(_Model):
    """A CronJob whose last successful run is recent, and which is not suspended."""

    max_age: Annotated[float, BeforeValidator(parse_duration), Field(gt=0, description="25h")]


class BlueGreen(_Model):
    """A blue/green switch: the Service's selector ``label`` is ``color``, and that colour's Deployment is healthy."""

    deployment: str = Field(min_length=1, description="app-green")  # the Deployment of the expected colour
    label: str = Field("color", min_length=1, description="version")
    color: str = Field("green", min_length=1)


class KubernetesKinds(_Model):
    """The settings of a ``kubernetes`` entry beyond deployments (the entry: :class:`~.entries.Kubernetes`)."""

    statefulsets: dict[str, Workload] = Field(default_factory=dict)
    daemonsets: dict[str, Workload] = Field(default_factory=dict)
    bare_pods: dict[str, BarePod] = Field(default_factory=dict)
    resources: dict[WorkloadRef, Resources] = Field(default_factory=dict)  # key: deployment/api, statefulset/pg
    scaled_objects: dict[str, ScaledObject] = Field(default_factory=dict)
    cronjobs: dict[str, CronJob] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)  # existence only: their data is never read
    endpoints: list[str] = Field(default_factory=list)  # each with at least one ready address
    network_policies: list[str] = Field(default_factory=list)
    load_balancers: list[str] = Field(default_factory=list)  # Services of type LoadBalancer with an address
    helm_releases: list[str] = Field(default_factory=list)  # the newest release's status is deployed
    blue_green: dict[str, BlueGreen] = Field(default_factory=dict)  # key: the Service
    # error lines in the pods' logs over a window; key: deployment/api, statefulset/db, daemonset/agent, pod/NAME,
    # or a name of your own with a selector
    logs: dict[str, PodLogs] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _log_sources(self) -> KubernetesKinds:
        for key, scan in self.logs.items():
            if scan.selector:
                if not re.match(NAME, key):
                    raise ValueError(f"logs key {key!r} has a selector. Fix: name it plainly (workers), or "
                                     "drop the selector and write KIND/NAME")
            elif not _LOG_SOURCE.match(key):
                raise ValueError(f"logs key {key!r} names no pods. Fix: write KIND/NAME, KIND one of "
                                 "deployment, statefulset, daemonset, pod (deployment/api, pod/toolbox), or give a "
                                 "selector: {app: worker}")
        return self
