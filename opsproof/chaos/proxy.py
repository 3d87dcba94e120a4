"""Network faults through the sandbox's TCP fault proxy (the app → Redis path): latency, reset, blackhole.

There is no netem on this kernel (``tc qdisc add dev lo root netem delay 450ms`` fails), so faults live in a
user-space proxy (:mod:`opsproof.sandbox.faultproxy`) that runs as a sandbox service: a fault set here outlives
this process, and the rollback or the audit from any process reads and clears it.
"""

from __future__ import annotations

from typing import Any

import httpx

from opsproof.chaos import faultjournal, timeline
from opsproof.chaos.context import Configuration, Context, fail, http
from opsproof.shape import PROXIES as PROXIES  # re-exported: the sandbox's app → Redis, app → PostgreSQL

TIMEOUT_S = 3.0


def _control_url(ctx: Context, configuration: Configuration, proxy: str) -> str:
    url = (configuration or {}).get(f"opsproof_{proxy}_url")
    if url:
        return str(url).rstrip("/")
    if proxy not in PROXIES:
        raise fail(f"proxy[{proxy}]", "no such fault proxy", f"one of {', '.join(PROXIES)}")
    return ctx.sandbox.url(f"{proxy}_control")


def _call(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        if body is None:
            response = http().get(f"{url}/fault", timeout=TIMEOUT_S)
        else:
            response = http().put(f"{url}/fault", json=body, timeout=TIMEOUT_S)
    except httpx.HTTPError as e:
        raise fail(f"proxy[{url}]", f"control interface unreachable ({type(e).__name__}: {e})",
                   "a fault proxy answering GET/PUT /fault") from None
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        raise fail(f"proxy[{url}]", f"answered HTTP {response.status_code} with no JSON ({response.text[:80]!r})",
                   "a fault proxy answering GET/PUT /fault") from None
    if response.status_code != 200:
        raise fail(f"proxy[{url}]", f"refused the change ({data.get('error', response.status_code)})",
                   f"fault {body} applied")
    return data


def proxy_fault(mode: str, latency_ms: int = 0, proxy: str = "proxy",
                configuration: Configuration = None) -> dict[str, Any]:
    """Set a proxy's fault: ``latency`` (with ``latency_ms``), ``reset`` or ``blackhole``. ``proxy`` is the
    sandbox's ``proxy`` (app → Redis) or ``pgproxy`` (app → PostgreSQL)."""
    ctx = Context.of(configuration)
    ctx.destructive(f"inject a {mode} network fault")
    url = _control_url(ctx, configuration, proxy)
    fault = f"{proxy} {mode}" + (f" {latency_ms} ms" if latency_ms else "")
    faultjournal.record(configuration, f"proxy[{proxy}]", fault, proxy_clear, proxy=proxy)
    state = _call(url, {"mode": mode, "latency_ms": latency_ms})
    if state.get("mode") != mode:
        raise fail(f"proxy[{url}]", f"mode {state.get('mode')!r} after the change", f"mode {mode!r}")
    at = timeline.mark("fault_injected", fault=fault)
    return {"proxy": url, **state, "injected_at": at}


def proxy_clear(proxy: str = "proxy", configuration: Configuration = None) -> dict[str, Any]:
    """The rollback: the proxy forwards untouched again."""
    ctx = Context.of(configuration)
    url = _control_url(ctx, configuration, proxy)
    before = _call(url)
    state = _call(url, {"mode": "none"})
    faultjournal.undone(configuration, f"proxy[{proxy}]")
    if before.get("mode") != "none":
        timeline.mark("remediated", action=f"{proxy} fault {before.get('mode')} cleared")
    return {"proxy": url, "was": before.get("mode"), **state}


def proxy_state(proxy: str = "proxy", configuration: Configuration = None) -> dict[str, Any]:
    ctx = Context.of(configuration)
    return _call(_control_url(ctx, configuration, proxy))
