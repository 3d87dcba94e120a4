"""``GET /api/v1/namespaces/NS/pods/NAME/log`` on the kmock emulator (test_kubernetes.py's ``Emulator``), answered
the way the API server and the kubelet answer it — kmock itself serves no subresource (it would return the pod).

Modelled on the API server's ``LogLocation`` and ``ValidatePodLogOptions`` and the kubelet's
``validateContainerLogStatus`` and log reader (kubernetes/kubernetes, read through the search tool):

- the pod must exist (404 ``pods "NAME" not found``); ``container`` may be left out only when the pod has one
  (400 ``a container name must be specified for pod NAME, choose one of: [a b]``) and must be one of its
  (400 ``container X is not valid for pod NAME``); a pod not scheduled yet (no ``nodeName``) has an empty log;
- ``sinceSeconds`` ≥ 1, ``tailLines`` ≥ 0, ``limitBytes`` ≥ 1, not both ``sinceSeconds`` and ``sinceTime`` (422
  ``PodLogOptions "NAME" is invalid: …``);
- which instance: ``previous=true`` the one before the last restart (400 ``previous terminated container "c" in pod
  "p" not found`` without one); else the running or terminated one, else the last terminated one (a container in
  CrashLoopBackOff shows its last run), else 400 ``container "c" in pod "p" is waiting to start: REASON``;
- the instance's lines: the last ``tailLines`` of them, then those not before now − ``sinceSeconds``, each with the
  kubelet's RFC3339Nano timestamp in front (``timestamps=true``), then cut to ``limitBytes`` bytes (mid-line if so);
- ``text/plain``; errors are ``Status`` JSON, as every API error.

Not modelled: ``follow`` (the checks never stream), ``stream=Stdout|Stderr``, ``sinceTime`` (validated only), init
and ephemeral containers (the check reads the pod's ``spec.containers``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kmock
from test_kubernetes import Emulator

Obj = dict[str, Any]
Line = tuple[datetime, str]


def rfc3339nano(when: datetime) -> str:
    """Go's time.RFC3339Nano, as the kubelet writes it: nanoseconds with trailing zeros dropped, ``Z`` for UTC."""
    when = when.astimezone(UTC)
    fraction = f"{when.microsecond * 1000:09d}".rstrip("0")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


class PodLogs:
    """The containers' log lines: per (namespace, pod, container), the current instance's and the previous one's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str, str, bool], list[Line]] = {}
        self.refused: dict[str, tuple[int, str, str]] = {}  # namespace → the API error every log GET there gets
        self.unlimited: set[str] = set()  # namespaces where limitBytes is ignored (a server that misbehaves)
        self.trickling: set[str] = set()  # namespaces whose logs are sent a line per 0.1 s, never ending

    def refuse(self, ns: str, code: int, reason: str, message: str) -> None:
        """Answer every log GET in ``ns`` with an API error (403: RBAC without ``pods/log``)."""
        with self._lock:
            self.refused[ns] = (code, reason, message)

    def write(self, ns: str, pod: str, container: str, lines: list[Line], previous: bool = False) -> None:
        with self._lock:
            self._lines.setdefault((ns, pod, container, previous), []).extend(lines)

    def lines(self, ns: str, pod: str, container: str, previous: bool) -> list[Line]:
        with self._lock:
            return list(self._lines.get((ns, pod, container, previous), []))


def every(start_ago: float, count: int, text: str, *, spacing: float = 1.0) -> list[Line]:
    """``count`` lines of ``text`` (``{i}`` numbered), the first ``start_ago`` seconds ago, ``spacing`` apart."""
    first = datetime.now(UTC) - timedelta(seconds=start_ago)
    return [(first + timedelta(seconds=i * spacing), text.format(i=i)) for i in range(count)]


def _status(code: int, reason: str, message: str, **details: Any) -> kmock.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code, **({"details": details} if details else {})}
    return kmock.Response(status=code, headers={"Content-Type": "application/json"},
                          payload=json.dumps(body).encode())


def _pod(emu: Emulator, ns: str, name: str) -> Obj | None:
    try:
        obj = emu.handler.objects["v1/pods", ns, name]
    except KeyError:
        return None
    return None if obj.deleted else dict(obj.raw)


def _int(params: dict[str, str], key: str) -> int | None:
    return int(params[key]) if key in params else None


def _invalid(name: str, params: dict[str, str]) -> str | None:
    """ValidatePodLogOptions' findings, as the 422's message lists them."""
    problems = []
    tail, limit, since = _int(params, "tailLines"), _int(params, "limitBytes"), _int(params, "sinceSeconds")
    if tail is not None and tail < 0:
        problems.append(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
    if limit is not None and limit < 1:
        problems.append(f"limitBytes: Invalid value: {limit}: must be greater than 0")
    if since is not None and "sinceTime" in params:
        problems.append("<nil>: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    elif since is not None and since < 1:
        problems.append(f"sinceSeconds: Invalid value: {since}: must be greater than 0")
    if not problems:
        return None
    joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return f'PodLogOptions "{name}" is invalid: {joined}'


def _instance(pod: Obj, name: str, container: str, previous: bool) -> tuple[bool | None, str]:
    """Which instance's log the kubelet serves (True: the previous one), or None and why it serves none."""
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []}
    status = statuses.get(container)
    if status is None:
        return None, f'container "{container}" in pod "{name}" is not available'
    state, last = status.get("state") or {}, (status.get("lastState") or {}).get("terminated")
    if previous:
        return (True, "") if last else (None, f'previous terminated container "{container}" in pod "{name}" '
                                               "not found")
    if state.get("running") or state.get("terminated"):
        return False, ""
    if last:
        return True, ""
    waiting = state.get("waiting")
    if waiting is not None:
        reason = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"
                  }.get(waiting.get("reason", ""), waiting.get("reason", ""))
        return None, f'container "{container}" in pod "{name}" is waiting to start: {reason}'
    return None, f'container "{container}" in pod "{name}" is waiting to start - no logs yet'


async def _trickle() -> AsyncIterator[bytes]:
    """A log that never ends, a line per 0.1 s (a hung kubelet stream, a proxy feeding it slowly)."""
    n = 0
    while True:
        yield f"{rfc3339nano(datetime.now(UTC))} INFO still going {n}\n".encode()
        n += 1
        await asyncio.sleep(0.1)


def answer(emu: Emulator, logs: PodLogs, request: kmock.Request) -> Any:
    ns, name, params = request.namespace or "", request.name or "", dict(request.params)
    if ns in logs.refused:
        return _status(*logs.refused[ns])
    if ns in logs.trickling:
        return kmock.Response(status=200, headers={"Content-Type": "text/plain"}, payload=_trickle())
    pod = _pod(emu, ns, name)
    if pod is None:
        return _status(404, "NotFound", f'pods "{name}" not found', name=name, kind="pods")
    try:
        invalid = _invalid(name, params)
    except ValueError as e:
        return _status(400, "BadRequest", f"invalid query: {e}")
    if invalid:
        return _status(422, "Invalid", invalid, name=name, kind="PodLogOptions")
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    container = params.get("container", "")
    if not container:
        if len(containers) != 1:
            choice = f", choose one of: [{' '.join(containers)}]" if containers else ""
            return _status(400, "BadRequest", f"a container name must be specified for pod {name}{choice}")
        container = containers[0]
    elif container not in containers:
        return _status(400, "BadRequest", f"container {container} is not valid for pod {name}")
    if not (pod.get("spec") or {}).get("nodeName"):
        return kmock.Response(status=200, headers={"Content-Type": "text/plain"}, payload=b"")
    previous, why = _instance(pod, name, container, params.get("previous") == "true")
    if previous is None:
        return _status(400, "BadRequest", why)
    lines = logs.lines(ns, name, container, previous)
    tail, since, limit = _int(params, "tailLines"), _int(params, "sinceSeconds"), _int(params, "limitBytes")
    if tail is not None:
        lines = lines[len(lines) - tail:] if tail else []
    if since is not None:
        start = datetime.now(UTC) - timedelta(seconds=since)
        lines = [(when, text) for when, text in lines if not when < start]
    stamped = params.get("timestamps") == "true"
    body = "".join((f"{rfc3339nano(when)} " if stamped else "") + text + "\n" for when, text in lines).encode()
    if limit is not None and ns not in logs.unlimited:
        body = body[:limit]
    return kmock.Response(status=200, headers={"Content-Type": "text/plain"}, payload=body)


def serve_logs(emu: Emulator) -> PodLogs:
    """Have the emulator answer ``pods/NAME/log`` from the returned store (GET only, as the API server)."""
    logs = PodLogs()

    async def add() -> None:
        emu.handler[kmock.method.GET][kmock.resource("", "v1", "pods")][kmock.subresource("log")] << (
            lambda request: answer(emu, logs, request))
    emu._run(add())
    return logs
