"""How the objects a runbook names are configured: PersistentVolumeClaims Bound with their capacity (`kubectl get
pvc`), a Service's ports (`kubectl get service -o yaml`), an Ingress' annotations, ConfigMaps and their keys, an HPA's
scaling behaviour. One LIST per check; ConfigMaps are read for their keys only (no value reaches a result). How the
namespace is read: :mod:`.k8s_api`."""

from __future__ import annotations

from typing import Any

from opsproof.inventory import Kubernetes, ScalingRules, quantity
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import PATHS, Findings, Namespace, Obj, at
from opsproof.result import Severity

PATHS.update({  # the kinds read here, next to the others' LIST paths
    "pvc": "/api/v1/namespaces/{namespace}/persistentvolumeclaims",
    "configmap": "/api/v1/namespaces/{namespace}/configmaps",
})

# --- kubectl get pvc -------------------------------------------------------------------------------------

def _pvc_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"pvc {n}: Bound" + (f", capacity ≥ {c.min_capacity}" if c.min_capacity else "")
                     for n, c in cfg.volume_claims.items())


@probe("kubernetes.volume_claims", "kubernetes", Severity.HIGH, "kubectl get pvc NAME",
       applies=lambda cfg: bool(cfg.volume_claims), expected=_pvc_expected)
def volume_claims(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get pvc backup-storage` — each listed claim is Bound to a volume, with at least the stated capacity
    (``status.capacity.storage``: what was provisioned, not what was asked for)."""
    f = Findings(Namespace(target, conns))
    for name, pvc in f.listed("pvc", target.config.volume_claims):
        want = target.config.volume_claims[name]
        phase, capacity = at(pvc, "status", "phase", default="Pending"), at(pvc, "status", "capacity", "storage")
        f.evidence[name] = {"phase": phase, "capacity": capacity, "volumeName": at(pvc, "spec", "volumeName"),
                            "storageClassName": at(pvc, "spec", "storageClassName")}
        found = [] if phase == "Bound" else [f"phase {phase}, not Bound"]
        if want.min_capacity and phase == "Bound":
            if capacity is None:
                found.append("no status.capacity.storage")
            elif quantity(capacity) < quantity(want.min_capacity):
                found.append(f"capacity {capacity}, runbook says at least {want.min_capacity}")
        f.judge(f"pvc {name}", found, f"pvc {name}: Bound, {capacity or 'no capacity reported'}")
    return f.outcome()


# --- kubectl get service NAME -o jsonpath='{.spec.ports}' ------------------------------------------------

def _ports_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"service {n}: " + ", ".join(f"port {p} → targetPort {t}" for p, t in ports.items())
                     for n, ports in cfg.service_ports.items())


def _port_text(port: Obj) -> str:
    return f"{port.get('port')} → {port.get('targetPort', port.get('port'))}"


@probe("kubernetes.service_ports", "kubernetes", Severity.HIGH, "kubectl get service NAME -o yaml",
       applies=lambda cfg: bool(cfg.service_ports), expected=_ports_expected)
def service_ports(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get service apex-api -o yaml` — each listed port forwards to the runbook's targetPort (port 80 →
    targetPort 8000); an unset targetPort is the port itself, as the API server defaults it."""
    f = Findings(Namespace(target, conns))
    for name, svc in f.listed("service", target.config.service_ports):
        ports: list[Obj] = at(svc, "spec", "ports", default=[])
        f.evidence[name] = {"ports": [{k: p.get(k) for k in ("name", "port", "targetPort", "protocol")}
                                      for p in ports]}
        found: list[str] = []
        for port, want in target.config.service_ports[name].items():
            seen = next((p for p in ports if p.get("port") == port), None)
            if seen is None:
                found.append(f"no port {port} (has {', '.join(map(_port_text, ports)) or 'no ports'})")
            elif str(seen.get("targetPort", port)) != str(want):
                found.append(f"port {port} → targetPort {seen.get('targetPort', port)}, runbook says {want}")
        f.judge(f"service {name}", found, f"service {name}: " + ", ".join(map(_port_text, ports)))
    return f.outcome()


# --- kubectl get ingress NAME -o jsonpath='{.metadata.annotations}' --------------------------------------

def _annotations_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"ingress {n}: " + ", ".join(f"{k}={v!r}" for k, v in want.items())
                     for n, want in cfg.ingress_annotations.items())


@probe("kubernetes.ingress_annotations", "kubernetes", Severity.MEDIUM, "kubectl get ingress NAME -o yaml",
       applies=lambda cfg: bool(cfg.ingress_annotations), expected=_annotations_expected)
def ingress_annotations(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get ingress apex -o yaml` — each listed annotation has the runbook's value (e.g.
    ``nginx.ingress.kubernetes.io/proxy-read-timeout: "300"``); other annotations are not judged nor reported."""
    f = Findings(Namespace(target, conns))
    for name, ing in f.listed("ingress", target.config.ingress_annotations):
        want = target.config.ingress_annotations[name]
        annotations = at(ing, "metadata", "annotations", default={})
        seen = {k: annotations.get(k) for k in want}
        f.evidence[name] = {"annotations": seen}
        found = [f"{k} absent" if seen[k] is None else f"{k}={seen[k]!r}, runbook says {v!r}"
                 for k, v in want.items() if seen[k] != v]
        f.judge(f"ingress {name}", found, f"ingress {name}: " + ", ".join(f"{k}={v!r}" for k, v in seen.items()))
    return f.outcome()


# --- kubectl get configmap NAME --------------------------------------------------------------------------

def _configmaps_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"configmap {n}" + (f" with keys {', '.join(keys)}" if keys else " exists")
                     for n, keys in cfg.config_maps.items())


@probe("kubernetes.config_maps", "kubernetes", Severity.MEDIUM, "kubectl get configmap NAME",
       applies=lambda cfg: bool(cfg.config_maps), expected=_configmaps_expected)
def config_maps(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get configmap logging-config` — each listed ConfigMap exists and holds the listed keys (in
    ``data`` or ``binaryData``), each with a non-empty value; the values themselves are never reported."""
    f = Findings(Namespace(target, conns))
    for name, cm in f.listed("configmap", target.config.config_maps):
        data: dict[str, Any] = {**at(cm, "binaryData", default={}), **at(cm, "data", default={})}
        f.evidence[name] = {"keys": sorted(data), "sizes": {k: len(str(v)) for k, v in data.items()}}
        found = [f"no key {k} (has {', '.join(sorted(data)) or 'no keys'})" if k not in data else f"key {k} empty"
                 for k in target.config.config_maps[name] if not str(data.get(k) or "").strip()]
        f.judge(f"configmap {name}", found, f"configmap {name}: keys {', '.join(sorted(data)) or '(none)'}")
    return f.outcome()


# --- kubectl get hpa NAME -o jsonpath='{.spec.behavior}' -------------------------------------------------

DIRECTIONS = (("scale_up", "scaleUp"), ("scale_down", "scaleDown"))


def _rules_text(rules: ScalingRules) -> str:
    parts = [] if rules.stabilization_window_s is None else [f"window {rules.stabilization_window_s} s"]
    parts += [f"{p.type} {p.value} per {p.period_s} s" for p in rules.policies]
    return ", ".join(parts + ([f"select {rules.select_policy}"] if rules.select_policy else []))


def _behavior_expected(cfg: Kubernetes) -> str:
    return "; ".join(f"hpa {n} {api}: {_rules_text(rules)}" for n, h in cfg.hpa.items() if h.behavior
                     for key, api in DIRECTIONS if (rules := getattr(h.behavior, key)) is not None)


def _judge_rules(api: str, want: ScalingRules, seen: Obj | None) -> list[str]:
    if seen is None:
        return [f"no spec.behavior.{api}"]
    found: list[str] = []
    window = seen.get("stabilizationWindowSeconds")
    if want.stabilization_window_s is not None and window != want.stabilization_window_s:
        found.append(f"{api} stabilizationWindowSeconds {window}, runbook says {want.stabilization_window_s}")
    have = sorted((str(p.get("type")), p.get("value"), p.get("periodSeconds")) for p in seen.get("policies") or [])
    wanted = sorted((p.type, p.value, p.period_s) for p in want.policies)
    if want.policies and have != wanted:
        text = "; ".join(f"{t} {v} per {s} s" for t, v, s in have) or "none"
        found.append(f"{api} policies {text}, runbook says " + "; ".join(f"{t} {v} per {s} s" for t, v, s in wanted))
    if want.select_policy and seen.get("selectPolicy", "Max") != want.select_policy:
        found.append(f"{api} selectPolicy {seen.get('selectPolicy', 'Max')}, runbook says {want.select_policy}")
    return found


@probe("kubernetes.hpa_behavior", "kubernetes", Severity.MEDIUM, "kubectl get hpa NAME -o yaml",
       applies=lambda cfg: any(h.behavior for h in cfg.hpa.values()), expected=_behavior_expected)
def hpa_behavior(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get hpa apex-api-hpa -o yaml` — ``spec.behavior`` scales as the runbook says: each direction's
    stabilization window, its policies (type, value, period; any order) and selectPolicy (default Max)."""
    f = Findings(Namespace(target, conns))
    wanted = {n: h.behavior for n, h in target.config.hpa.items() if h.behavior}
    for name, obj in f.listed("hpa", wanted):
        behavior = at(obj, "spec", "behavior", default={})
        f.evidence[name] = {"behavior": behavior}
        found = [p for key, api in DIRECTIONS if (rules := getattr(wanted[name], key)) is not None
                 for p in _judge_rules(api, rules, behavior.get(api))]
        f.judge(f"hpa {name}", found, f"hpa {name}: behavior as the runbook says")
    return f.outcome()
