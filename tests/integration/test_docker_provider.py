"""The sandbox's docker provider: one sandbox of containers for the module, the suites run unchanged against it,
containers broken for real (stopped, paused, cut off their network) fail exactly the expected checks, and no
container, network or volume outlives an up that failed, was interrupted (SIGINT, SIGTERM) or was taken down from
another process."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from support import REPO, SandboxHelper, interruptible, run_suite, traffic
from test_smoke_sandbox import ALL_CHECKS, REDIS_CHECKS

from opsproof.sandbox import docker_provider
from opsproof.sandbox.docker_provider import EXTRA_LABELS_ENV, LABEL, DockerSandbox, sandbox_id
from opsproof.sandbox.process import SandboxError
from opsproof.util.poll import wait_until
from opsproof.util.process import owned_dir

if TYPE_CHECKING:
    import docker

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.xdist_group("docker-sandbox")]

TEST_LABEL = "org.opsproof.test=h21"  # PREAMBLE rule 10: every container these tests start carries it


def message(run: Any, check: str) -> str:
    record = run.record(check)
    return f"{record['target']}: {record['observed']}, expected {record['expected']}"


def leftovers(client: docker.DockerClient, label: str) -> list[str]:
    """Containers, networks and volumes still carrying ``label``."""
    filters = {"label": label}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=filters)]
            + [f"network {n.name}" for n in client.networks.list(filters=filters)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=filters)])


@pytest.fixture(scope="module")
def labelled() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(EXTRA_LABELS_ENV, TEST_LABEL)
        yield


@pytest.fixture(scope="module")
def docker_sandbox(labelled: None, sandbox_image: str, docker_client: docker.DockerClient) -> Iterator[SandboxHelper]:
    """One sandbox of containers for the module; taken down by `opsproof sandbox down` in another process."""
    state = owned_dir("opsproof-test-docker-", Path("/tmp"))
    box = DockerSandbox(state, ephemeral=True, image=sandbox_image)
    try:
        box.up()
        yield SandboxHelper(box)
    finally:
        done = subprocess.run([sys.executable, "-m", "opsproof.cli", "sandbox", "down", "--dir", str(state)],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        left = leftovers(docker_client, f"{LABEL}={box.id}")
        box.down()  # whatever the other process missed, so a failure here leaves nothing behind either
        shutil.rmtree(state, ignore_errors=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "no container, network or volume left" in done.stdout
        assert left == [], f"`opsproof sandbox down` from another process left {left}"
        assert not state.exists()


@pytest.fixture
def docker_healthy(docker_sandbox: SandboxHelper) -> Iterator[SandboxHelper]:
    """The docker sandbox healthy before the test, and every container mended after it (unpaused, reconnected,
    started again) until monitoring sees all of it healthy."""
    docker_sandbox.wait_healthy()
    yield docker_sandbox
    box = docker_sandbox.box
    assert isinstance(box, DockerSandbox)
    for name in box.meta["containers"]:
        box.restore(name)
    docker_sandbox.wait_healthy()


def test_the_smoke_suite_passes_unchanged(docker_healthy: SandboxHelper, tmp_path: Path) -> None:
    box = docker_healthy.box
    assert box.meta["provider"] == "docker"
    inventory = box.inventory_path.read_text()
    assert "127.0.0.1:" in inventory
    assert "0.0.0.0" not in inventory
    run = run_suite(docker_healthy.inventory, tmp_path)
    assert run.code == 0, run.output
    written = run.output + run.junit + (tmp_path / "results.jsonl").read_text()
    assert [p for p in box.meta["passwords"].values() if p in written] == [], "a sandbox password in the output"
    # every check kind the process sandbox passes, passed here (the hit rate too: the up warmed the cache)
    assert {r["check"] for r in run.records if r["outcome"] == "passed"} == ALL_CHECKS, run.output
    # published on loopback only
    for name in box.meta["containers"]:
        for bindings in (box.container(name).attrs["NetworkSettings"]["Ports"] or {}).values():
            assert {b["HostIp"] for b in bindings or []} <= {"127.0.0.1"}, name


def test_the_post_deploy_gate_passes(docker_healthy: SandboxHelper, tmp_path: Path) -> None:
    app = docker_healthy.box.url("app")
    docker_healthy.wait_quiet(6)  # the up's warm-up traffic is out of the window before the deploy
    httpx.post(app + "/admin/release", json={"version": "v1", "latency_ms": 60}, timeout=5).raise_for_status()
    try:
        traffic(app, 3)
        docker_healthy.wait_scrapes(1)
        at = dt.datetime.now(dt.UTC).isoformat()
        httpx.post(app + "/admin/release", json={"version": "v2", "latency_ms": 60}, timeout=5).raise_for_status()
        traffic(app, 3)
        docker_healthy.wait_scrapes(2)
        run = run_suite(docker_healthy.inventory, tmp_path, suite="checks/post_deploy",
                        env={"OPSPROOF_DEPLOYED_AT": at})
    finally:
        httpx.post(app + "/admin/release", json={"version": "v1", "error_rate": 0, "latency_ms": 0}, timeout=5)
    assert run.code == 0, run.output
    passed = {r["check"] for r in run.records if r["outcome"] == "passed"}
    assert {"slo.error_ratio", "slo.latency_p95", "slo.canary_errors", "slo.canary_latency"} <= passed


def test_a_stopped_container(docker_healthy: SandboxHelper, tmp_path: Path) -> None:
    docker_healthy.box.stop_service("redis")
    status = subprocess.run([sys.executable, "-m", "opsproof.cli", "sandbox", "status", "--dir",
                             str(docker_healthy.box.dir)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert status.returncode == 3, status.stdout + status.stderr  # another process reads the provider from the folder
    assert re.search(r"^  redis +down 127\.0\.0\.1:\d+$", status.stdout, re.M), status.stdout
    assert re.search(r"^  postgres +up 127\.0\.0\.1:\d+$", status.stdout, re.M), status.stdout
    run = run_suite(docker_healthy.inventory, tmp_path)
    assert run.code == 1
    assert run.failed_checks == {"redis.ping", "http.health"}, run.output
    assert set(run.blocked) == REDIS_CHECKS - {"redis.ping"}
    port = docker_healthy.box.port("redis")
    assert message(run, "redis.ping").startswith(f"redis[cache]: unreachable (ConnectionError: Error 111 "
                                                 f"connecting to 127.0.0.1:{port}. Connection refused.)")
    assert message(run, "redis.ping").endswith("expected PONG")
    assert message(run, "http.health") == (
        "http[app]: GET /health → status='degraded', expected HTTP 200 with status='ok'")


def test_a_paused_container(docker_healthy: SandboxHelper, tmp_path: Path) -> None:
    """A frozen Redis holds its port and answers nothing: every client of it waits out its own timeout — the
    check's (3 s), the app's (so /health is slow and degraded) and the exporter's (Prometheus marks it down)."""
    docker_healthy.box.container("redis").pause()
    assert docker_healthy.box.status()["redis"].startswith("paused")
    wait_until(lambda: docker_healthy.target_health("redis") == "down", 15, "Prometheus sees the redis job down")
    run = run_suite(docker_healthy.inventory, tmp_path)
    assert run.failed_checks == {"redis.ping", "http.health", "http.latency", "prometheus.targets"}, run.output
    assert message(run, "redis.ping") == "redis[cache]: no answer within 3 s (the server sent nothing), expected PONG"
    assert message(run, "http.health").startswith("http[app]: GET /health → status='degraded', expected HTTP 200")
    assert message(run, "http.latency").startswith("http[app]: GET /health took ")
    assert "job redis target redis-exporter:9121 is down" in message(run, "prometheus.targets")


def test_a_container_cut_off_its_network(docker_healthy: SandboxHelper, tmp_path: Path) -> None:
    box = docker_healthy.box
    assert isinstance(box, DockerSandbox)
    box.network().disconnect(box.container("redis_exporter"))
    assert box.status()["redis_exporter"].startswith("disconnected")
    wait_until(lambda: docker_healthy.target_health("redis") == "down", 15, "Prometheus sees the redis job down")
    run = run_suite(docker_healthy.inventory, tmp_path)
    assert run.failed_checks == {"prometheus.targets"}, run.output
    text = message(run, "prometheus.targets")
    assert text.startswith("prometheus[main]: job redis target redis-exporter:9121 is down (")
    assert "redis 0/1 up" in text
    assert "app 1/1 up" in text


def test_chaos_experiments_run_unchanged(docker_healthy: SandboxHelper, tmp_path: Path) -> None:
    """The sandbox's own experiments, as written, on its containers: the app killed inside its container (its
    keeper restarts it there) and PostgreSQL's server killed (its container ends; the remediation starts it)."""
    box = docker_healthy.box
    assert isinstance(box, DockerSandbox)
    app_pid, pg_pid = box.service_pid("app"), box.service_pid("postgres")
    app_started, pg_started = (box.container(n).attrs["State"]["StartedAt"] for n in ("app", "postgres"))
    out = tmp_path / "out"
    began = time.time()
    experiments = [arg for name in ("app-killed", "postgres-down")
                   for arg in ("--experiments", str(REPO / "chaos" / "experiments" / f"{name}.yaml"))]
    done = subprocess.run([sys.executable, "-m", "pytest", "chaos", "-p", "no:cacheprovider", "-q", "-s",
                           "--sandbox-dir", str(box.dir), *experiments, "--opsproof-out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
    docs = {json.loads(f.read_text())["experiment"]: json.loads(f.read_text()) for f in (out / "chaos").glob("*.json")}
    app = docs["Application killed, restarted by its supervisor"]
    pg = docs["PostgreSQL down"]
    for doc in (app, pg):
        assert doc["ok"], doc["failures"]
        assert doc["audit"]["problems"] == []
        [detection] = doc["detections"]
        assert detection["truth_s"] <= detection["budget_s"], detection
    assert [m["action"] for m in app["timeline"] if m["event"] == "remediated"] == ["supervisor restarted app"]
    # since the run began (not since the fault's mark: the keeper may log the exit before the fault's own stamp,
    # taken once kill() has returned)
    events = [json.loads(line) for line in (box.dir / "app" / "keeper.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e["at"] > began] == ["exited", "started"], events
    # the app's process died inside its container, which ran on; PostgreSQL's container ended and was started
    assert box.container("app").attrs["State"]["StartedAt"] == app_started
    assert box.container("postgres").attrs["State"]["StartedAt"] != pg_started
    assert box.service_pid("app") not in (None, app_pid)
    assert box.service_pid("postgres") not in (None, pg_pid)


# --- teardown guarantees ------------------------------------------------------------------------------------


def test_a_failed_up_leaves_nothing(labelled: None, sandbox_image: str, docker_client: docker.DockerClient,
                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = docker_provider.services

    def broken(state_dir: Path, pw: dict[str, str]) -> dict[str, docker_provider.Service]:
        found = real(state_dir, pw)
        found["redis"] = docker_provider.Service("redis", ["sh", "-c", "echo no redis today; exit 3"],
                                                 ready_log="Ready to accept connections")
        return found

    monkeypatch.setattr(docker_provider, "services", broken)
    box = DockerSandbox(tmp_path / "state", image=sandbox_image)
    with pytest.raises(SandboxError, match=r"^redis did not start \(.*\); last lines of its log:\nno redis today"):
        box.up()
    assert leftovers(docker_client, f"{LABEL}={box.id}") == []
    assert not (tmp_path / "state").exists()


def test_an_interrupted_up_leaves_nothing(labelled: None, sandbox_image: str, docker_client: docker.DockerClient,
                                          tmp_path: Path) -> None:
    """Two real `opsproof sandbox up --provider docker`, at once: one gets SIGINT (Ctrl-C), the other SIGTERM,
    each while some of its containers run and others are not made yet."""
    signals = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
    states = {name: tmp_path / name for name in signals}
    labels = {name: f"{LABEL}={sandbox_id(state)}" for name, state in states.items()}
    children = {name: subprocess.Popen([sys.executable, "-m", "opsproof.cli", "sandbox", "up", "--provider", "docker",
                                        "--dir", str(state)], cwd=REPO, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible)
                for name, state in states.items()}
    outputs: dict[str, str] = {}
    left: dict[str, list[str]] = {}
    try:
        for name, child in children.items():
            wait_until(lambda n=name: len(docker_client.containers.list(filters={"label": labels[n]})) >= 1, 60,
                       f"a container of the sandbox to {name} running")
            child.send_signal(signals[name])
        for name, child in children.items():
            outputs[name], _ = child.communicate(timeout=60)
    finally:
        for name, child in children.items():
            if child.poll() is None:
                child.kill()
                child.wait(10)
            left[name] = leftovers(docker_client, labels[name])
            docker_provider.remove_labelled(docker_client, labels[name])
    assert children["SIGINT"].returncode == 130, outputs["SIGINT"]
    assert "opsproof: interrupted" in outputs["SIGINT"]
    assert children["SIGTERM"].returncode == 128 + signal.SIGTERM, outputs["SIGTERM"]
    assert left == {"SIGINT": [], "SIGTERM": []}, outputs
    assert not any(state.exists() for state in states.values())


def test_no_daemon_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "opsproof.cli", "sandbox", "up", "--provider", "docker",
                           "--dir", str(tmp_path / "state")], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert done.returncode != 0
    assert "--provider docker: no Docker daemon answers" in done.stderr, done.stderr
    assert "use the process provider (`opsproof sandbox up`)" in done.stderr
    assert "Traceback" not in done.stderr


# --- the users' fixture -------------------------------------------------------------------------------------

USER_TEST = '''
import subprocess, sys

def test_post_deploy_gate_on_my_containers(opsproof_environment):
    assert opsproof_environment.inventory.environment == "ci"
    done = subprocess.run([sys.executable, "-m", "pytest", "smoke", "--inventory", str(opsproof_environment.path),
                           "-p", "no:cacheprovider", "-q", "--opsproof-out", sys.argv[0] + "-out"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    print(done.stdout[-3000:], done.stderr[-2000:])
    assert done.returncode == 0
    assert " passed" in done.stdout
'''


def test_the_opsproof_environment_fixture(labelled: None, sandbox_image: str, docker_client: docker.DockerClient,
                                          tmp_path: Path) -> None:
    """A team's own test: containers from a spec (PostgreSQL and Redis of the sandbox image), the smoke suite
    against the inventory the fixture yields, and nothing left once its session ends."""
    pg = "/usr/lib/postgresql/15/bin"
    spec = {
        "environment": "ci",
        "services": {
            "db": {"image": sandbox_image, "user": "postgres", "env": {"PGPASSWORD": "ci-only-secret"},
                   "ports": [5432],
                   "command": ["sh", "-ec", f'printf %s "$PGPASSWORD" > /tmp/pw; {pg}/initdb -D /tmp/d -U postgres '
                               "--pwfile /tmp/pw --auth-host=scram-sha-256 >/dev/null; "
                               "echo 'host all all 0.0.0.0/0 scram-sha-256' >> /tmp/d/pg_hba.conf; "
                               f"exec {pg}/postgres -D /tmp/d -c listen_addresses='*' -c unix_socket_directories=/tmp"],
                   "wait": {"log": "database system is ready to accept connections"}},
            "cache": {"image": sandbox_image, "ports": [6379],
                      "command": ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""],
                      "wait": {"log": "Ready to accept connections"}},
        },
        "inventory": {
            "postgres": {"main": {"dsn": "postgresql://postgres:ci-only-secret@{db.host}:{db.port.5432}/postgres"}},
            "redis": {"cache": {"url": "redis://{cache.host}:{cache.port.6379}/0"}},
        },
    }
    import yaml

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "test_mine.py").write_text(f"REPO = {str(REPO)!r}\n" + USER_TEST)
    before = {c.id for c in docker_client.containers.list(all=True, filters={"label": TEST_LABEL})}
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_mine.py"), "-p", "no:cacheprovider",
                           "-p", "no:locust", "-p", "no:kmock",
                           "--opsproof-environment", str(tmp_path / "spec.yaml"), "-q", "-s",
                           "--rootdir", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
    assert "ci-only-secret" not in done.stdout + done.stderr
    left = [c.name for c in docker_client.containers.list(all=True, filters={"label": "org.opsproof.environment"})
            if c.id not in before]
    assert left == []
    assert docker_client.networks.list(filters={"label": "org.opsproof.environment"}) == []
