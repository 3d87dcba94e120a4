"""A Prometheus or Alertmanager that answers badly — on a real loopback socket — is reported as the answer it gave
(HTTP 500, not JSON, ``status: error`` with Prometheus' error text, no ``data``), never as unreachable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from support import http_server, respond

from opsproof.inventory import loads
from opsproof.probes import Connections, ProbeSpec, Target, alertmanager, prometheus, slo

PARSE_ERROR = 'bad_data: 1:10: parse error: unexpected "}"'
# the first segment of the URL path → (status, content type, body) of every answer under it
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "http500": (500, "text/plain", b"internal error"),
    "html": (200, "text/html", b"<html>down for maintenance</html>"),
    "error": (400, "application/json",
              json.dumps({"status": "error", "errorType": "bad_data", "error": PARSE_ERROR}).encode()),
    "nodata": (200, "application/json", b'{"status": "success"}'),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, kind, body = ANSWERS.get(self.path.split("/")[1], (404, "text/plain", b"no such path"))
        respond(self, status, body, kind)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with http_server(Handler) as url:
        yield url


def check(server: str, mode: str, spec: ProbeSpec) -> str:
    inv = loads(f"""environment: t
prometheus:
  main: {{url: "{server}/{mode}", jobs_up: [app], timeout_s: 5}}
alertmanager:
  main: {{url: "{server}/{mode}", timeout_s: 5}}
slo:
  app: {{prometheus: main, selector: 'job="app"'}}
""")
    name = "app" if spec.kind == "slo" else "main"
    with Connections() as conns:
        result = spec(Target(spec.kind, name, inv.targets(spec.kind)[name]), conns)
    assert (result.ok, result.check) == (False, spec.check), result
    return result.explain()


CASES = [
    ("http500", prometheus.targets, "prometheus[main]: answered badly: HTTP 500 from /api/v1/targets, "
                                    "expected every target of jobs app up"),
    ("http500", alertmanager.ready, "alertmanager[main]: answered badly: HTTP 500 from /api/v2/status, "
                                    "expected cluster ready or disabled, config loaded"),
    ("html", prometheus.targets, "prometheus[main]: answered with invalid JSON from /api/v1/targets, "
                                 "expected every target of jobs app up"),
    ("html", alertmanager.ready, "alertmanager[main]: answered with invalid JSON from /api/v2/status, "
                                 "expected cluster ready or disabled, config loaded"),
    ("error", prometheus.targets, f"prometheus[main]: answered status=error: {PARSE_ERROR} "
                                  "(from /api/v1/targets), expected every target of jobs app up"),
    ("error", slo.error_ratio, f"slo[app]: answered status=error: {PARSE_ERROR} (from /api/v1/query), "
                               "expected error ratio ≤ 1.00% with ≥ 100 requests"),
    ("nodata", prometheus.targets, "prometheus[main]: answered without data from /api/v1/targets, "
                                   "expected every target of jobs app up"),
]


@pytest.mark.parametrize(("mode", "spec", "finding"), CASES, ids=[f"{m}-{s.check}" for m, s, _ in CASES])
def test_a_server_that_answered_badly_is_not_unreachable(server: str, mode: str, spec: ProbeSpec,
                                                         finding: str) -> None:
    assert check(server, mode, spec) == finding
