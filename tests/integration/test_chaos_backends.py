"""The target backends on a stack that is not the sandbox: a Redis container started here from the sandbox image
with Compose labels (found by its service label), and HTTP services started by hand (a pid file; a stop/start
pair of commands). Each fault is injected, seen failing by opsproof's own probe, found by the audit while it is
on, rolled back, rolled back again (nothing to do), and audited clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from opsproof.chaos import audit, probes, run, targets
from opsproof.chaos.context import ChaosError
from opsproof.util.poll import wait_until
from opsproof.util.process import free_port, proc_state

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.xdist_group("chaos-backends")]
LABEL = {"org.opsproof.test": "h23"}
PROJECT = "opsproof-h23-stack"


@pytest.fixture(scope="module")
def stack(docker_client: docker.DockerClient, sandbox_image: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    """A one-service Compose-style stack: network and container labelled as Compose labels them (and as ours)."""
    name = f"{PROJECT}-{os.getpid()}"
    network = docker_client.networks.create(name, labels=LABEL)
    port = free_port()  # a fixed host port: a reconnected container gets its port back (an ephemeral one moves)
    container = None
    try:
        container = docker_client.containers.run(
            sandbox_image, ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""],
            name=f"{name}-cache-1", detach=True, network=name, ports={"6379/tcp": ("127.0.0.1", port)},
            labels={**LABEL, "com.docker.compose.service": "cache", "com.docker.compose.project": name})
        folder = tmp_path_factory.mktemp("stack")
        inventory = folder / "inventory.yaml"
        inventory.write_text(textwrap.dedent(f"""\
            environment: compose-h23
            redis:
              cache: {{url: "redis://127.0.0.1:{port}/0", timeout_s: 0.5}}
            chaos:
              containers:
                cache: {{service: cache, project: {name}}}
            """))
        cfg = {"opsproof_inventory": str(inventory)}
        wait_until(lambda: probes.check("redis.ping", configuration=cfg), 20, "redis in the container answering")
        yield {"cfg": cfg, "container": container, "network": name}
    finally:
        if container is not None:
            container.remove(force=True)
        network.remove()


@pytest.fixture(autouse=True)
def own_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the user's fault journal, this test's own
    run.begin()
    yield
    run.begin()  # the next test (in this worker) starts a run of its own


def _fails(check: str, cfg: dict[str, Any], target: str | None = None) -> str:
    try:
        probes.check(check, target, configuration=cfg)
    except ChaosError as e:
        return str(e)
    raise AssertionError(f"{check} passed during the fault")


@pytest.mark.parametrize(("fault", "left"), [("pause", "paused"), ("stop", "exited"), ("kill", "exited"),
                                              ("disconnect", "disconnected from network")])
def test_a_container_fault_is_seen_rolled_back_and_audited(stack: dict[str, Any], fault: str, left: str) -> None:
    cfg = stack["cfg"]
    done = targets.inject_fault("cache", fault, configuration=cfg)
    assert done["containers"] == [stack["container"].name]
    assert done["backend"] == "docker"
    assert "redis[cache]" in _fails("redis.ping", cfg)
    # the backend's part of the audit (the whole audit would also time out on the frozen Redis's own checks)
    [(what, check)] = targets.audit_checks(cfg)
    assert what == f"docker target cache after {fault}"
    assert left in check()
    undone = targets.rollback_fault("cache", fault, configuration=cfg)
    assert undone["actions"], undone
    wait_until(lambda: probes.check("redis.ping", configuration=cfg), 20, "redis answering after the rollback")
    assert targets.rollback_fault("cache", fault, configuration=cfg)["actions"] == []  # twice: nothing to do
    assert audit.audit(cfg).to_dict()["problems"] == []


def test_a_restart_comes_back_by_itself_and_leaves_nothing_to_roll_back(stack: dict[str, Any]) -> None:
    cfg = stack["cfg"]
    stack["container"].reload()
    before = stack["container"].attrs["State"]["StartedAt"]
    targets.inject_fault("cache", "restart", timeout=1, configuration=cfg)
    stack["container"].reload()
    assert stack["container"].attrs["State"]["StartedAt"] != before
    wait_until(lambda: probes.check("redis.ping", configuration=cfg), 20, "redis answering after the restart")
    assert targets.rollback_fault("cache", "restart", configuration=cfg)["actions"] == []
    assert audit.audit(cfg).clean


def test_a_rollback_after_the_container_recovered_by_itself_does_nothing(stack: dict[str, Any]) -> None:
    cfg = stack["cfg"]
    targets.inject_fault("cache", "pause", configuration=cfg)
    stack["container"].unpause()  # someone (a restart policy, an operator) got there first
    assert targets.rollback_fault("cache", "pause", configuration=cfg)["actions"] == []
    assert audit.audit(cfg).clean


SERVER = textwrap.dedent("""
    import http.server, os, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *a): pass
    s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
    s.handle_error = lambda *a: None  # a probe that gave up early is no news
    open(sys.argv[2] + ".tmp", "w").write(str(os.getpid())); os.replace(sys.argv[2] + ".tmp", sys.argv[2])
    s.serve_forever()
""")


@pytest.fixture
def web(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An HTTP service started by hand, writing its pid file, and the command that starts it again."""
    port, pidfile, script = free_port(), tmp_path / "web.pid", tmp_path / "web.py"
    script.write_text(SERVER)
    start = [sys.executable, str(script), str(port), str(pidfile)]
    first = subprocess.Popen(start)
    inventory = tmp_path / "inventory.yaml"
    cfg = {"opsproof_inventory": str(inventory)}
    try:
        yield {"port": port, "pidfile": pidfile, "start": start, "inventory": inventory, "cfg": cfg}
    finally:
        first.kill()
        first.wait()
        for child in run.current().children:
            child.kill()
            child.wait()
        if pidfile.exists():  # whatever a rollback started
            pid = int(pidfile.read_text())
            if proc_state(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)


def _inventory(web: dict[str, Any], process: str) -> dict[str, Any]:
    web["inventory"].write_text(f"environment: hand-started\nhttp:\n  web: {{url: 'http://127.0.0.1:{web['port']}', "
                                f"health: /, ready: null, timeout_s: 0.5}}\nchaos:\n  processes:\n    web: {process}\n")
    cfg: dict[str, Any] = web["cfg"]
    wait_until(lambda: probes.check("http.health", configuration=cfg), 10, "the web service answering")
    return cfg


def test_a_process_by_pid_file_is_paused_killed_and_brought_back(web: dict[str, Any]) -> None:
    start = ", ".join(f'"{a}"' for a in web["start"])
    cfg = _inventory(web, f"{{pidfile: '{web['pidfile']}', start: [{start}]}}")
    first = int(web["pidfile"].read_text())
    targets.inject_fault("web", "pause", configuration=cfg)
    assert proc_state(first) == "T"
    assert "http[web]" in _fails("http.health", cfg)
    assert any("stopped (state T)" in p for p in audit.audit(cfg).problems)
    assert targets.rollback_fault("web", "pause", configuration=cfg)["actions"] == ["resumed"]
    assert targets.rollback_fault("web", "pause", configuration=cfg)["actions"] == []
    probes.check("http.health", configuration=cfg)
    targets.inject_fault("web", "kill", configuration=cfg)
    assert proc_state(first) in (None, "Z")
    assert any("not running" in p for p in audit.audit(cfg).problems)
    assert targets.rollback_fault("web", "kill", configuration=cfg)["actions"] == ["started"]
    wait_until(lambda: probes.check("http.health", configuration=cfg), 10, "the web service back")
    assert int(web["pidfile"].read_text()) != first
    assert targets.rollback_fault("web", "kill", configuration=cfg)["actions"] == []
    assert audit.audit(cfg).clean, audit.audit(cfg).problems


def test_a_process_by_a_pair_of_commands_is_stopped_and_started(web: dict[str, Any]) -> None:
    f = web["pidfile"]
    start = " ".join(web["start"])
    probe = f"import socket; socket.create_connection(('127.0.0.1', {web['port']}), 1)"
    cfg = _inventory(web, f"{{stop: [sh, -c, 'kill $(cat {f})'], start: [sh, -c, '{start} &'], "
                          f"check: [{sys.executable}, -c, \"{probe}\"]}}")
    targets.inject_fault("web", "stop", configuration=cfg)
    assert "http[web]" in _fails("http.health", cfg)
    assert any("not running" in p for p in audit.audit(cfg).problems)
    assert targets.rollback_fault("web", "stop", configuration=cfg)["actions"] == ["started"]
    wait_until(lambda: probes.check("http.health", configuration=cfg), 10, "the web service back")
    assert targets.rollback_fault("web", "stop", configuration=cfg)["actions"] == []
    assert audit.audit(cfg).clean, audit.audit(cfg).problems
