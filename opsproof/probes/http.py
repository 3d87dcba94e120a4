"""HTTP services: `curl -f $URL/health`, `curl -f $URL/ready`, and the latency a user sees."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from opsproof.inventory import HttpService
from opsproof.probes import answers
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.result import Severity


def _get(target: Target[HttpService], conns: Connections, path: str) -> tuple[httpx.Response, float]:
    cfg = target.config
    client = conns.http(cfg.verify_tls)
    start = time.perf_counter()
    response = answers.get(client, cfg.url.rstrip("/") + path, headers=cfg.headers, timeout=cfg.timeout_s,
                           max_bytes=cfg.max_answer_bytes, path=path)
    return response, time.perf_counter() - start


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _expect_health(cfg: HttpService) -> str:
    fields = ", ".join(f"{k}={v!r}" for k, v in cfg.expect_json.items())
    return f"HTTP {cfg.expect_status}" + (f" with {fields}" if fields else "")


@probe("http.health", "http", Severity.CRITICAL, "curl -f $URL/health", expected=_expect_health, root=True)
def health(target: Target[HttpService], conns: Connections) -> Outcome:
    """The health endpoint answers the expected status and the expected JSON fields."""
    cfg = target.config
    response, _elapsed = _get(target, conns, cfg.health)
    body = _body(response)
    problems = []
    if response.status_code != cfg.expect_status:
        problems.append(f"HTTP {response.status_code}")
    for key, want in cfg.expect_json.items():
        got = body.get(key, "<absent>") if isinstance(body, dict) else "<no JSON object>"
        if got != want:
            problems.append(f"{key}={got!r}")
    observed = ", ".join(problems) if problems else _expect_health(cfg)  # what was expected is what it saw
    return Outcome(not problems, f"GET {cfg.health} → {observed}",
                   {"status": response.status_code, "body": body if body is not None else response.text[:500]})


@probe(
    "http.ready",
    "http",
    Severity.CRITICAL,
    "curl -f $URL/ready",
    applies=lambda cfg: cfg.ready is not None,
    expected=lambda cfg: "HTTP 2xx",
)
def ready(target: Target[HttpService], conns: Connections) -> Outcome:
    """The readiness endpoint answers 2xx: the service will take traffic."""
    cfg = target.config
    assert cfg.ready is not None
    response, _elapsed = _get(target, conns, cfg.ready)
    return Outcome(response.is_success, f"GET {cfg.ready} → HTTP {response.status_code}",
                   {"status": response.status_code, "body": response.text[:500]})


@probe(
    "http.latency",
    "http",
    Severity.HIGH,
    "curl -o /dev/null -w '%{time_total}' $URL/health",
    expected=lambda cfg: f"≤ {cfg.latency_budget_ms:.0f} ms",
)
def latency(target: Target[HttpService], conns: Connections) -> Outcome:
    """The health endpoint answers within the latency budget."""
    cfg = target.config
    response, elapsed = _get(target, conns, cfg.health)
    ms = elapsed * 1000
    evidence = {"latency_ms": round(ms, 1), "status": response.status_code}
    if response.status_code != cfg.expect_status:  # how fast an error page comes is no verdict: http.health judges it
        return Outcome(None, f"no verdict: GET {cfg.health} answered HTTP {response.status_code} in {ms:.0f} ms, "
                             f"not HTTP {cfg.expect_status} (deferred to http.health)", evidence)
    return Outcome(ms <= cfg.latency_budget_ms, f"GET {cfg.health} took {ms:.0f} ms (HTTP {response.status_code})",
                   evidence)
