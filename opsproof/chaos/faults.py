"""Process faults on sandbox services: kill, stop (SIGSTOP), resume, restart — and the app's supervisor.

Both providers run the services as processes of this host — the process provider under its supervisor, the docker
provider in containers — so the faults are the same signals to the same kind of pid (the backend says which pid is
the service): a killed container's service ends its container, as ``docker kill`` would.

The runbook lines they replace: ``kill -9 $(pidof redis-server)``, ``kill -STOP …``, ``kill -CONT …``,
``systemctl restart …``, ``systemctl mask --runtime …`` (no restart). The app runs under a keeper that restarts it
(:mod:`opsproof.sandbox.keeper`): faults on ``app`` hit the application process itself, never its keeper.
"""

from __future__ import annotations

import json
import os
import signal as signals
import time
from pathlib import Path
from typing import Any

from opsproof.chaos import faultjournal, timeline
from opsproof.chaos.backend import ProcessBackend
from opsproof.chaos.context import ChaosError, Configuration, Context, fail
from opsproof.shape import SERVICES
from opsproof.util.process import ProcessError, proc_state, wait_for

RECOVER_TIMEOUT_S = 30.0


def _alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def service_pid(box: ProcessBackend, service: str) -> int | None:
    """The pid of the process that *is* the service (for the app: the application, not its keeper)."""
    if service not in SERVICES:
        raise fail(f"service[{service}]", "no such sandbox service", f"one of {', '.join(SERVICES)}")
    pid = box.service_pid(service)
    return pid if pid is not None and _alive(pid) else None


def _running_pid(box: ProcessBackend, service: str) -> int:
    pid = service_pid(box, service)
    if pid is None:
        raise fail(f"service[{service}]", "not running", "a running process to inject the fault into")
    return pid


def kill_service(service: str, signal: str = "SIGKILL", configuration: Configuration = None) -> dict[str, Any]:
    """``kill -9 PID``: the service's process dies at once (its supervisor, if any, decides what happens next)."""
    ctx = Context.of(configuration)
    ctx.destructive(f"kill {service}")
    box = ctx.sandbox
    pid = _running_pid(box, service)
    sig = signals.Signals[signal]
    faultjournal.record(configuration, f"service[{service}]", f"kill {service} ({sig.name})", ensure_running,
                        service=service)
    os.kill(pid, sig)
    at = timeline.mark("fault_injected", fault=f"kill {service} ({sig.name})")
    try:
        wait_for(lambda: not _alive(pid), 10, f"{service} pid {pid} still alive after {sig.name}")
    except ProcessError as e:
        raise fail(f"service[{service}]", f"pid {pid} still alive 10 s after {sig.name}", "the process gone") from e
    return {"service": service, "pid": pid, "signal": sig.name, "injected_at": at}


def stop_service(service: str, configuration: Configuration = None) -> dict[str, Any]:
    """``kill -STOP PID``: the process is frozen — it holds its port and connections but answers nothing."""
    ctx = Context.of(configuration)
    ctx.destructive(f"stop (SIGSTOP) {service}")
    pid = _running_pid(ctx.sandbox, service)
    faultjournal.record(configuration, f"service[{service}]", f"SIGSTOP {service}", ensure_running, service=service)
    os.kill(pid, signals.SIGSTOP)
    at = timeline.mark("fault_injected", fault=f"SIGSTOP {service}")
    try:
        wait_for(lambda: proc_state(pid) == "T", 5, f"{service} not stopped")
    except ProcessError as e:
        raise fail(f"service[{service}]", f"pid {pid} in state {proc_state(pid)}", "state T (stopped)") from e
    return {"service": service, "pid": pid, "injected_at": at}


def resume_service(service: str, configuration: Configuration = None) -> dict[str, Any]:
    """``kill -CONT PID``: a stopped service runs again (nothing to do if it was not stopped)."""
    box = Context.of(configuration).sandbox
    pid = service_pid(box, service)
    if pid is None:
        return {"service": service, "resumed": False, "reason": "not running"}
    was = proc_state(pid)
    os.kill(pid, signals.SIGCONT)
    try:
        wait_for(lambda: proc_state(pid) != "T", 5, f"{service} still stopped")
    except ProcessError as e:
        raise fail(f"service[{service}]", f"pid {pid} still stopped after SIGCONT", "running") from e
    if was == "T":
        timeline.mark("remediated", action=f"SIGCONT {service}")
    return {"service": service, "pid": pid, "resumed": was == "T"}


def restart_service(service: str, configuration: Configuration = None) -> dict[str, Any]:
    """``systemctl restart``: stop the service if it runs (whatever its state), start it, wait until ready."""
    ctx = Context.of(configuration)
    ctx.destructive(f"restart {service}")
    box = ctx.sandbox
    started = time.time()
    try:
        box.stop_service(service)  # a running service stops; a dead one's bookkeeping (and zombie) is cleared
        box.start_service(service)
    except ProcessError as e:
        raise fail(f"service[{service}]", f"restart failed ({e})", "the service running and ready") from e
    timeline.mark("remediated", action=f"restart {service}")
    return {"service": service, "restarted_in_s": round(time.time() - started, 3)}


def disable_supervisor(service: str = "app", configuration: Configuration = None) -> dict[str, Any]:
    """``systemctl mask --runtime``: the service's supervisor stops restarting it (only ``app`` has one)."""
    ctx = Context.of(configuration)
    ctx.destructive(f"disable the supervisor of {service}")
    hold = _hold_file(ctx.sandbox, service)
    faultjournal.record(configuration, f"supervisor[{service}]", f"supervisor of {service} disabled",
                        enable_supervisor, service=service)
    hold.touch()
    return {"service": service, "hold_file": str(hold)}


def enable_supervisor(service: str = "app", configuration: Configuration = None) -> dict[str, Any]:
    """Undo :func:`disable_supervisor` (nothing to do if it was not disabled)."""
    hold = _hold_file(Context.of(configuration).sandbox, service)
    existed = hold.exists()
    hold.unlink(missing_ok=True)
    faultjournal.undone(configuration, f"supervisor[{service}]")
    return {"service": service, "was_disabled": existed}


def _hold_file(box: ProcessBackend, service: str) -> Path:
    if service != "app":
        raise fail(f"service[{service}]", "has no supervisor of its own", "service app (run by its keeper)")
    return box.keeper_files()["hold"]


def ensure_running(service: str, timeout: float = RECOVER_TIMEOUT_S,
                   configuration: Configuration = None) -> dict[str, Any]:
    """The rollback of every process fault: supervisor enabled, process resumed, started if it is gone, ready.

    Idempotent: a healthy service is left alone.
    """
    box = Context.of(configuration).sandbox
    actions: list[str] = []
    if service == "app" and enable_supervisor(service, configuration)["was_disabled"]:
        actions.append("supervisor enabled")
    pid = service_pid(box, service)
    if pid is not None and proc_state(pid) == "T":
        os.kill(pid, signals.SIGCONT)
        actions.append("resumed")
    if not box.service_alive(service):  # the service (for the app: its keeper) is gone: start it again
        box.start_service(service)
        actions.append("started")
    elif service == "app" and pid is None:
        actions.append("waited for the keeper to restart it")
    try:
        wait_for(lambda: service_pid(box, service) is not None, timeout, f"{service} not running")
    except ProcessError as e:
        raise fail(f"service[{service}]", f"not running {timeout:g} s after the rollback ({', '.join(actions)})",
                   "the service running") from e
    faultjournal.undone(configuration, f"service[{service}]")
    return {"service": service, "actions": actions}


def stopped_services(box: ProcessBackend) -> list[str]:
    """Services whose process is frozen (state T): what an audit must never find."""
    found = []
    for service in SERVICES:
        try:
            pid = service_pid(box, service)
        except ChaosError:
            continue
        if pid is not None and proc_state(pid) == "T":
            found.append(f"{service} (pid {pid})")
    return found


def supervisor_restarts(box: ProcessBackend, since: float) -> list[float]:
    """When the app's keeper started the app again after ``since`` (its remediation)."""
    try:
        lines = box.keeper_files()["events"].read_text().splitlines()
    except OSError:
        return []
    events = [json.loads(line) for line in lines if line.strip()]
    return [float(e["at"]) for e in events if e["event"] == "started" and float(e["at"]) > since]
