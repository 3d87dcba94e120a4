"""The pytest plugin as a user meets it, against a live loopback server: ids, exit codes, records, severities,
masking, Allure, xdist. Its usage errors (no target needed) are in tests/unit/test_plugin_usage.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from support import http_server, respond, run_suite


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        routes = {
            "/ok/health": (200, {"status": "ok"}),
            "/ok/ready": (200, {"ready": True}),
            "/degraded/health": (200, {"status": "degraded"}),
            "/degraded/ready": (503, {"ready": False}),
            "/echo/health": (500, {"status": "error", "seen_auth": self.headers.get("Authorization")}),
        }
        if self.path.startswith("/slow/"):
            time.sleep(0.3)
            status, body = 200, {"status": "ok"}
        else:
            status, body = routes.get(self.path, (404, {"error": "no such path"}))
        data = json.dumps(body).encode()
        respond(self, status, data)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with http_server(Handler) as url:
        yield url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_ids_records_and_exit_code(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, f"""
environment: staging
http:
  api: {{url: "{server}/ok", expect_json: {{status: ok}}}}
  web: {{url: "{server}/degraded", expect_json: {{status: ok}}}}
""")
    run = run_suite(inventory, tmp_path, "-vv", suite="smoke/test_http.py")
    assert run.code == 1
    assert "smoke/test_http.py::test_health[http[api]] PASSED" in run.output
    assert "smoke/test_http.py::test_health[http[web]] FAILED" in run.output
    assert run.failed == {"http.health@http[web]", "http.ready@http[web]"}
    assert "http[web]: GET /health → status='degraded', expected HTTP 200 with status='ok'" in run.output
    assert "opsproof: inventory" in run.output
    assert "environment staging, 2 targets" in run.output
    [rec] = [r for r in run.records if r["test"] == "smoke/test_http.py::test_ready[http[web]]"]
    assert rec["outcome"] == "failed"
    assert rec["verdict"] == "fail"
    assert rec["severity"] == "critical"
    assert rec["observed"] == "GET /ready → HTTP 503"
    assert rec["expected"] == "HTTP 2xx"
    assert rec["evidence"]["status"] == 503
    assert "<property name=\"opsproof\"" in run.junit
    assert "Traceback" not in run.output


def test_latency_budget(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, f"""
environment: staging
http:
  slow: {{url: "{server}/slow", latency_budget_ms: 100, ready: null}}
""")
    run = run_suite(inventory, tmp_path, suite="smoke/test_http.py")
    assert run.failed == {"http.latency@http[slow]"}, run.output
    rec = run.record("http.latency")
    assert rec["observed"].startswith("GET /health took 3")
    assert rec["expected"] == "≤ 100 ms"
    assert rec["severity"] == "high"


def test_severity_override_from_the_inventory(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, f"""
environment: staging
http:
  web: {{url: "{server}/degraded", severity: low, ready: null}}
""")
    run = run_suite(inventory, tmp_path, suite="smoke/test_http.py")
    assert {r["severity"] for r in run.records} == {"low"}


def test_secrets_are_masked_everywhere(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server echoes the bearer token back: the finding must still not show it."""
    inventory = write(tmp_path, f"""
environment: staging
http:
  echo: {{url: "{server}/echo", ready: null, headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
""")
    monkeypatch.setenv("API_TOKEN", "tok-s3cr3t-value-42")
    run = run_suite(inventory, tmp_path, "-vv", "--tb=long", "-rA", suite="smoke/test_http.py")
    assert run.code == 1
    records = (tmp_path / "results.jsonl").read_text()
    assert "tok-s3cr3t-value-42" not in run.output + run.junit + records
    assert '"seen_auth": "***"' in records


def test_not_configured_checks_are_deselected(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, f"environment: staging\nhttp:\n  api: {{url: '{server}/ok', ready: null}}\n")
    run = run_suite(inventory, tmp_path)
    assert run.code == 0
    assert {r["check"] for r in run.records} == {"http.health", "http.latency"}
    assert "check(s) deselected: not configured in this inventory" in run.output


def test_allure_gets_evidence_and_severity(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, "environment: staging\nhttp:\n"
                      f"  web: {{url: '{server}/degraded', ready: null, expect_json: {{status: ok}}}}\n")
    run = run_suite(inventory, tmp_path, f"--alluredir={tmp_path / 'allure'}", suite="smoke/test_http.py")
    assert run.code == 1
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    health = next(r for r in results if r["name"].startswith("test_health"))
    assert {"name": "severity", "value": "blocker"} in health["labels"]
    [attachment] = health["attachments"]
    evidence = json.loads((tmp_path / "allure" / attachment["source"]).read_text())
    assert evidence["observed"] == "GET /health → status='degraded'"


def test_under_xdist_records_reach_the_controller(server: str, tmp_path: Path) -> None:
    """pytest-xdist works too (each worker probes on demand); the controller writes the records."""
    inventory = write(tmp_path, f"""
environment: staging
http:
  api: {{url: "{server}/ok", expect_json: {{status: ok}}}}
  web: {{url: "{server}/degraded", expect_json: {{status: ok}}}}
""")
    run = run_suite(inventory, tmp_path, "-n", "2", suite="smoke/test_http.py")
    assert run.code == 1
    assert run.failed == {"http.health@http[web]", "http.ready@http[web]"}
    assert len(run.records) == 6
