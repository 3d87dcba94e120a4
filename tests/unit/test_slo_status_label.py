"""The SLO error ratio reads the status label the metric really has (issue 9: `code` counted 0 errors and passed)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from opsproof.inventory import loads
from opsproof.probes import slo
from opsproof.probes.base import Target
from opsproof.probes.connections import Connections


def prometheus_with_code_label(request: httpx.Request) -> httpx.Response:
    """1,000 requests labelled `code`, 100 of them 5xx; a matcher on any other label finds no series."""
    promql = request.url.params["query"]
    matchers = re.findall(r'(\w+)(=~|!=)"', promql)
    value = "100" if ("code", "=~") in matchers else "1000"
    result = [] if any(label != "code" for label, _ in matchers) else [{"metric": {}, "value": [0, value]}]
    return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})


def error_ratio(extra: str = "") -> Any:
    inv = loads("environment: t\nprometheus:\n  main: {url: 'http://prom:9090'}\n"
                f"slo:\n  cms:\n    prometheus: main\n    selector: 'job=\"cms\"'\n{extra}")
    with Connections(http_transport=httpx.MockTransport(prometheus_with_code_label)) as conns:
        return slo.error_ratio(Target("slo", "cms", inv.slo["cms"]), conns)


def test_a_counter_without_the_status_label_is_no_data_not_a_pass() -> None:
    res = error_ratio()
    assert res.ok is False
    assert res.observed == ('no data: no series of http_requests_total{job="cms"} carries the label \'status\', '
                            "so errors cannot be counted (set status_label:, e.g. code)")


def test_status_label_code_counts_the_errors() -> None:
    res = error_ratio("    status_label: code\n")
    assert res.ok is False
    assert res.observed.startswith("error ratio 10.00% (100 of 1000 requests")
