"""``kubernetes.logs`` — `kubectl logs deploy/api --all-containers --since=10m | grep -cE 'ERROR|FATAL'` — against
kmock's emulator, whose ``pods/NAME/log`` answers as the API server and the kubelet do (:mod:`k8s_pod_logs`; the
emulator itself is checked here against the client's own ``read_namespaced_pod_log``). One emulator for the module,
one namespace per case, each breaking one thing; exactly the check's finding is asserted. As users run it: the
post-deploy suite in a pytest subprocess, a secret in a pod's log line masked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import pytest
import test_kubernetes as kt
import yaml
from k8s_pod_logs import PodLogs, every, rfc3339nano, serve_logs
from support import run_suite
from test_kubernetes import Emulator

from opsproof.inventory import Kubernetes
from opsproof.probes import Connections, Target, run
from opsproof.probes import kubernetes as k8s
from opsproof.result import Result

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
SECRET = "canary-pod-log-pw-7Qz2"  # an inventory secret the application wrote into a log line
PODS = ("api-7c9b4-0", "api-7c9b4-1", "api-7c9b4-2")
EXPECTED = ("expected deployment api: at most 5 lines matching ERROR|FATAL in the last 10m, each container's window "
            "read whole")


def objects(ns: str) -> list[Obj]:
    """A healthy `api` (3 pods, one container `app` each, scheduled) and another app's pod the selector skips."""
    objs = kt.healthy(ns)
    for p in (o for o in objs.values() if o["kind"] == "Pod"):
        p["spec"] = {"nodeName": "node-1", "containers": [{"name": "app"}]}
    return list(objs.values())


def quiet(logs: PodLogs, ns: str) -> None:
    """What the healthy namespace's pods wrote: INFO, two ERRORs in the window, old ERRORs before it."""
    for pod in PODS:
        logs.write(ns, pod, "app", every(3600, 30, "ERROR before the window {i}")
                   + every(300, 20, "INFO GET /health 200"))
    logs.write(ns, PODS[0], "app", every(120, 2, "ERROR upstream timeout {i}", spacing=30))
    logs.write(ns, "other-1a2b3-0", "app", every(60, 50, "FATAL other app {i}"))  # not selected by app=api


def config(ns: str, kubeconfig: Path, **scan: Any) -> Kubernetes:
    return Kubernetes(namespace=ns, kubeconfig=str(kubeconfig), timeout_s=5, logs={
        "deployment/api": {"pattern": "ERROR|FATAL", "window": "10m", "max_matches": 5, **scan}})


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, PodLogs]]:
    with Emulator(tmp_path_factory.mktemp("k8s") / "kubeconfig") as emulator:
        yield emulator, serve_logs(emulator)


@pytest.fixture(scope="module")
def conns() -> Iterator[Connections]:
    with Connections() as c:
        yield c


def check(emu: tuple[Emulator, PodLogs], conns: Connections, ns: str, objs: list[Obj] | None = None,
          **scan: Any) -> Result:
    emulator, _ = emu
    emulator.put(objs if objs is not None else objects(ns))
    return k8s.logs(Target("kubernetes", ns, config(ns, emulator.kubeconfig, **scan)), conns)


def test_healthy_pods_pass_with_their_count(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    quiet(emu[1], "healthy")
    result = check(emu, conns, "healthy")
    assert result.ok is True, result.explain()
    assert result.observed == ("deployment api: 2 lines matching ERROR|FATAL in the last 10m (3 pod(s), 3 container "
                               "log(s) read)")
    evidence = result.evidence["deployment/api"]
    assert evidence["pods"] == list(PODS)  # the other app's pod is not selected
    assert evidence["logs"]["api-7c9b4-0/app"] == {"matches": 2, "lines": 22, "bytes": evidence["logs"][
        "api-7c9b4-0/app"]["bytes"], "cut": None, "unread": None}
    # one LIST of pods, one of deployments, then one GET of a log per container, each bounded and timestamped
    seen = [r for r in emu[0].requests() if r.namespace == "healthy"]
    assert [(r.action, r.subresource) for r in seen][:2] == [(kmock.action.LIST, None)] * 2
    gets = [r.params for r in seen if r.subresource == "log"]
    assert gets == [{"container": "app", "sinceSeconds": "600", "tailLines": "10000", "limitBytes": "4194304",
                     "timestamps": "true"}] * 3


def test_errors_over_the_ceiling_fail_naming_pod_container_count_and_first_lines(
        emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    quiet(emu[1], "noisy")
    emu[1].write("noisy", PODS[1], "app", every(240, 7, "ERROR db pool exhausted {i}", spacing=10))
    result = check(emu, conns, "noisy", samples=2)
    assert result.explain() == (
        "kubernetes[noisy]: deployment api: 9 lines matching ERROR|FATAL in the last 10m (api-7c9b4-0/app: 2, "
        "api-7c9b4-1/app: 7); first: api-7c9b4-1/app: ERROR db pool exhausted 0 | api-7c9b4-1/app: ERROR db pool "
        f"exhausted 1, {EXPECTED}")


def test_every_container_and_the_previous_instance_are_read(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    """A sidecar's errors count; a container restarted 90 s ago: the crash is in its previous instance's log."""
    objs = objects("sidecar")
    pod = next(o for o in objs if o["metadata"]["name"] == PODS[2])
    pod["spec"]["containers"].append({"name": "envoy"})
    status = pod["status"]["containerStatuses"][0]
    status.update(restartCount=1, lastState={"terminated": {"exitCode": 1, "reason": "Error",
                                                             "finishedAt": kt.ago(90)}})
    pod["status"]["containerStatuses"].append({**status, "name": "envoy", "restartCount": 0, "lastState": {}})
    quiet(emu[1], "sidecar")
    emu[1].write("sidecar", PODS[2], "envoy", every(100, 3, "ERROR upstream connect error {i}"))
    emu[1].write("sidecar", PODS[2], "app", every(95, 2, "FATAL out of memory {i}"), previous=True)
    result = check(emu, conns, "sidecar", objs)
    assert result.explain() == (
        "kubernetes[sidecar]: deployment api: 7 lines matching ERROR|FATAL in the last 10m (api-7c9b4-0/app: 2, "
        "api-7c9b4-2/app (previous): 2, api-7c9b4-2/envoy: 3); first: api-7c9b4-0/app: ERROR upstream timeout 0 | "
        "api-7c9b4-2/envoy: ERROR upstream connect error 0 | api-7c9b4-2/envoy: ERROR upstream connect error 1, "
        f"{EXPECTED}")


def test_a_window_longer_than_the_bounds_fails(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    """A chatty pod: the server sends its newest 50 lines, or 1 KiB; the errors could be in what was not read."""
    quiet(emu[1], "chatty")
    result = check(emu, conns, "chatty", tail_lines=15)
    assert result.explain() == (
        "kubernetes[chatty]: deployment api: api-7c9b4-0/app: only the newest 15 lines read (raise tail_lines), which "
        "the window reaches past, api-7c9b4-1/app: only the newest 15 lines read (raise tail_lines), which the window "
        "reaches past, api-7c9b4-2/app: only the newest 15 lines read (raise tail_lines), which the window reaches "
        f"past, {EXPECTED}")
    result = check(emu, conns, "chatty", limit_bytes="1KiB")
    assert result.ok is False
    assert "api-7c9b4-0/app: only 1.0 KiB read (raise limit_bytes), which the window reaches past" in result.observed
    assert result.evidence["deployment/api"]["logs"]["api-7c9b4-0/app"]["bytes"] == 1024


def test_a_server_ignoring_limit_bytes_is_read_to_the_cap(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    """A server that sends the whole log whatever limitBytes says: read to limitBytes + 64 KiB, then dropped."""
    quiet(emu[1], "unlimited")
    emu[1].write("unlimited", PODS[0], "app", every(200, 5000, "INFO " + "x" * 95))  # 500 kB
    emu[1].unlimited.add("unlimited")
    result = check(emu, conns, "unlimited", limit_bytes="1KiB")
    assert result.ok is False
    assert ("api-7c9b4-0/app: the API server sent more than limitBytes (1.0 KiB); 1.0 KiB read, which the window "
            "reaches past") in result.observed, result.observed
    assert result.evidence["deployment/api"]["logs"]["api-7c9b4-0/app"]["bytes"] == 1024 + (64 << 10)


def test_a_kubectl_selector_picks_the_pods(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    """`kubectl logs --selector=app | grep -i error` (every pod with an app label): the other app's FATALs count.
    That pod is in CrashLoopBackOff: the kubelet serves its last run's log, read once (not again as previous)."""
    emulator, logs = emu
    objs = objects("selected")
    other = next(o for o in objs if o["metadata"]["name"] == "other-1a2b3-0")
    other["status"]["containerStatuses"][0]["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": kt.ago(30)}}
    emulator.put(objs)
    quiet(logs, "selected")
    logs.write("selected", "other-1a2b3-0", "app", every(60, 50, "FATAL other app {i}"), previous=True)
    cfg = Kubernetes(namespace="selected", kubeconfig=str(emulator.kubeconfig), timeout_s=5, logs={
        "every-app": {"selector": "app", "pattern": "(?i)fatal", "max_matches": 10, "samples": 1},
        "not-api": {"selector": "app notin (api),!canary", "pattern": "(?i)fatal", "max_matches": 100}})
    result = k8s.logs(Target("kubernetes", "selected", cfg), conns)
    assert result.explain() == (
        "kubernetes[selected]: pods app: 50 lines matching (?i)fatal in the last 10m (other-1a2b3-0/app: 50); first: "
        "other-1a2b3-0/app: FATAL other app 0, expected pods app: at most 10 lines matching (?i)fatal in the last 10m, "
        "each container's window read whole; pods app notin (api),!canary: at most 100 lines matching (?i)fatal in "
        "the last 10m, each container's window read whole")
    assert result.evidence["not-api"]["pods"] == ["other-1a2b3-0"]  # within its ceiling of 100
    assert result.evidence["not-api"]["matches"] == 50
    assert result.evidence["every-app"]["pods"] == [*PODS, "other-1a2b3-0"]


def test_a_log_that_trickles_ends_at_the_deadline(emu: tuple[Emulator, PodLogs]) -> None:
    """The API server streams a log a line per 0.1 s and never ends it (urllib3's read timeout never trips): the
    check ends at its 1 s deadline, naming the API server, its socket shut (a fresh client: nothing else waits)."""
    emulator, logs = emu
    emulator.put(objects("trickle"))
    logs.trickling.add("trickle")
    cfg = config("trickle", emulator.kubeconfig).model_copy(update={"timeout_s": 1.0})
    with Connections() as fresh:
        result = run(k8s.logs, Target("kubernetes", "trickle", cfg), fresh)
    # run() returned from an endless stream, with the deadline's finding: that is the bound (its time: the README's)
    assert result.observed == f"API server {emulator.url}: timed out, no answer within 1 s", result.observed


def test_a_container_not_started_is_not_read_and_named(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    objs = objects("starting")
    pod = next(o for o in objs if o["metadata"]["name"] == PODS[0])
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    quiet(emu[1], "starting")
    result = check(emu, conns, "starting", objs)
    assert result.ok is True, result.explain()
    assert result.observed == (
        "deployment api: 0 lines matching ERROR|FATAL in the last 10m (3 pod(s), 2 container log(s) read); not "
        'read: api-7c9b4-0/app: container "app" in pod "api-7c9b4-0" is waiting to start: ContainerCreating')


def test_missing_workload_and_forbidden_logs(emu: tuple[Emulator, PodLogs], conns: Connections) -> None:
    result = check(emu, conns, "empty", objs=[])
    assert result.explain() == f"kubernetes[empty]: deployment api not found in namespace empty, {EXPECTED}"
    denied = ('pods "api-7c9b4-0" is forbidden: User "system:serviceaccount:ci:opsproof" cannot get resource '
              '"pods/log" in API group "" in the namespace "rbac"')

    emu[1].refuse("rbac", 403, "Forbidden", denied)  # the role lists pods but lacks pods/log: a common RBAC gap
    result = check(emu, conns, "rbac")
    assert result.explain() == (f"kubernetes[rbac]: unreachable (ApiError: /api/v1/namespaces/rbac/pods/api-7c9b4-0/"
                                f"log?container=app: 403 Forbidden: {denied}), {EXPECTED}")


def test_the_emulator_answers_as_the_api_server(emu: tuple[Emulator, PodLogs]) -> None:
    """The stand-in, through the kubernetes client's own read_namespaced_pod_log: the query parameters, the
    instance served, the errors of the API server and the kubelet, text/plain."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    emulator, logs = emu
    objs = objects("faithful")
    two = next(o for o in objs if o["metadata"]["name"] == PODS[1])
    two["spec"]["containers"].append({"name": "envoy"})
    emulator.put(objs)
    now = datetime.now(UTC)
    logs.write("faithful", PODS[0], "app", [(now - timedelta(seconds=s), f"line {s}") for s in (300, 30, 20, 10)])
    with config.new_client_from_config(str(emulator.kubeconfig)) as api_client:  # type: ignore[no-untyped-call]
        _read_as_the_client_does(client.CoreV1Api(api_client).read_namespaced_pod_log, ApiException)


def _read_as_the_client_does(read: Any, ApiException: type[Exception]) -> None:
    assert read(PODS[0], "faithful") == "line 300\nline 30\nline 20\nline 10\n"  # one container: no need to name it
    assert read(PODS[0], "faithful", tail_lines=2) == "line 20\nline 10\n"
    assert read(PODS[0], "faithful", since_seconds=60) == "line 30\nline 20\nline 10\n"
    assert read(PODS[0], "faithful", limit_bytes=12) == "line 300\nlin"  # cut mid-line, as the kubelet does
    stamped = read(PODS[0], "faithful", tail_lines=1, timestamps=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z line 10\n", stamped), stamped
    assert rfc3339nano(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"
    response = read(PODS[0], "faithful", _preload_content=False)
    assert response.headers["Content-Type"].startswith("text/plain")
    response.release_conn()
    for call, status, message in (
            (lambda: read("gone", "faithful"), 404, 'pods "gone" not found'),
            (lambda: read(PODS[1], "faithful"), 400,
             f"a container name must be specified for pod {PODS[1]}, choose one of: [app envoy]"),
            (lambda: read(PODS[0], "faithful", container="envoy"), 400,
             f"container envoy is not valid for pod {PODS[0]}"),
            (lambda: read(PODS[0], "faithful", previous=True), 400,
             f'previous terminated container "app" in pod "{PODS[0]}" not found'),
            (lambda: read(PODS[0], "faithful", since_seconds=0), 422,
             f'PodLogOptions "{PODS[0]}" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0')):
        with pytest.raises(ApiException) as raised:
            call()
        assert raised.value.status == status  # type: ignore[attr-defined]
        assert yaml.safe_load(raised.value.body)["message"] == message  # type: ignore[attr-defined]


def test_as_a_suite(emu: tuple[Emulator, PodLogs], tmp_path: Path) -> None:
    """The post-deploy suite in a pytest subprocess: exactly the noisy namespace's check fails, its line masked."""
    emulator, logs = emu
    for ns in ("suite-ok", "suite-noisy"):
        emulator.put(objects(ns))
        quiet(logs, ns)
    line = f"ERROR redis AUTH {SECRET} refused"
    logs.write("suite-noisy", PODS[2], "app", every(200, 6, line))  # before api-7c9b4-0's two: the first
    entry = {"kubeconfig": str(emulator.kubeconfig), "logs": {"deployment/api": {
        "pattern": "ERROR|FATAL", "window": "10m", "max_matches": 5, "samples": 1}}}
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"environment": "emulated",
                                         "redis": {"cache": {"url": "redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"}},
                                         "kubernetes": {"ok": {"namespace": "suite-ok", **entry},
                                                        "noisy": {"namespace": "suite-noisy", **entry}}}))
    run = run_suite(inventory, tmp_path / "out", suite="checks/post_deploy/test_06_logs.py",
                    env={"REDIS_PASSWORD": SECRET})
    assert run.code == 1, run.output
    assert run.failed == {"kubernetes.logs@kubernetes[noisy]"}, run.output
    assert {r["target"] for r in run.records if r["outcome"] == "passed"} == {"kubernetes[ok]"}
    assert ("kubernetes[noisy]: deployment api: 8 lines matching ERROR|FATAL in the last 10m (api-7c9b4-0/app: 2, "
            f"api-7c9b4-2/app: 6); first: api-7c9b4-2/app: {line.replace(SECRET, '***')}, {EXPECTED}") in run.output
    written = run.output + run.junit + "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert SECRET not in written, run.output
