"""How a namespace scales and runs on schedule: the HPA's metric targets (`kubectl get hpa -o yaml`), KEDA
ScaledObjects (`kubectl get scaledobject`) and CronJobs' last success (`kubectl get cronjob`). One LIST per check.
How the namespace is read: :mod:`.k8s_api`."""

from __future__ import annotations

from datetime import UTC, datetime

from opsproof.inventory import Kubernetes, human_duration, quantity
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import Findings, Namespace, Obj, at, condition, timestamp
from opsproof.result import Severity

# --- kubectl get hpa -o yaml: spec.metrics --------------------------------------------------------------

def _targets(cfg: Kubernetes) -> dict[str, dict[str, int]]:
    return {name: t for name, h in cfg.hpa.items()
            if (t := {res: v for res, v in (("cpu", h.cpu_utilization), ("memory", h.memory_utilization)) if v})}


def _configured(cfg: Kubernetes) -> list[str]:
    """The HPAs with a metric target to judge: a Resource utilization or a Pods metric's averageValue."""
    return [name for name, h in cfg.hpa.items() if name in _targets(cfg) or h.pods_metrics]


def _metrics_expected(cfg: Kubernetes) -> str:
    targets = _targets(cfg)

    def one(n: str) -> str:
        return ", ".join([f"{res} averageUtilization {v} %" for res, v in targets.get(n, {}).items()]
                         + [f"pods {m} averageValue {v}" for m, v in cfg.hpa[n].pods_metrics.items()])
    return ", ".join(f"hpa {n}: {one(n)}" for n in _configured(cfg))


def _utilization(hpa: Obj, resource: str) -> int | None:
    """The averageUtilization target of a Resource metric (autoscaling/v2 ``spec.metrics``), or None."""
    for metric in at(hpa, "spec", "metrics", default=[]):
        if metric.get("type") == "Resource" and at(metric, "resource", "name") == resource:
            target = at(metric, "resource", "target", default={})
            value = target.get("averageUtilization")
            if target.get("type") == "Utilization" and isinstance(value, int):
                return value
    return None


def _average_value(hpa: Obj, metric_name: str) -> str | None:
    """The averageValue target of a Pods metric (``type: Pods``, ``pods.metric.name``), or None."""
    for metric in at(hpa, "spec", "metrics", default=[]):
        if metric.get("type") == "Pods" and at(metric, "pods", "metric", "name") == metric_name:
            target = at(metric, "pods", "target", default={})
            if target.get("type") == "AverageValue" and target.get("averageValue") is not None:
                return str(target["averageValue"])
    return None


def _pods_findings(seen: dict[str, str | None], wanted: dict[str, str]) -> list[str]:
    found: list[str] = []
    for metric, value in seen.items():
        if value is None:
            found.append(f"no Pods metric {metric} (AverageValue) in spec.metrics")
        elif quantity(value) != quantity(wanted[metric]):
            found.append(f"pods {metric} averageValue {value}, runbook says {wanted[metric]}")
    return found


@probe("kubernetes.hpa_metrics", "kubernetes", Severity.HIGH, "kubectl get hpa NAME -o yaml",
       applies=lambda cfg: bool(_configured(cfg)), expected=_metrics_expected)
def hpa_metrics(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get hpa api -o yaml` — the autoscaler scales on the runbook's targets: resource metrics cpu and
    memory, type Utilization, at the stated averageUtilization (e.g. 70 % and 80 %), and Pods metrics (e.g.
    http_requests_per_second) at the stated averageValue."""
    f = Findings(Namespace(target, conns))
    wanted = _targets(target.config)
    for name, obj in f.listed("hpa", _configured(target.config)):
        found: list[str] = []
        seen = {res: _utilization(obj, res) for res in wanted.get(name, {})}
        pods_wanted = target.config.hpa[name].pods_metrics
        pods_seen = {m: _average_value(obj, m) for m in pods_wanted}
        f.evidence[name] = {"targets": seen, "currentMetrics": at(obj, "status", "currentMetrics", default=[])}
        if pods_seen:
            f.evidence[name]["pods"] = pods_seen
        for res, value in seen.items():
            if value is None:
                found.append(f"no {res} Utilization metric in spec.metrics")
            elif value != wanted[name][res]:
                found.append(f"{res} averageUtilization {value} %, runbook says {wanted[name][res]} %")
        found += _pods_findings(pods_seen, pods_wanted)
        f.judge(f"hpa {name}", found, f"hpa {name}: " + ", ".join([f"{r} {v} %" for r, v in seen.items()]
                                                                  + [f"{m} {v}" for m, v in pods_seen.items()]))
    return f.outcome()


# --- kubectl get scaledobject (KEDA, keda.sh/v1alpha1) ---------------------------------------------------

def _scaled_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"scaledobject {n}: {s.min_replicas}–{s.max_replicas} replicas, "
                     + (f"triggers {', '.join(s.triggers)}" if s.triggers else "a trigger") + ", Ready"
                     for n, s in cfg.scaled_objects.items())


@probe("kubernetes.scaled_objects", "kubernetes", Severity.HIGH, "kubectl get scaledobject",
       applies=lambda cfg: bool(cfg.scaled_objects), expected=_scaled_expected)
def scaled_objects(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get scaledobject` — each listed KEDA ScaledObject has the runbook's replica bounds, its triggers,
    and is Ready (KEDA could read its scale target and triggers)."""
    f = Findings(Namespace(target, conns))
    for name, obj in f.listed("scaledobject", target.config.scaled_objects):
        want = target.config.scaled_objects[name]
        low = at(obj, "spec", "minReplicaCount", default=0)  # KEDA's defaults
        high = at(obj, "spec", "maxReplicaCount", default=100)
        types = [t.get("type") for t in at(obj, "spec", "triggers", default=[])]
        ready = condition(obj, "Ready")
        f.evidence[name] = {"minReplicaCount": low, "maxReplicaCount": high, "triggers": types,
                            "ready": ready.get("status"), "reason": ready.get("reason")}
        found: list[str] = []
        if (low, high) != (want.min_replicas, want.max_replicas):
            found.append(f"{low}–{high} replicas configured, runbook says {want.min_replicas}–{want.max_replicas}")
        if not types:
            found.append("no triggers")
        elif absent := [t for t in want.triggers if t not in types]:
            found.append(f"no {', '.join(absent)} trigger (has {', '.join(map(str, types))})")
        if ready.get("status") != "True":
            found.append(f"not Ready ({ready.get('reason', 'no Ready condition')}: {ready.get('message', '')})")
        f.judge(f"scaledobject {name}", found,
                f"scaledobject {name}: Ready, {low}–{high} replicas on {', '.join(map(str, types))}")
    return f.outcome()


# --- kubectl get cronjob ---------------------------------------------------------------------------------

def _cron_expected(cfg: Kubernetes) -> str:
    return ", ".join(f"cronjob {n}: not suspended, last success within {human_duration(c.max_age)}"
                     for n, c in cfg.cronjobs.items())


def _ago(seconds: float) -> str:
    return (f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 60
            else f"{seconds:.0f} s")


@probe("kubernetes.cronjobs", "kubernetes", Severity.HIGH, "kubectl get cronjob NAME",
       applies=lambda cfg: bool(cfg.cronjobs), expected=_cron_expected)
def cronjobs(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """`kubectl get cronjob backup` — each listed CronJob is not suspended and last succeeded recently enough
    (``status.lastSuccessfulTime`` younger than ``max_age``)."""
    f = Findings(Namespace(target, conns))
    now = datetime.now(UTC)
    for name, cron in f.listed("cronjob", target.config.cronjobs):
        want = target.config.cronjobs[name]
        last = at(cron, "status", "lastSuccessfulTime")
        when = timestamp(last)
        age = None if when is None else (now - when).total_seconds()
        suspended = bool(at(cron, "spec", "suspend", default=False))
        f.evidence[name] = {"schedule": at(cron, "spec", "schedule"), "suspend": suspended,
                            "lastScheduleTime": at(cron, "status", "lastScheduleTime"), "lastSuccessfulTime": last,
                            "age_s": None if age is None else round(age)}
        found = ["suspended (spec.suspend: true)"] if suspended else []
        if age is None:
            found.append("never succeeded (no status.lastSuccessfulTime)")
        elif age > want.max_age:
            found.append(f"last success {_ago(age)} ago ({last}), older than "
                         f"{human_duration(want.max_age)}")
        f.judge(f"cronjob {name}", found, f"cronjob {name}: last success {_ago(age or 0)} ago")
    return f.outcome()
