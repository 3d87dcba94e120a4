"""Errors in the pods' logs over a window: `kubectl logs deploy/api --all-containers --since=10m --timestamps |
grep -cE 'ERROR|FATAL'` — for every pod the workload selects, container by container, against a ceiling.

Read-only and bounded: one LIST of the pods (and one of each workload kind named), then one GET of
``pods/NAME/log`` per container (and per previous instance of a container restarted within the window), each
asking the API server for the window only (``sinceSeconds``), its newest ``tail_lines`` lines and at most
``limit_bytes`` (``tailLines``, ``limitBytes``), and read to that cap whatever the server sends. Each line carries
the kubelet's timestamp (``timestamps=true``): the window is cut to the second by it, and the samples are the
first matching lines of the window across all containers, as the application wrote them (the run masks the
inventory's secrets in them). The counting and its wording are the host files' (:mod:`opsproof.probes.logs`).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opsproof.inventory import Kubernetes
from opsproof.inventory.logs import PodLogs
from opsproof.inventory.objects import human_size
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.k8s_api import LOG_PATH, ApiError, Findings, Namespace, Obj, _message, at, missing, selects
from opsproof.probes.logs import ceiling, clip, counted
from opsproof.result import Severity

SLACK = 64 << 10  # the API server "may return slightly more" than limitBytes; beyond this much more, it ignored it
WORKLOADS = ("deployment", "statefulset", "daemonset")


@dataclass
class Read:
    """What one container's log (or its previous instance's) held in the window."""

    name: str  # pod/container, "(previous)" for the instance before its last restart
    matches: int = 0
    lines: int = 0
    bytes: int = 0
    cut: str | None = None  # why the window may reach past what was read
    unread: str | None = None  # why there was no log to read (not started, pod gone): the server's message
    samples: list[tuple[float, str]] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {"matches": self.matches, "lines": self.lines, "bytes": self.bytes, "cut": self.cut,
                "unread": self.unread}


def label(key: str, scan: PodLogs) -> str:
    """How a ``logs`` key reads in a finding: ``deployment api``, ``pod toolbox``, ``pods app=worker``."""
    if isinstance(scan.selector, str):
        return f"pods {scan.selector}"
    if scan.selector:
        return "pods " + ",".join(f"{k}={v}" for k, v in scan.selector.items())
    kind, _, name = key.partition("/")
    return f"{kind} {name}"


def _expected(cfg: Kubernetes) -> str:
    return "; ".join(f"{label(key, scan)}: {ceiling(scan)}, each container's window read whole"
                     for key, scan in cfg.logs.items())


def stamp(text: str) -> float | None:
    """The kubelet's RFC 3339 timestamp (nanoseconds cut to microseconds) as Unix time; None when it is not one."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if m is None:
        return None
    fraction = f".{m.group(2)[:6]}" if m.group(2) else ""
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}{fraction}{zone}").timestamp()
    except ValueError:
        return None


def read(ns: Namespace, pod: str, container: str, scan: PodLogs, start: float, now: float,
         previous: bool = False) -> Read:
    """One container's log in the window: counted, sampled, and whether the bounds cut the window short."""
    found = Read(f"{pod}/{container}" + (" (previous)" if previous else ""))
    query = {"container": container, "sinceSeconds": str(max(1, math.ceil(now - start))),
             "tailLines": str(scan.tail_lines), "limitBytes": str(scan.limit_bytes), "timestamps": "true"}
    if previous:
        query["previous"] = "true"
    reply = ns.log(pod, scan.limit_bytes + SLACK, **query)
    if reply.status in (400, 404):  # not started yet, no previous instance, or the pod is gone since the LIST
        found.unread = _message(reply.body)
        return found
    if not 200 <= reply.status < 300:
        path = LOG_PATH.format(namespace=ns.name, name=pod)
        raise ApiError(f"{path}?container={container}: {reply.status} {reply.reason}: {_message(reply.body)}")
    found.bytes = len(reply.body)
    lines = reply.body.decode("utf-8", "replace").splitlines()
    pattern = re.compile(scan.pattern)
    for line in lines:
        written, _, text = line.partition(" ")
        when = stamp(written)
        if when is None:  # a server that ignored timestamps=true: the line is the application's, in the window
            when, text = now, line
        elif when < start:  # sinceSeconds is whole seconds: the window is cut to the second here
            continue
        found.lines += 1
        if pattern.search(text):
            found.matches += 1
            if len(found.samples) < scan.samples:
                found.samples.append((when, f"{found.name}: {clip(text)}"))
    if reply.over:
        found.cut = (f"the API server sent more than limitBytes ({human_size(scan.limit_bytes)}); "
                     f"{human_size(scan.limit_bytes)} read")
    elif found.bytes >= scan.limit_bytes:
        found.cut = f"only {human_size(scan.limit_bytes)} read (raise limit_bytes)"
    elif len(lines) >= scan.tail_lines:
        found.cut = f"only the newest {scan.tail_lines} lines read (raise tail_lines)"
    return found


def _pods(key: str, scan: PodLogs, pods: list[Obj], workloads: dict[str, dict[str, Obj]], f: Findings
          ) -> list[Obj] | None:
    """The pods a key names, by name; None (a problem recorded) when its workload or pod does not exist."""
    kind, _, name = key.partition("/")
    if scan.selector:
        selector: Obj = scan.label_selector
    elif kind == "pod":
        named = [p for p in pods if at(p, "metadata", "name") == name]
        if not named:
            f.problems.append(missing("pod", name, f.ns))
        return named or None
    else:
        workload = workloads[kind].get(name)
        if workload is None:
            f.problems.append(missing(kind, name, f.ns))
            return None
        selector = at(workload, "spec", "selector", default={})
    chosen = [p for p in pods if selects(selector, at(p, "metadata", "labels", default={}))]
    return sorted(chosen, key=lambda p: str(at(p, "metadata", "name")))


def _containers(pod: Obj, scan: PodLogs) -> tuple[list[str], list[str]]:
    """The pod's containers to read (spec order), and the listed ones it does not have."""
    names = [c.get("name") for c in at(pod, "spec", "containers", default=[])] or [
        c.get("name") for c in at(pod, "status", "containerStatuses", default=[])]
    wanted = scan.containers or names
    return [n for n in names if n in wanted], [n for n in scan.containers if n not in names]


def _restarted_within(pod: Obj, container: str, start: float) -> bool:
    """The container runs again after an instance that ended within the window: that instance's last lines may
    hold the crash. (A container waiting to restart, as in CrashLoopBackOff, has no current instance: its log *is*
    the last one's, which the kubelet serves without ``previous``.)"""
    for status in at(pod, "status", "containerStatuses", default=[]):
        if status.get("name") == container and status.get("restartCount", 0) > 0:
            current = at(status, "state", "running") or at(status, "state", "terminated")
            ended = stamp(str(at(status, "lastState", "terminated", "finishedAt", default="")))
            return bool(current) and ended is not None and ended >= start
    return False


def judge(key: str, scan: PodLogs, pods: list[Obj], reads: list[Read], absent: list[tuple[str, str]],
          f: Findings) -> None:
    """One key's verdict: its count against the ceiling, the containers it could not read whole."""
    name = label(key, scan)
    matches = sum(r.matches for r in reads)
    found = [f"{counted(matches, scan)} (" + ", ".join(f"{r.name}: {r.matches}" for r in reads if r.matches)
             + ")"] if matches > scan.max_matches else []
    if found:
        first = sorted(s for r in reads for s in r.samples)[:scan.samples]
        if first:
            found[0] += "; first: " + " | ".join(text for _, text in first)
    if not pods:
        found.append(f"selects no pod in namespace {f.ns.name}")
    found += [f"{r.name}: {r.cut}, which the window reaches past" for r in reads if r.cut]
    found += [f"no container {c} in pod {p}" for p, c in absent]
    containers = len([r for r in reads if r.unread is None])
    fine = f"{name}: {counted(matches, scan)} ({len(pods)} pod(s), {containers} container log(s) read)"
    unread = [f"{r.name}: {r.unread}" for r in reads if r.unread is not None]
    if unread:
        fine += "; not read: " + "; ".join(unread)
    f.evidence[key] = {"matches": matches, "max_matches": scan.max_matches, "window_s": scan.window,
                       "pods": [at(p, "metadata", "name") for p in pods], "logs": {r.name: r.evidence() for r in reads},
                       "samples": [text for r in reads for _, text in r.samples]}
    f.judge(name, found, fine)


@probe("kubernetes.logs", "kubernetes", Severity.HIGH,
       "kubectl logs deploy/NAME --all-containers --since=WINDOW | grep -cE PATTERN",
       applies=lambda cfg: bool(cfg.logs), expected=_expected)
def logs(target: Target[Kubernetes], conns: Connections) -> Outcome:
    """Lines matching each key's ``pattern`` in the last ``window`` of its pods' logs, over all their containers:
    at most ``max_matches``; every container's window read whole (not cut by ``tail_lines``/``limit_bytes``)."""
    cfg = target.config
    f = Findings(Namespace(target, conns))
    pods = f.ns.list("pod")
    kinds = {key.partition("/")[0] for key, scan in cfg.logs.items() if not scan.selector} & set(WORKLOADS)
    workloads = {kind: f.ns.by_name(kind) for kind in sorted(kinds)}
    for key, scan in cfg.logs.items():
        selected = _pods(key, scan, pods, workloads, f)
        if selected is None:
            f.evidence[key] = {"found": False}
            continue
        now = time.time()
        start = now - scan.window
        reads: list[Read] = []
        absent: list[tuple[str, str]] = []
        for pod in selected:
            pod_name = str(at(pod, "metadata", "name"))
            containers, lacking = _containers(pod, scan)
            absent += [(pod_name, c) for c in lacking]
            for container in containers:
                reads.append(read(f.ns, pod_name, container, scan, start, now))
                if scan.previous and _restarted_within(pod, container, start):
                    reads.append(read(f.ns, pod_name, container, scan, start, now, previous=True))
        judge(key, scan, selected, reads, absent, f)
    return f.outcome()
