"""Steady-state probes for experiments: opsproof's own probes (the same code as the smoke suite), and what the
reference app says about itself while a dependency is down."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx

from opsproof.chaos import timeline
from opsproof.chaos.context import ChaosError, Configuration, Context, fail, http
from opsproof.probes import ALL, Connections, ProbeSpec, run
from opsproof.probes.connections import tls_verify

POLL_S = 0.1


def _spec(check: str) -> ProbeSpec:
    specs = [s for s in ALL if s.check == check]
    if not specs:
        raise ChaosError(f"no opsproof probe {check!r}; known: {', '.join(sorted(s.check for s in ALL))}")
    return specs[0]


def check(check: str, target: str | None = None, configuration: Configuration = None) -> bool:
    """Run one opsproof probe (``http.health``, ``redis.ping``, ``prometheus.targets`` …) against an inventory
    entry; true when it passes, else a failure with the probe's finding."""
    spec = _spec(check)
    ctx = Context.of(configuration)
    conns = Connections()
    try:
        result = run(spec, ctx.target(spec.kind, target), conns)
    finally:
        conns.close()
    if not result.ok:
        raise ChaosError(ctx.redact(result.explain()))
    return True


def check_fails(check: str, within: float = 30, target: str | None = None,
                configuration: Configuration = None) -> dict[str, Any]:
    """The fault is seen by opsproof's own check: ``check`` fails within ``within`` s of the fault. For a runbook
    that states a threshold but names no alert rule ("alert at 80 % capacity"): the experiment proves the check
    that holds the threshold sees the fault, and (with :func:`check` after the remediation) that it passes again."""
    spec = _spec(check)
    ctx = Context.of(configuration)
    entry = ctx.target(spec.kind, target)
    injected = timeline.first("fault_injected") or time.time()
    conns = Connections()
    try:
        while (result := run(spec, entry, conns)).ok:
            if time.time() >= injected + float(within):
                raise fail(result.target, f"{check} still passes {within:g} s after the fault "
                           f"({ctx.redact(result.observed)})", f"{check} failing within {within:g} s")
            time.sleep(POLL_S)
    finally:
        conns.close()
    at = timeline.mark("detected", check=check, target=result.target)
    return {"check": check, "target": result.target, "finding": ctx.redact(result.explain()),
            "detected_s": round(at - injected, 3)}


def app_reports(status: str, within: float = 10, target: str | None = None,
                configuration: Configuration = None) -> dict[str, Any]:
    """The service keeps answering its health endpoint (HTTP < 500) and reports ``status`` (e.g. degraded)."""
    ctx = Context.of(configuration)
    target_id, entry = ctx.entry("http", target)
    url = entry.url.rstrip("/") + entry.health
    deadline = time.time() + float(within)
    seen = "no answer"
    while True:
        try:
            response = http(entry.verify_tls).get(url, timeout=entry.timeout_s, headers=entry.headers)
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            seen = f"HTTP {response.status_code}, status={body.get('status')!r}"
            if response.status_code < 500 and body.get("status") == status:
                return {"target": target_id, "status": status, "http": response.status_code}
        except (httpx.HTTPError, ValueError) as e:
            seen = f"unreachable ({type(e).__name__})"
        if time.time() >= deadline:
            raise fail(target_id, f"GET {entry.health} → {seen} after {within:g} s",
                       f"HTTP < 500 with status={status!r}")
        time.sleep(POLL_S)


def app_serves(path: str = "/items/1", target: str | None = None, configuration: Configuration = None) -> bool:
    """A user request is answered with HTTP 200 (``curl -f $URL/items/1``)."""
    ctx = Context.of(configuration)
    target_id, entry = ctx.entry("http", target)
    try:
        response = http(entry.verify_tls).get(entry.url.rstrip("/") + path, timeout=entry.timeout_s,
                                              headers=entry.headers)
    except httpx.HTTPError as e:
        raise fail(target_id, f"GET {path} unreachable ({type(e).__name__})", "HTTP 200") from None
    if response.status_code != 200:
        raise fail(target_id, f"GET {path} → HTTP {response.status_code}", "HTTP 200")
    return True


def traffic(seconds: float, concurrency: int = 4, path: str = "/items/{id}", ids: int = 1000,
            target: str | None = None, configuration: Configuration = None) -> dict[str, Any]:
    """Real user requests for ``seconds`` (``GET path``, ``{id}`` a random item id), so that latency and
    error-rate alerts have something to measure. Run it as a background action."""
    ctx = Context.of(configuration)
    target_id, entry = ctx.entry("http", target)
    deadline = time.monotonic() + float(seconds)
    counts = [0] * concurrency
    errors = [0] * concurrency

    def worker(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=entry.url, timeout=entry.timeout_s, headers=entry.headers,
                          verify=tls_verify(entry.verify_tls)) as client:
            while time.monotonic() < deadline:
                try:
                    client.get(path.replace("{id}", str(rng.randint(1, ids))))
                    counts[i] += 1
                except httpx.HTTPError:
                    errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(float(seconds) + 10)
    return {"target": target_id, "requests": sum(counts), "errors": sum(errors), "seconds": seconds}
