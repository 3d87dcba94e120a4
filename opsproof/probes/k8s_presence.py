"""Objects a runbook expects to be there: Secrets (by name only), Endpoints with a ready address, NetworkPolicies,
LoadBalancer Services with an address, Helm releases (`helm status`, from the labels of their release Secrets) and a
blue/green switch (the Service selects the expected colour, and that colour's Deployment is rolled out). One LIST
per kind a check reads. Secrets are read as metadata only, cut to name, labels and type (:mod:`.k8s_api`): no check
here sees a Secret's data or a Helm release's payload."""

from __future__ import annotations

from opsproof.inventory import Kubernetes
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import Findings, Namespace, Obj, at, missing, selects
from opsproof.result import Severity

HELM_RELEASE = "helm.sh/release.v1"

# --- kubectl get secret NAME (existence only) ------------------------------------------------------------

@probe("kubernetes.secrets", "kubernetes", Severity.HIGH, "kubectl get secret NAME",
       applies=lambda cfg: bool(cfg.secrets), expected=lambda cfg: f"Secrets {', '.join(cfg.secrets)} exist")
def secrets(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get secret api-credentials` — each listed Secret exists (its data is never asked for nor read)."""
    f = Findings(Namespace(target, conns))
    for name, obj in f.listed("secret", target.config.secrets):
        f.evidence[name] = {"found": True, "type": obj.get("type")}
        f.fine.append(f"secret {name} exists")
    return f.outcome()


# --- kubectl get endpoints NAME --------------------------------------------------------------------------

@probe("kubernetes.endpoints", "kubernetes", Severity.HIGH, "kubectl get endpoints NAME",
       applies=lambda cfg: bool(cfg.endpoints),
       expected=lambda cfg: f"at least one ready address behind {', '.join(cfg.endpoints)}")
def endpoints(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get endpoints api` — each listed Service has at least one ready address to send traffic to."""
    f = Findings(Namespace(target, conns))
    for name, obj in f.listed("endpoints", target.config.endpoints):
        subsets = obj.get("subsets") or []
        ready = [a.get("ip") for s in subsets for a in s.get("addresses") or []]
        waiting = [a.get("ip") for s in subsets for a in s.get("notReadyAddresses") or []]
        f.evidence[name] = {"ready": ready, "not_ready": waiting}
        f.judge(f"endpoints {name}", [] if ready else [f"no ready address ({len(waiting)} not ready)"],
                f"endpoints {name}: {len(ready)} ready address(es)")
    return f.outcome()


# --- kubectl get networkpolicy ---------------------------------------------------------------------------

@probe("kubernetes.network_policies", "kubernetes", Severity.MEDIUM, "kubectl get networkpolicies",
       applies=lambda cfg: bool(cfg.network_policies),
       expected=lambda cfg: f"NetworkPolicies {', '.join(cfg.network_policies)} exist")
def network_policies(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get networkpolicies` — each listed NetworkPolicy is in place."""
    f = Findings(Namespace(target, conns))
    for name, obj in f.listed("networkpolicy", target.config.network_policies):
        f.evidence[name] = {"podSelector": at(obj, "spec", "podSelector", default={}),
                            "policyTypes": at(obj, "spec", "policyTypes", default=[])}
        f.fine.append(f"networkpolicy {name} exists")
    return f.outcome()


# --- kubectl get service NAME (type LoadBalancer) --------------------------------------------------------

@probe("kubernetes.load_balancers", "kubernetes", Severity.HIGH, "kubectl get service NAME",
       applies=lambda cfg: bool(cfg.load_balancers),
       expected=lambda cfg: f"{', '.join(cfg.load_balancers)}: type LoadBalancer with an external address")
def load_balancers(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get service api` — each listed Service is of type LoadBalancer and has been given an address
    (``EXTERNAL-IP`` not ``<pending>``)."""
    f = Findings(Namespace(target, conns))
    for name, svc in f.listed("service", target.config.load_balancers):
        kind = at(svc, "spec", "type", default="ClusterIP")
        entries = at(svc, "status", "loadBalancer", "ingress", default=[])
        addresses = [a.get("ip") or a.get("hostname") for a in entries if a.get("ip") or a.get("hostname")]
        f.evidence[name] = {"type": kind, "addresses": addresses}
        found = [] if kind == "LoadBalancer" else [f"type {kind}, not LoadBalancer"]
        if kind == "LoadBalancer" and not addresses:
            found.append("no external address (pending)")
        f.judge(f"service {name}", found, f"service {name}: {', '.join(addresses)}")
    return f.outcome()


# --- helm status RELEASE ---------------------------------------------------------------------------------

def _revision(secret: Obj) -> int:
    version = str(at(secret, "metadata", "labels", "version", default=""))
    return int(version) if version.isdigit() else -1


@probe("kubernetes.helm_releases", "kubernetes", Severity.HIGH, "helm status RELEASE",
       applies=lambda cfg: bool(cfg.helm_releases),
       expected=lambda cfg: f"the newest revision of {', '.join(cfg.helm_releases)} deployed")
def helm_releases(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`helm status api` — the newest revision of each listed release is ``deployed``: read from the labels Helm
    3 puts on its release Secrets (``owner=helm``, ``name``, ``status``, ``version``); the payload is never read."""
    f = Findings(Namespace(target, conns))
    releases: dict[str, list[Obj]] = {}
    for secret in f.ns.list("secret", labelSelector="owner=helm"):
        labels = at(secret, "metadata", "labels", default={})
        if labels.get("owner") == "helm" and secret.get("type") in (None, HELM_RELEASE):  # metadata only: no type
            releases.setdefault(labels.get("name", ""), []).append(secret)
    for name in target.config.helm_releases:
        revisions = sorted(releases.get(name, []), key=_revision)
        history = {_revision(s): at(s, "metadata", "labels", "status") for s in revisions}
        f.evidence[name] = {"revisions": history}
        if not revisions:
            f.problems.append(f"helm release {name}: no release in namespace {f.ns.name} (no Secret of type "
                              f"{HELM_RELEASE} labelled name={name})")
            continue
        newest, status = _revision(revisions[-1]), history[_revision(revisions[-1])]
        deployed = [r for r, s in history.items() if s == "deployed" and r != newest]
        f.judge(f"helm release {name}",
                [] if status == "deployed" else [f"revision {newest} is {status}"
                                                 + (f" (revision {deployed[-1]} deployed)" if deployed else "")],
                f"helm release {name}: revision {newest} deployed")
    return f.outcome()


# --- blue/green: kubectl get service NAME -o jsonpath='{.spec.selector}' ---------------------------------

def _bg_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"service {n} selects {b.label}={b.color}, deployment {b.deployment} rolled out and ready"
                     for n, b in cfg.blue_green.items())


def _not_rolled_out(dep: Obj) -> list[str]:
    desired = at(dep, "spec", "replicas", default=1)
    generation, seen = at(dep, "metadata", "generation", default=0), at(dep, "status", "observedGeneration", default=0)
    counts = [at(dep, "status", f"{k}Replicas", default=0) for k in ("updated", "ready", "available")]
    found = [f"observedGeneration {seen} behind generation {generation}"] if seen < generation else []
    if desired < 1 or counts != [desired] * 3:
        found.append(f"{counts[0]} of {desired} replicas updated, {counts[1]} ready, {counts[2]} available")
    return found


@probe("kubernetes.blue_green", "kubernetes", Severity.CRITICAL,
       "kubectl get service NAME -o jsonpath='{.spec.selector}'",
       applies=lambda cfg: bool(cfg.blue_green), expected=_bg_expected)
def blue_green(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl patch service app -p '{"spec":{"selector":{"version":"green"}}}'` took: the Service's selector
    points at the colour the gate expects, it selects that colour's Deployment's pods, and that Deployment is rolled
    out with every replica ready."""
    f = Findings(Namespace(target, conns))
    deployments = f.ns.by_name("deployment")
    for name, svc in f.listed("service", target.config.blue_green):
        want = target.config.blue_green[name]
        selector = at(svc, "spec", "selector", default={})
        dep = deployments.get(want.deployment)
        labels = at(dep or {}, "spec", "template", "metadata", "labels", default={})
        f.evidence[name] = {"selector": selector, "deployment": want.deployment, "pod_labels": labels,
                            "deployment_found": dep is not None}
        found: list[str] = []
        switched = selector.get(want.label) == want.color
        if not switched:
            found.append(f"selector {want.label}={selector.get(want.label, '(none)')}, the gate expects "
                         f"{want.label}={want.color}")
        if dep is None:
            found.append(missing("deployment", want.deployment, f.ns))
        else:
            if labels.get(want.label) != want.color:
                found.append(f"deployment {want.deployment}'s pods are labelled {want.label}="
                             f"{labels.get(want.label, '(none)')}, not {want.color}")
            elif switched and not selects({"matchLabels": selector}, labels):
                found.append(f"selector {selector} does not select deployment {want.deployment}'s pods {labels}")
            found += [f"deployment {want.deployment}: {p}" for p in _not_rolled_out(dep)]
        f.judge(f"service {name}", found, f"service {name}: {want.label}={want.color}, deployment "
                                          f"{want.deployment} ready")
    return f.outcome()
