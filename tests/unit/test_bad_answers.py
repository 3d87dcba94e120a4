"""A server that answered badly is not unreachable (issue 9): HTTP 500, a body that is not JSON, a Prometheus
envelope without ``data``, or ``status: error`` are each reported as the answer they were — with Prometheus' own
error text — never as ``unreachable (HTTPStatusError …)`` or ``unreachable (KeyError …)``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opsproof.inventory import loads
from opsproof.probes import Connections, ProbeSpec, Target, alertmanager, prometheus, slo

INV = loads("""environment: t
prometheus:
  main: {url: "http://prom.test", jobs_up: [app], rules: [ServiceDown], no_alerts_at_or_above: high}
alertmanager:
  main: {url: "http://am.test", receivers: [oncall]}
slo:
  app: {prometheus: main, selector: 'job="app"'}
""")
TARGETS: dict[str, Target[Any]] = {"prometheus": Target("prometheus", "main", INV.prometheus["main"]),
                                   "alertmanager": Target("alertmanager", "main", INV.alertmanager["main"]),
                                   "slo": Target("slo", "app", INV.slo["app"])}
PATHS = {prometheus.targets: "/api/v1/targets", prometheus.rules: "/api/v1/rules", prometheus.alerts: "/api/v1/alerts",
         alertmanager.ready: "/api/v2/status", alertmanager.receivers: "/api/v2/receivers",
         slo.error_ratio: "/api/v1/query", slo.latency_p95: "/api/v1/query"}
PROMETHEUS_ERROR = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected \"}\""}

# what the server answers → the finding's observed text, for a path P
BAD: dict[str, tuple[httpx.Response, str]] = {
    "HTTP 500": (httpx.Response(500, text="internal error"), "answered badly: HTTP 500 from {P}"),
    "not JSON": (httpx.Response(200, text="<html>maintenance</html>"), "answered with invalid JSON from {P}"),
    "truncated JSON": (httpx.Response(200, text='{"status": "succ'), "answered with invalid JSON from {P}"),
}
ENVELOPE: dict[str, tuple[httpx.Response, str]] = {  # Prometheus' envelope only (Alertmanager's v2 API has none)
    "no data": (httpx.Response(200, json={"status": "success"}), "answered without data from {P}"),
    "status=error": (httpx.Response(200, json=PROMETHEUS_ERROR),
                     'answered status=error: 1:5: parse error: unexpected "}" (from {P})'),
    "status=error, HTTP 400": (httpx.Response(400, json=PROMETHEUS_ERROR),
                               'answered status=error: 1:5: parse error: unexpected "}" (from {P})'),
    "status=error, no text": (httpx.Response(503, json={"status": "error"}),
                              "answered status=error: no error text (from {P})"),
}


def observed(spec: ProbeSpec, answer: httpx.Response) -> str:
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path != PATHS[spec]:
            return httpx.Response(404, text="no such path")
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with Connections(http_transport=httpx.MockTransport(serve)) as conns:
        result = spec(TARGETS[spec.kind], conns)
    assert (result.ok, result.check) == (False, spec.check), result
    return result.observed


@pytest.mark.parametrize("case", BAD, ids=str)
@pytest.mark.parametrize("spec", PATHS, ids=lambda s: s.check)
def test_a_bad_answer_is_named_as_such(spec: ProbeSpec, case: str) -> None:
    answer, text = BAD[case]
    assert observed(spec, answer) == text.replace("{P}", PATHS[spec])


@pytest.mark.parametrize("case", ENVELOPE, ids=str)
@pytest.mark.parametrize("spec", [s for s, p in PATHS.items() if p.startswith("/api/v1/")], ids=lambda s: s.check)
def test_a_bad_prometheus_envelope_shows_its_error(spec: ProbeSpec, case: str) -> None:
    answer, text = ENVELOPE[case]
    assert observed(spec, answer) == text.replace("{P}", PATHS[spec])


def test_an_answer_missing_a_key_is_an_unexpected_answer_not_unreachable() -> None:
    answer = httpx.Response(200, json={"status": "success", "data": {"alerts": [{"labels": {}}]}})
    assert observed(prometheus.alerts, answer) == "unexpected answer (KeyError: 'state')"
