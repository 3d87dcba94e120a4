"""Presence checks against kmock's KubernetesEmulator (real HTTP, the real client): Secrets (by name only),
Endpoints, NetworkPolicies, LoadBalancer Services, Helm releases from their release Secrets' labels, and a
blue/green switch. One emulator for the module, one namespace per case (:mod:`k8s_cases`). Every case breaks one
object and sees exactly that check fail."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import test_kubernetes as kt
import yaml
from k8s_cases import Case, module_tests, run_all
from support import run_suite
from test_kubernetes import Emulator, meta

from opsproof.inventory import BlueGreen, Kubernetes
from opsproof.probes import Connections
from opsproof.probes import kubernetes as k8s

Obj = dict[str, Any]
PROBES = (k8s.secrets, k8s.endpoints, k8s.network_policies, k8s.load_balancers, k8s.helm_releases, k8s.blue_green)
KINDS = {"Secret": "v1/secrets", "Endpoints": "v1/endpoints", "Service": "v1/services",
         "NetworkPolicy": "networking.k8s.io/v1/networkpolicies"}
PASSWORD = "s3cr3t-hunter2"  # in a Secret's data and in its last-applied annotation: never in any result
PAYLOAD = "H4sIAAAAAAAC-helm-release-payload"  # a release Secret's data.release: never read


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def release(ns: str, name: str, version: int, status: str) -> Obj:
    obj = meta("Secret", ns, f"sh.helm.release.v1.{name}.v{version}",
               labels={"owner": "helm", "name": name, "status": status, "version": str(version)})
    obj.update(type="helm.sh/release.v1", data={"release": b64(PAYLOAD)})
    return obj


def deployment(ns: str, name: str, color: str, replicas: int = 3) -> Obj:
    dep = meta("Deployment", ns, name, generation=2)
    dep["spec"] = {"replicas": replicas, "selector": {"matchLabels": {"app": "app", "version": color}},
                   "template": {"metadata": {"labels": {"app": "app", "version": color}}}}
    dep["status"] = {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": replicas,
                     "readyReplicas": replicas, "availableReplicas": replicas}
    return dep


def healthy(ns: str) -> dict[str, Obj]:
    secret = meta("Secret", ns, "api-credentials", annotations={
        "kubectl.kubernetes.io/last-applied-configuration": f'{{"stringData":{{"password":"{PASSWORD}"}}}}'})
    secret.update(type="Opaque", data={"password": b64(PASSWORD)})
    ep = meta("Endpoints", ns, "api")
    ep["subsets"] = [{"addresses": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.6"}], "ports": [{"port": 8000}]}]
    policy = meta("NetworkPolicy", ns, "default-deny")
    policy["spec"] = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    lb = meta("Service", ns, "api-public")
    lb["spec"] = {"type": "LoadBalancer", "selector": {"app": "api"}}
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}]}}
    app = meta("Service", ns, "app")
    app["spec"] = {"type": "ClusterIP", "selector": {"app": "app", "version": "green"}}
    objs = [secret, ep, policy, lb, app, deployment(ns, "app-blue", "blue"), deployment(ns, "app-green", "green"),
            release(ns, "api", 8, "superseded"), release(ns, "api", 9, "deployed"), release(ns, "other", 1, "failed"),
            kt.event(ns, "scaled", "ScalingReplicaSet", "app-green", "Scaled up", kind="Deployment", type_="Normal")]
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objs}




BG = "expected service app selects version=green, deployment app-green rolled out and ready"
HELM = "expected the newest revision of api deployed"


def green(o: dict[str, Obj]) -> Obj:
    return o["Deployment/app-green"]


CASES = [
    Case("healthy", lambda o: None),
    Case("secret-missing", lambda o: o.pop("Secret/api-credentials"),
         {"kubernetes.secrets": "secret api-credentials not found in namespace secret-missing, expected Secrets "
                                "api-credentials exist"}),
    Case("endpoints-none", lambda o: o["Endpoints/api"].update(subsets=[{"notReadyAddresses": [
        {"ip": "10.0.0.5"}, {"ip": "10.0.0.6"}]}]),
         {"kubernetes.endpoints": "endpoints api: no ready address (2 not ready), expected at least one ready "
                                  "address behind api"}),
    Case("netpol-missing", lambda o: o.pop("NetworkPolicy/default-deny"),
         {"kubernetes.network_policies": "networkpolicy default-deny not found in namespace netpol-missing, expected "
                                         "NetworkPolicies default-deny exist"}),
    Case("lb-pending", lambda o: o["Service/api-public"].update(status={"loadBalancer": {}}),
         {"kubernetes.load_balancers": "service api-public: no external address (pending), expected api-public: "
                                       "type LoadBalancer with an external address"}),
    Case("lb-clusterip", lambda o: o["Service/api-public"]["spec"].update(type="ClusterIP"),
         {"kubernetes.load_balancers": "service api-public: type ClusterIP, not LoadBalancer, expected api-public: "
                                       "type LoadBalancer with an external address"}),
    Case("helm-failed", lambda o: o.update({"Secret/r10": release("helm-failed", "api", 10, "failed")}),
         {"kubernetes.helm_releases": f"helm release api: revision 10 is failed (revision 9 deployed), {HELM}"}),
    Case("helm-pending", lambda o: o.update({"Secret/r10": release("helm-pending", "api", 10, "pending-upgrade")}),
         {"kubernetes.helm_releases": "helm release api: revision 10 is pending-upgrade (revision 9 deployed), "
                                      + HELM}),
    Case("helm-missing", lambda o: None,
         {"kubernetes.helm_releases": "helm release worker: no release in namespace helm-missing (no Secret of type "
                                      "helm.sh/release.v1 labelled name=worker), expected the newest revision of api, "
                                      "worker deployed"},
         {"helm_releases": ["api", "worker"]}),
    Case("bg-still-blue", lambda o: o["Service/app"]["spec"]["selector"].update(version="blue"),
         {"kubernetes.blue_green": f"service app: selector version=blue, the gate expects version=green, {BG}"}),
    Case("bg-green-not-ready", lambda o: green(o)["status"].update(readyReplicas=1, availableReplicas=1),
         {"kubernetes.blue_green": "service app: deployment app-green: 3 of 3 replicas updated, 1 ready, 1 available, "
                                   + BG}),
    Case("bg-green-mislabelled", lambda o: green(o)["spec"]["template"]["metadata"]["labels"].update(version="blue"),
         {"kubernetes.blue_green": "service app: deployment app-green's pods are labelled version=blue, not green, "
                                   + BG}),
    Case("bg-green-gone", lambda o: o.pop("Deployment/app-green"),
         {"kubernetes.blue_green": f"service app: deployment app-green not found in namespace bg-green-gone, {BG}"}),
]


def config(ns: str, kubeconfig: Path, **overrides: Any) -> Kubernetes:
    settings: dict[str, Any] = {
        "namespace": ns, "kubeconfig": str(kubeconfig), "timeout_s": 5, "secrets": ["api-credentials"],
        "endpoints": ["api"], "network_policies": ["default-deny"], "load_balancers": ["api-public"],
        "helm_releases": ["api"], "blue_green": {"app": BlueGreen(deployment="app-green", label="version")},
    }
    return Kubernetes(**{**settings, **overrides})


emu, conns, test_each_state_fails_exactly_its_check = module_tests(CASES, PROBES, config, healthy, KINDS)


def test_healthy_observed_and_no_secret_read(emu: Emulator, conns: Connections) -> None:
    before = len(emu.requests())
    results = run_all(PROBES, config("healthy", emu.kubeconfig), conns, "healthy")
    assert {c: r.observed for c, r in results.items()} == {
        "kubernetes.secrets": "secret api-credentials exists",
        "kubernetes.endpoints": "endpoints api: 2 ready address(es)",
        "kubernetes.network_policies": "networkpolicy default-deny exists",
        "kubernetes.load_balancers": "service api-public: 203.0.113.20",
        "kubernetes.helm_releases": "helm release api: revision 9 deployed",
        "kubernetes.blue_green": "service app: version=green, deployment app-green ready",
    }
    assert results["kubernetes.helm_releases"].evidence["api"] == {"revisions": {8: "superseded", 9: "deployed"}}
    shown = repr([(r.observed, r.evidence, r.explain()) for r in results.values()])
    for hidden in (PASSWORD, b64(PASSWORD), b64(PAYLOAD)):
        assert hidden not in shown
    seen = emu.requests()[before:]
    secret_lists = [r for r in seen if r.url.path.endswith("/secrets")]
    assert len(seen) == 7  # one LIST per check, blue/green two (services, deployments)
    assert len(secret_lists) == 2
    assert {r.headers.get("Accept") for r in secret_lists} == {   # metadata only, wherever the server honours it
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"}
    assert [r.params for r in secret_lists if r.params] == [{"labelSelector": "owner=helm"}]


def test_suite_as_users_run_it(emu: Emulator, tmp_path: Path) -> None:
    entry = {"kubeconfig": str(emu.kubeconfig), "secrets": ["api-credentials"], "endpoints": ["api"],
             "network_policies": ["default-deny"], "load_balancers": ["api-public"], "helm_releases": ["api"],
             "blue_green": {"app": {"deployment": "app-green", "label": "version", "color": "green"}}}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"environment": "emulated", "kubernetes": {
        "healthy": {"namespace": "healthy", **entry}, "blue": {"namespace": "bg-still-blue", **entry}}}))
    run = run_suite(inventory, tmp_path / "out", suite="checks/post_deploy/test_01_rollout.py")
    assert run.code == 1, run.output
    assert run.failed == {"kubernetes.blue_green@kubernetes[blue]"}, run.output
    assert len(run.records) == 14  # the 6 checks and events, in 2 namespaces
    assert "13 passed" in run.output, run.output
    assert "kubernetes[blue]: service app: selector version=blue, the gate expects version=green" in run.output
    assert PASSWORD not in run.output
    assert b64(PASSWORD) not in run.output
