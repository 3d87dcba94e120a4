"""What `opsproof sandbox status` shows of each service beyond up or down: a process frozen by SIGSTOP (it holds its
port and answers nothing) and faults left set — what a chaos run killed outright leaves behind."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import httpx

from opsproof.shape import PROXIES
from opsproof.util.process import proc_state

if TYPE_CHECKING:
    from opsproof.sandbox.control import Sandbox


def state(box: Sandbox, name: str) -> str:
    """up, stopped (SIGSTOP: /proc/PID/stat state T) or down."""
    if not box.sup.alive(name):
        return "down"
    pids = [box.sup.pid(name)]
    if name == "app":  # the app runs under its keeper: the application process is the one a fault stops
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(box.keeper_files()["pidfile"].read_text()))
    return "stopped (SIGSTOP)" if any(p is not None and proc_state(p) == "T" for p in pids) else "up"


def faults(box: Sandbox, name: str) -> list[str]:
    """What is set on a service that a healthy one never has: a fault proxy's fault, the app's restarts disabled."""
    if name == "app" and box.keeper_files()["hold"].exists():
        return ["restarts disabled (hold file)"]
    if name not in PROXIES or not box.sup.alive(name):
        return []
    try:
        fault = httpx.get(f"{box.url(name + '_control')}/fault", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return ["fault unknown (control interface unreachable)"]
    if fault.get("mode", "none") == "none":
        return []
    return [f"fault {fault['mode']}" + (f" {fault['latency_ms']} ms" if fault.get("latency_ms") else "")]
