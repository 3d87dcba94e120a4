"""`pytest chaos --inventory FILE --experiments examples/chaos/container-paused.yaml` on a Compose-style stack that
is not the sandbox: a backend container (from the sandbox image, with Compose labels) that serves /health and
/metrics, the team's Prometheus (rule BackendDown: up{job="backend"} == 0) and Alertmanager started by hand on
loopback. The example experiment, unchanged, pauses the container through the docker backend: BackendDown fires
within its budget, the container is unpaused, the alert resolves, and the audit is clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from support import http_server, respond

from opsproof.util.poll import wait_until
from opsproof.util.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.xdist_group("chaos-backends")]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chaos" / "container-paused.yaml"
LABEL = {"org.opsproof.test": "h23"}
BACKEND = textwrap.dedent("""
    import http.server
    from prometheus_client import generate_latest
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body, kind = ((b'{"status": "ok"}', "application/json") if self.path == "/health"
                          else (generate_latest(), "text/plain; version=0.0.4"))
            self.send_response(200); self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
""")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def stack(docker_client: docker.DockerClient, sandbox_image: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    from http.server import BaseHTTPRequestHandler

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            respond(self, 200, b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    folder = tmp_path_factory.mktemp("compose")
    project = f"opsproof-h23-shop-{os.getpid()}"
    app_port, prom_port, am_port = free_port(), free_port(), free_port()
    network = docker_client.networks.create(project, labels=LABEL)
    procs: list[subprocess.Popen[bytes]] = []
    container = None
    try:
        container = docker_client.containers.run(
            sandbox_image, ["python3", "-c", BACKEND], name=f"{project}-backend-1", detach=True, network=project,
            ports={"8000/tcp": ("127.0.0.1", app_port)},
            labels={**LABEL, "com.docker.compose.service": "backend", "com.docker.compose.project": project})
        with http_server(Hook) as hook:
            (folder / "am.yml").write_text(yaml.safe_dump({
                "route": {"receiver": "team", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
                "receivers": [{"name": "team", "webhook_configs": [{"url": f"{hook}/hook", "send_resolved": True}]}]}))
            (folder / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "shop", "rules": [{
                "alert": "BackendDown", "expr": 'up{job="backend"} == 0', "for": "1s",
                "labels": {"severity": "page"}}]}]}))
            (folder / "prometheus.yml").write_text(yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "500ms"},
                "rule_files": [str(folder / "rules.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                "scrape_configs": [{"job_name": "backend",
                                    "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}]}]}))
            procs.append(subprocess.Popen(
                ["/usr/bin/prometheus-alertmanager", f"--config.file={folder / 'am.yml'}",
                 f"--storage.path={folder / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                 "--cluster.listen-address=", "--log.level=warn"], stderr=subprocess.DEVNULL))
            procs.append(subprocess.Popen(
                ["/usr/bin/prometheus", f"--config.file={folder / 'prometheus.yml'}",
                 f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                 "--log.level=warn"], stderr=subprocess.DEVNULL))
            prom, am = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
            wait_until(lambda: _ready(prom) and _ready(am), 30, "Prometheus and Alertmanager ready")
            wait_until(lambda: httpx.get(f"{prom}/api/v1/query", params={"query": 'up{job="backend"} == 1'},
                                         timeout=2).json()["data"]["result"] != [], 30, "the backend scraped up")
            inventory = folder / "inventory.yaml"
            inventory.write_text(yaml.safe_dump({
                "environment": "compose-h23",
                "http": {"backend": {"url": f"http://127.0.0.1:{app_port}", "health": "/health", "ready": None,
                                     "timeout_s": 1}},
                "prometheus": {"main": {"url": prom, "rules": ["BackendDown"]}},
                "alertmanager": {"main": {"url": am}},
                "chaos": {"containers": {"backend": {"service": "backend", "project": project}}}}))
            yield {"inventory": inventory, "folder": folder, "container": container}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if container is not None:
            container.remove(force=True)
        network.remove()


def test_the_example_experiment_runs_on_a_compose_stack_with_pytest_chaos(stack: dict[str, Any]) -> None:
    out = stack["folder"] / "out"
    env = {**os.environ, "XDG_STATE_HOME": str(stack["folder"] / "state")}
    done = subprocess.run([sys.executable, "-m", "pytest", "chaos", "-p", "no:locust", "-q", "-p", "no:cacheprovider",
                           "--inventory", str(stack["inventory"]), "--experiments", str(EXAMPLE),
                           "--opsproof-out", str(out), "-s"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    [evidence] = (out / "chaos").glob("*.json")
    doc = json.loads(evidence.read_text())
    assert doc["ok"], doc["failures"]
    [fault] = [m for m in doc["timeline"] if m["event"] == "fault_injected"]
    assert fault["fault"] == "pause backend (docker)"
    [detection] = doc["detections"]
    assert detection["alert"] == "BackendDown"
    assert detection["truth_s"] <= detection["budget_s"], detection
    events = [m["event"] for m in doc["timeline"]]
    assert {"firing", "remediated", "recovered", "resolved"} <= set(events), events
    assert doc["audit"]["problems"] == []
    assert any("docker target backend after pause" in c for c in doc["audit"]["checked"]), doc["audit"]
    stack["container"].reload()
    assert stack["container"].status == "running"


def test_validate_checks_the_docker_backend_against_the_live_daemon(stack: dict[str, Any]) -> None:
    from opsproof.chaos.validate import problems
    from opsproof.inventory import load

    assert problems(EXAMPLE, load(stack["inventory"]), sandbox=False) == []
