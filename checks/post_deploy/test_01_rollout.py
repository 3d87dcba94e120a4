"""Post-deploy gate, step 1: the rollout landed — the `kubectl` lines of the deploy runbook (read-only)."""

import pytest

from opsproof import verify
from opsproof.probes import kubernetes
from opsproof.result import Result


@pytest.mark.check(kubernetes.rollout)
def test_rollout_complete(result: Result) -> None:
    """`kubectl rollout status deployment/api` — latest generation observed, every replica updated and available."""
    verify(result)


@pytest.mark.check(kubernetes.pods)
def test_pods_running(result: Result) -> None:
    """`kubectl get pods -l app=api` — no CrashLoopBackOff, ImagePullBackOff, Error or stuck Pending; few restarts."""
    verify(result)


@pytest.mark.check(kubernetes.hpa)
def test_autoscaler(result: Result) -> None:
    """`kubectl get hpa` — the runbook's min/max replicas, and not pinned at max."""
    verify(result)


@pytest.mark.check(kubernetes.certificates)
def test_certificates_ready(result: Result) -> None:
    """`kubectl get certificate` — cert-manager certificates Ready and far from expiry."""
    verify(result)


@pytest.mark.check(kubernetes.jobs)
def test_migration_job_succeeded(result: Result) -> None:
    """`kubectl get job db-migrate` — the migration Job completed and did not fail."""
    verify(result)


@pytest.mark.check(kubernetes.ingresses)
def test_ingress_has_address(result: Result) -> None:
    """`kubectl get ingress` — each ingress has a load balancer address."""
    verify(result)


@pytest.mark.check(kubernetes.events)
def test_no_warning_events(result: Result) -> None:
    """`kubectl get events --field-selector type=Warning` — no new Warning events since the rollout."""
    verify(result)


@pytest.mark.check(kubernetes.statefulsets)
def test_statefulsets_rolled_out(result: Result) -> None:
    """`kubectl rollout status statefulset/postgres` — every replica updated and ready, one revision."""
    verify(result)


@pytest.mark.check(kubernetes.daemonsets)
def test_daemonsets_rolled_out(result: Result) -> None:
    """`kubectl rollout status daemonset/NAME` — updated and ready on every scheduled node, none unavailable."""
    verify(result)


@pytest.mark.check(kubernetes.bare_pods)
def test_bare_pods_ready(result: Result) -> None:
    """`kubectl get pod NAME` — pods no controller restarts are Ready, with few restarts."""
    verify(result)


@pytest.mark.check(kubernetes.resources)
def test_containers_declare_resources(result: Result) -> None:
    """`kubectl get deploy NAME -o jsonpath='{..resources}'` — requests and limits on every container, within bounds."""
    verify(result)


@pytest.mark.check(kubernetes.hpa_metrics)
def test_autoscaler_targets(result: Result) -> None:
    """`kubectl get hpa -o yaml` — scales on the runbook's targets (cpu 70 %, memory 80 % averageUtilization)."""
    verify(result)


@pytest.mark.check(kubernetes.scaled_objects)
def test_keda_scaled_objects(result: Result) -> None:
    """`kubectl get scaledobject` — KEDA's replica bounds and triggers as the runbook says, and Ready."""
    verify(result)


@pytest.mark.check(kubernetes.cronjobs)
def test_cronjobs_succeeded_recently(result: Result) -> None:
    """`kubectl get cronjob backup` — not suspended, and the last success is recent."""
    verify(result)


@pytest.mark.check(kubernetes.secrets)
def test_secrets_exist(result: Result) -> None:
    """`kubectl get secret NAME` — each listed Secret exists (never its data)."""
    verify(result)


@pytest.mark.check(kubernetes.endpoints)
def test_endpoints_have_ready_addresses(result: Result) -> None:
    """`kubectl get endpoints NAME` — each Service has a ready address behind it."""
    verify(result)


@pytest.mark.check(kubernetes.network_policies)
def test_network_policies_in_place(result: Result) -> None:
    """`kubectl get networkpolicies` — the listed NetworkPolicies exist."""
    verify(result)


@pytest.mark.check(kubernetes.load_balancers)
def test_load_balancers_have_addresses(result: Result) -> None:
    """`kubectl get service NAME` — type LoadBalancer, EXTERNAL-IP assigned."""
    verify(result)


@pytest.mark.check(kubernetes.helm_releases)
def test_helm_releases_deployed(result: Result) -> None:
    """`helm status RELEASE` — the newest revision is deployed (from the release Secrets' labels)."""
    verify(result)


@pytest.mark.check(kubernetes.blue_green)
def test_blue_green_switched(result: Result) -> None:
    """`kubectl patch service app -p '{"spec":{"selector":{"version":"green"}}}'` took, and green is ready."""
    verify(result)


@pytest.mark.check(kubernetes.volume_claims)
def test_volume_claims_bound(result: Result) -> None:
    """`kubectl get pvc NAME` — Bound, with at least the runbook's capacity."""
    verify(result)


@pytest.mark.check(kubernetes.service_ports)
def test_service_ports(result: Result) -> None:
    """`kubectl get service NAME -o yaml` — each port forwards to the runbook's targetPort (80 → 8000)."""
    verify(result)


@pytest.mark.check(kubernetes.ingress_annotations)
def test_ingress_annotations(result: Result) -> None:
    """`kubectl get ingress NAME -o yaml` — the runbook's annotations (e.g. proxy read/send timeouts 300 s)."""
    verify(result)


@pytest.mark.check(kubernetes.config_maps)
def test_config_maps_present(result: Result) -> None:
    """`kubectl get configmap NAME` — present, with the keys the runbook writes (values never shown)."""
    verify(result)


@pytest.mark.check(kubernetes.hpa_behavior)
def test_autoscaler_behavior(result: Result) -> None:
    """`kubectl get hpa -o yaml` — spec.behavior: the runbook's stabilization windows and scaling policies."""
    verify(result)
