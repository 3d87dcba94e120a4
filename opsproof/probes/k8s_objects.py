"""Kubernetes objects a runbook names: `kubectl get hpa`, `kubectl get certificate`, `get job`, `get ingress`.

Each check reads one kind (one LIST) and judges the listed objects of it. How the namespace is read: :mod:`.k8s_api`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opsproof.inventory import Kubernetes
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import Findings, Namespace, at, condition, timestamp
from opsproof.result import Severity

# --- kubectl get hpa -------------------------------------------------------------------------------------

def _hpa_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"hpa {n}: {h.min_replicas}–{h.max_replicas} replicas"
                     + ("" if h.allow_at_max else ", below max") for n, h in cfg.hpa.items())


@probe("kubernetes.hpa", "kubernetes", Severity.HIGH, "kubectl get hpa",
       applies=lambda cfg: bool(cfg.hpa), expected=_hpa_expected)
def hpa(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get hpa` — each listed autoscaler (autoscaling/v2) has the runbook's min/max and room to scale."""
    f = Findings(Namespace(target, conns))
    for name, obj in f.listed("hpa", target.config.hpa):
        want = target.config.hpa[name]
        low, high = at(obj, "spec", "minReplicas", default=1), at(obj, "spec", "maxReplicas", default=0)
        current = at(obj, "status", "currentReplicas", default=0)
        f.evidence[name] = {"minReplicas": low, "maxReplicas": high, "currentReplicas": current,
                            "desiredReplicas": at(obj, "status", "desiredReplicas")}
        found: list[str] = []
        if (low, high) != (want.min_replicas, want.max_replicas):
            found.append(f"{low}–{high} replicas configured, runbook says {want.min_replicas}–{want.max_replicas}")
        if not low <= current <= high:
            found.append(f"{current} current replicas, outside {low}–{high}")
        elif current >= high and not want.allow_at_max:
            found.append(f"pinned at maxReplicas ({current} of {high})")
        f.judge(f"hpa {name}", found, f"hpa {name}: {current} replicas within {low}–{high}")
    return f.outcome()


# --- kubectl get certificate -----------------------------------------------------------------------------

def _certs_expected(cfg: Kubernetes) -> str:
    issuer = f", issued by {cfg.certificate_issuer}" if cfg.certificate_issuer else ""
    return f"Ready, and valid for more than {cfg.certificate_min_days} days{issuer}"


@probe("kubernetes.certificates", "kubernetes", Severity.HIGH, "kubectl get certificate",
       applies=lambda cfg: bool(cfg.certificates), expected=_certs_expected)
def certificates(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get certificate` — each listed cert-manager Certificate is Ready and not about to expire, and (with
    ``certificate_issuer``) is issued by the stated Issuer or ClusterIssuer (``spec.issuerRef.name``), the one
    cert-manager renews it from."""
    f = Findings(Namespace(target, conns))
    now = datetime.now(UTC)
    min_days = target.config.certificate_min_days
    for name, cert in f.listed("certificate", target.config.certificates):
        ready, not_after = condition(cert, "Ready"), at(cert, "status", "notAfter")
        end = timestamp(not_after)
        days = None if end is None else (end - now).total_seconds() / 86400
        issuer = at(cert, "spec", "issuerRef", default={})
        f.evidence[name] = {"ready": ready.get("status"), "reason": ready.get("reason"), "notAfter": not_after,
                            "days_left": None if days is None else round(days, 1),
                            "issuerRef": issuer, "renewalTime": at(cert, "status", "renewalTime")}
        found: list[str] = []
        if (issuer_name := target.config.certificate_issuer) and issuer.get("name") != issuer_name:
            found.append(f"issued by {issuer.get('kind', 'Issuer')} {issuer.get('name', '(none)')}, "
                         f"runbook says {issuer_name}")
        if ready.get("status") != "True":
            found.append(f"not Ready ({ready.get('reason', 'no Ready condition')}: {ready.get('message', '')})")
        if days is None:
            found.append("no status.notAfter")
        elif days <= min_days:
            found.append(f"expires in {days:.1f} days ({not_after})")
        f.judge(f"certificate {name}", found, f"certificate {name}: Ready, {days or 0:.0f} days left")
    return f.outcome()


# --- kubectl get job -------------------------------------------------------------------------------------

def _jobs_expected(cfg: Kubernetes) -> str:
    return f"{', '.join(cfg.jobs)} succeeded (≥ 1 completion, not failed)"


@probe("kubernetes.jobs", "kubernetes", Severity.HIGH, "kubectl get job NAME",
       applies=lambda cfg: bool(cfg.jobs), expected=_jobs_expected)
def jobs(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get job db-migrate` — each listed Job (a migration, say) has succeeded and has not failed."""
    f = Findings(Namespace(target, conns))
    for name, job in f.listed("job", target.config.jobs):
        status, failed = job.get("status") or {}, condition(job, "Failed")
        f.evidence[name] = {k: status.get(k) for k in ("succeeded", "failed", "active", "completionTime")}
        found: list[str] = []
        if failed.get("status") == "True":
            found.append(f"failed ({failed.get('reason', '')}: {failed.get('message', '')})")
        elif status.get("succeeded", 0) < 1:
            found.append(f"not complete ({status.get('active', 0)} active, {status.get('failed', 0)} failed pod(s))")
        f.judge(f"job {name}", found, f"job {name}: complete ({status.get('completionTime')})")
    return f.outcome()


# --- kubectl get ingress ---------------------------------------------------------------------------------

def _ingresses_expected(cfg: Kubernetes) -> str:
    return f"a load balancer address on {', '.join(cfg.ingresses)}"


@probe("kubernetes.ingresses", "kubernetes", Severity.MEDIUM, "kubectl get ingress",
       applies=lambda cfg: bool(cfg.ingresses), expected=_ingresses_expected)
def ingresses(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get ingress` — each listed Ingress has been given a load balancer address."""
    f = Findings(Namespace(target, conns))
    for name, ing in f.listed("ingress", target.config.ingresses):
        entries = at(ing, "status", "loadBalancer", "ingress", default=[])
        addresses = [a.get("ip") or a.get("hostname") for a in entries if a.get("ip") or a.get("hostname")]
        f.evidence[name] = {"addresses": addresses}
        f.judge(f"ingress {name}", [] if addresses else ["no load balancer address"],
                f"ingress {name}: {', '.join(addresses)}")
    return f.outcome()
