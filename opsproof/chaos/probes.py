"""Steady-state probes for experiments: opsproof's own probes (the same code as the smoke suite), and what the
reference app says about itself while a dependency is down."""

from __future__ import annotations

import time
from typing import Any

import httpx

from opsproof.chaos.context import ChaosError, Configuration, Context, fail
from opsproof.probes import ALL, Connections, Target, run

POLL_S = 0.1


def check(check: str, target: str | None = None, configuration: Configuration = None) -> bool:
    """Run one opsproof probe (``http.health``, ``redis.ping``, ``prometheus.targets`` …) against an inventory
    entry; true when it passes, else a failure with the probe's finding."""
    specs = [s for s in ALL if s.check == check]
    if not specs:
        raise ChaosError(f"no opsproof probe {check!r}; known: {', '.join(sorted(s.check for s in ALL))}")
    spec = specs[0]
    ctx = Context.of(configuration)
    target_id, entry = ctx.entry(spec.kind, target)
    conns = Connections()
    try:
        result = run(spec, Target(spec.kind, target_id[len(spec.kind) + 1 : -1], entry), conns)
    finally:
        conns.close()
    if not result.ok:
        raise ChaosError(ctx.redact(result.explain()))
    return True


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
            response = httpx.get(url, timeout=entry.timeout_s, headers=entry.headers)
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
        response = httpx.get(entry.url.rstrip("/") + path, timeout=entry.timeout_s, headers=entry.headers)
    except httpx.HTTPError as e:
        raise fail(target_id, f"GET {path} unreachable ({type(e).__name__})", "HTTP 200") from None
    if response.status_code != 200:
        raise fail(target_id, f"GET {path} → HTTP {response.status_code}", "HTTP 200")
    return True
