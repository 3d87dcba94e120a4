"""Alert rule content and Celery checks without sockets (issue 14): their inventory errors (file, line, key, fix),
how a rule is found and judged from /api/v1/rules (httpx.MockTransport), and how a queue's sampled depth is
judged (a fake Redis client). The real servers: tests/integration/test_rule_content.py and test_celery.py."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from opsproof.inventory import InventoryError, loads
from opsproof.probes import Connections, celery, rule_content

if TYPE_CHECKING:
    from tests.unit.conftest import Serve

INVENTORY = """environment: t
prometheus:
  main:
    url: http://prom.test
    alert_rules:
      HighErrorRate: {threshold: '> 0.05', for: 5m, labels: {severity: critical}}
      p95: {watches: http_request_duration_seconds_bucket, expr_contains: ['histogram_quantile(0.95'],
            threshold: '> 0.5'}
redis:
  broker:
    url: redis://broker.test:6379/5
    celery:
      tasks: {workers: ['celery@w*'], queues: [celery], depth: {celery: 10}, window: 40ms, samples: 3}
"""
RULES = [
    {"name": "HighErrorRate", "type": "alerting", "duration": 300, "labels": {"severity": "critical"},
     "query": 'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 5e-2'},
    {"name": "HighLatency", "type": "alerting", "duration": 120, "labels": {"severity": "high"},
     "query": "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5"},
]


def error(old: str, new: str) -> str:
    with pytest.raises(InventoryError) as caught:
        loads(INVENTORY.replace(old, new, 1), "r.yaml")
    return str(caught.value)


@pytest.mark.parametrize(("old", "new", "pattern"), [
    ("threshold: '> 0.05'", "threshold: above 0.05",
     r"^r\.yaml:6: prometheus\.main\.alert_rules\.HighErrorRate\.threshold: 'above 0\.05' is not a comparison with "
     r"a number\. Fix: write it in quotes as the rule does, e\.g\. threshold: '> 0\.05' "),
    ("for: 5m", "for: soon", r"^r\.yaml:6: prometheus\.main\.alert_rules\.HighErrorRate\.for: "),
    ("for: 5m,", "fro: 5m,", r"^r\.yaml:6: prometheus\.main\.alert_rules\.HighErrorRate\.fro: unknown key 'fro'"),
    ("{threshold: '> 0.05', for: 5m, labels: {severity: critical}}", "{}",
     r"^r\.yaml:6: prometheus\.main\.alert_rules\.HighErrorRate: says nothing the rule must contain\. Fix: "),
    ("samples: 3", "samples: 1", r"^r\.yaml:13: redis\.broker\.celery\.tasks\.samples: "),
    ("window: 40ms", "window: 1h", r"^r\.yaml:13: redis\.broker\.celery\.tasks\.window: "),
    ("queues: [celery],", "queues: [celery], min_workers: 2,",
     r"^r\.yaml:13: redis\.broker\.celery\.tasks: min_workers 2 is above the 1 workers listed\. Fix: "),
])
def test_bad_input_names_file_line_key_and_fix(old: str, new: str, pattern: str) -> None:
    assert re.match(pattern, error(old, new)), error(old, new)


def rule_results(serve: Serve, rules: list[dict[str, Any]], text: str = INVENTORY) -> dict[str, Any]:
    inv = loads(text, "r.yaml")
    body = {"status": "success", "data": {"groups": [{"name": "g", "rules": rules}]}}
    conns = serve({"/api/v1/rules": lambda request: httpx.Response(200, json=body)})
    return {t.id: rule_content.rule_content(t, conns)
            for t in rule_content.rule_content.targets("main", inv.prometheus["main"])}


def test_rules_with_the_runbooks_content_pass(serve: Serve) -> None:
    """5e-2 is 0.05, compared as numbers; a rule found by what it watches is named in the observation."""
    got = rule_results(serve, RULES)
    assert {i: (r.ok, r.observed) for i, r in got.items()} == {
        "prometheus[main] rule HighErrorRate": (True, "compares > 0.05, for 5m, severity=critical"),
        "prometheus[main] rule p95": (True, "HighLatency: compares > 0.5, for 2m, expr has histogram_quantile(0.95")}


def test_each_difference_is_named(serve: Serve) -> None:
    loose = [{**RULES[0], "duration": 60, "labels": {}, "query": RULES[0]["query"].replace("5e-2", "0.1")},
             {**RULES[1], "query": "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
                                   "[5m]))) >= 0.5"}]
    got = rule_results(serve, loose)
    assert got["prometheus[main] rule HighErrorRate"].explain().startswith(
        "prometheus[main] rule HighErrorRate: compares > 0.1; for 1m; no severity label, expected compares > 0.05, "
        "for 5m, severity=critical")
    assert got["prometheus[main] rule p95"].observed == (
        "HighLatency: expr histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) "
        ">= 0.5 has no histogram_quantile(0.95; compares >= 0.5")


def test_a_missing_rule_lists_the_rules_there_are(serve: Serve) -> None:
    got = rule_results(serve, [RULES[1]])
    assert (got["prometheus[main] rule HighErrorRate"].ok, got["prometheus[main] rule HighErrorRate"].observed) == (
        False, "no alert rule HighErrorRate (rules: HighLatency)")
    got = rule_results(serve, [RULES[0]])
    assert got["prometheus[main] rule p95"].observed == (
        "no rule watches http_request_duration_seconds_bucket (rules: HighErrorRate)")


class Queue:
    """A fake Redis whose queue length follows ``lengths`` (one per LLEN), answering PING."""

    def __init__(self, lengths: list[int]) -> None:
        self.lengths = iter(lengths)

    def ping(self) -> bool:
        return True

    def llen(self, name: str) -> int:
        return next(self.lengths)


def depth(lengths: list[int]) -> Any:
    inv = loads(INVENTORY, "r.yaml")
    [target] = celery.depth.targets("broker", inv.redis["broker"])

    class Fake(Connections):
        def redis(self, key: str, url: str, timeout_s: float) -> Any:
            return fake

    fake = Queue(lengths)
    with Fake() as conns:
        return celery.depth(target, conns)


@pytest.mark.parametrize(("lengths", "ok", "shown"), [
    ([0, 2, 1], True, r"celery 0 → 2 → 1 \(max 2, rising\)"),
    ([30, 20, 8], True, r"celery 30 → 20 → 8 \(max 30, falling\)"),  # a burst draining: not a backlog
    ([30, 20, 30], False, r"celery 30 → 20 → 30 \(max 30, flat\), ceiling 10"),
    ([12, 12, 12], False, r"celery 12 → 12 → 12 \(max 12, flat\), ceiling 10"),
    ([2, 14, 9], False, r"celery 2 → 14 → 9 \(max 14, rising\), ceiling 10"),  # above it, and grew: building
    ([2, 14, 11], False, r"celery 2 → 14 → 11 \(max 14, rising\), ceiling 10"),
])
def test_depth_is_judged_on_the_samples(lengths: list[int], ok: bool, shown: str) -> None:
    result = depth(lengths)
    assert result.ok is ok, result
    assert re.fullmatch(shown + r" over 0\.\d s", result.observed), result.observed
    assert result.evidence["samples"] == {"celery": lengths}


def test_ping_names_the_missing_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    inv = loads(INVENTORY.replace("workers: ['celery@w*']", "workers: ['celery@w*', celery@beat]"), "r.yaml")
    [target] = celery.ping.targets("broker", inv.redis["broker"])
    replies: Callable[..., Any] = lambda *args: {"celery@w1": {"ok": "pong"}}  # noqa: E731

    class Fake(Connections):
        def redis(self, key: str, url: str, timeout_s: float) -> Any:
            return Queue([])

    monkeypatch.setattr(celery, "control", replies)
    with Fake() as conns:
        result = celery.ping(target, conns)
    assert result.explain().startswith("redis[broker] celery tasks: no answer from celery@beat (1 answered: "
                                       "celery@w1), expected workers answer ping: celery@w*, celery@beat")


def test_a_control_call_that_never_returns_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker answered PING, then Celery's call hangs: the check ends at its deadline (the entry's timeout_s +
    reply_timeout + window) and says what it was waiting for."""
    inv = loads(INVENTORY.replace("url: redis://broker.test:6379/5", "url: redis://broker.test:6379/5\n    "
                                  "timeout_s: 0.2").replace("window: 40ms", "window: 10ms, reply_timeout: 100ms"),
                "r.yaml")
    [target] = celery.ping.targets("broker", inv.redis["broker"])
    release = threading.Event()
    monkeypatch.setattr(celery, "control", lambda *args: release.wait(30))

    class Fake(Connections):
        def redis(self, key: str, url: str, timeout_s: float) -> Any:
            return Queue([])

    try:
        with Fake() as conns:
            result = celery.ping(target, conns)
    finally:
        release.set()
    assert result.ok is False
    assert re.fullmatch(r"no answer from the broker within 0\.[23] s \(inspect ping\)", result.observed), result
