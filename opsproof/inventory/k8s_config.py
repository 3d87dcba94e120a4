"""What a ``kubernetes`` entry may state about the configuration of the objects a runbook names:
PersistentVolumeClaims bound with a capacity, Services' ports, Ingress annotations, ConfigMaps and their keys, the
issuer of its Certificates, and an HPA's Pods-type metric targets and scaling behaviour (the checks:
:mod:`opsproof.probes.k8s_config`, :mod:`~opsproof.probes.k8s_scaling`, :mod:`~opsproof.probes.k8s_objects`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opsproof.inventory.base import _Model
from opsproof.inventory.k8s_kinds import Quantity


class VolumeClaim(_Model):
    """A PersistentVolumeClaim: Bound, with at least ``min_capacity`` of storage (`kubectl get pvc`)."""

    min_capacity: Quantity | None = Field(None, description="100Gi")  # status.capacity.storage at least this


class ScalingPolicy(_Model):
    """One of an HPA's scale-up or scale-down policies (``spec.behavior.scaleUp.policies[]``)."""

    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1)
    period_s: int = Field(ge=1, le=1800)  # periodSeconds


class ScalingRules(_Model):
    """How an HPA scales in one direction; what is left out is not judged."""

    stabilization_window_s: int | None = Field(None, ge=0, le=3600)  # stabilizationWindowSeconds
    policies: list[ScalingPolicy] = Field(default_factory=list)  # all of them, in any order
    select_policy: Literal["Max", "Min", "Disabled"] | None = None  # selectPolicy


class HpaBehavior(_Model):
    """An HPA's ``spec.behavior``, as the runbook writes it."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


class KubernetesConfig(_Model):
    """A ``kubernetes`` entry's settings about objects' configuration (the entry: :class:`~.entries.Kubernetes`)."""

    volume_claims: dict[str, VolumeClaim] = Field(default_factory=dict)  # key: the claim
    service_ports: dict[str, dict[int, int | str]] = Field(default_factory=dict)  # service: {port: targetPort}
    ingress_annotations: dict[str, dict[str, str]] = Field(default_factory=dict)  # ingress: {annotation: value}
    config_maps: dict[str, list[str]] = Field(default_factory=dict)  # configmap: the keys it must hold
    certificate_issuer: str | None = Field(None, description="letsencrypt-prod")  # issuerRef.name of `certificates`
