"""The process backend: faults on the local processes of the inventory's ``chaos.processes`` — by pid file
(``kill -STOP $(cat F)``), by systemd unit (``systemctl stop U``, ``systemctl kill -s SIGSTOP U``) or by the pair
of commands the entry gives (``stop:`` / ``start:``, and ``check:`` to know whether it runs).

Faults: ``stop`` (pid file: SIGTERM, then gone; unit: systemctl stop; commands: ``stop:``), ``kill`` (a signal,
SIGKILL by default), ``pause`` (SIGSTOP) and ``restart``. Rollbacks look before they act: a resumed or running
process is left alone; a stopped one is started (pid file: ``start:``; unit: systemctl start; commands: ``start:``,
once per fault). Units are driven with ``systemctl`` — absent on this project's test machines, so that path is
not exercised by the tests (README: untested).
"""

from __future__ import annotations

import os
import shutil
import signal as signals
import subprocess
from pathlib import Path
from typing import Any

from opsproof.chaos import run
from opsproof.chaos.context import ChaosError, Context, fail
from opsproof.util.poll import Expired, wait_until
from opsproof.util.process import proc_state

FAULTS = frozenset({"stop", "kill", "pause", "restart"})
_BY_WAY = {"pidfile": FAULTS, "unit": FAULTS, "commands": frozenset({"stop", "restart"})}


def _alive(pid: int | None) -> bool:
    return pid is not None and proc_state(pid) not in (None, "Z", "X")


class LocalProcessBackend:
    name = "process"
    faults = FAULTS

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.inventory = ctx.inventory

    def _entry(self, target: str) -> Any:
        entry = self.inventory.chaos.processes.get(target)
        if entry is None:
            raise fail(f"process[{target}]", "no such entry in chaos.processes",
                       f"one of {', '.join(self.inventory.chaos.processes) or '(none)'}")
        return entry

    def available(self) -> str | None:
        for name, entry in self.inventory.chaos.processes.items():
            for argv in (entry.stop, entry.start, entry.check):
                if argv and shutil.which(argv[0]) is None:
                    return f"process[{name}]: command {argv[0]!r} not found on PATH"
            if entry.unit and shutil.which("systemctl") is None:
                return f"process[{name}]: unit {entry.unit} needs systemctl, which is not on PATH"
        return None

    def option_problems(self, target: str, fault: str, options: dict[str, Any]) -> list[str]:
        entry = self._entry(target)
        found = []
        if fault not in _BY_WAY[entry.way]:
            found.append(f"{fault} is not a fault of a process named by {entry.way} (it has "
                         f"{', '.join(sorted(_BY_WAY[entry.way]))})")
        if fault in ("stop", "kill", "restart") and not entry.startable:
            found.append(f"{fault} on a pid file needs start: in the entry, for the rollback to start it again")
        sig = options.get("signal")
        if sig is not None and sig not in signals.Signals.__members__:
            found.append(f"signal {sig!r} is not a signal name such as SIGKILL")
        return found

    # --- looking ------------------------------------------------------------------------------------------------
    def pid(self, target: str) -> int | None:
        entry = self._entry(target)
        if entry.pidfile:
            try:
                return int(Path(entry.pidfile).read_text().strip())
            except (OSError, ValueError):
                return None
        if entry.unit:
            out = self._run(target, ["systemctl", "show", "-p", "MainPID", "--value", entry.unit], check=False)
            return int(out) if out.strip().isdigit() and int(out) > 0 else None
        return None

    def running(self, target: str) -> bool:
        entry = self._entry(target)
        if entry.unit:
            return subprocess.run(["systemctl", "is-active", "--quiet", entry.unit], timeout=entry.command_timeout_s,
                                  check=False).returncode == 0
        if entry.check:
            return subprocess.run(entry.check, timeout=entry.command_timeout_s, check=False,
                                  capture_output=True).returncode == 0
        return _alive(self.pid(target))

    def _run(self, target: str, argv: list[str], check: bool = True) -> str:
        entry = self._entry(target)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=entry.command_timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise fail(f"process[{target}]", f"{' '.join(argv)} failed ({type(e).__name__}: {e})",
                       "the command to run") from None
        if check and done.returncode != 0:
            raise fail(f"process[{target}]", f"{' '.join(argv)} exited {done.returncode} "
                       f"({(done.stderr or done.stdout).strip()[:200]})", "exit 0")
        return done.stdout

    def _signal(self, target: str, sig: signals.Signals) -> int:
        entry = self._entry(target)
        if entry.unit:
            self._run(target, ["systemctl", "kill", "-s", sig.name, entry.unit])
            return self.pid(target) or 0
        pid = self.pid(target)
        if not _alive(pid):
            raise fail(f"process[{target}]", f"no running process in {entry.pidfile}", "a process to signal")
        assert pid is not None
        os.kill(pid, sig)
        return pid

    def _wait(self, target: str, predicate: Any, what: str, timeout: float) -> None:
        try:
            wait_until(predicate, timeout, f"{target} {what}", interval=0.05, fail_fast=ChaosError)
        except Expired:
            raise fail(f"process[{target}]", f"not {what} after {timeout:g} s", what) from None

    # --- the interface ------------------------------------------------------------------------------------------
    def prepare(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "pid": self.pid(target)}

    def inject(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(target)
        timeout = entry.command_timeout_s
        if fault == "pause":
            pid = self._signal(target, signals.SIGSTOP)
            if pid:
                self._wait(target, lambda: proc_state(pid) == "T", "stopped (state T)", 5)
            return {"pid": pid}
        if fault == "restart":
            self.inject(target, "stop", options)
            self._start(target)
            return {"restarted": True}
        if entry.stop is not None:
            self._run(target, entry.stop)
        elif entry.unit and fault == "stop":
            self._run(target, ["systemctl", "stop", entry.unit])
        else:
            default = "SIGTERM" if fault == "stop" else "SIGKILL"
            self._signal(target, signals.Signals[options.get("signal") or default])
        self._wait(target, lambda: not self.running(target), "stopped", timeout)
        return {"pid": options.get("pid")}

    def _start(self, target: str) -> None:
        entry = self._entry(target)
        if entry.unit:
            self._run(target, ["systemctl", "start", entry.unit])
        elif entry.start:
            child = subprocess.Popen(entry.start, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
            run.current().children.append(child)  # its handle is kept (and reaped at exit): no zombie, no warning
        else:
            raise fail(f"process[{target}]", "not running and the entry has no start:", "a way to start it")
        self._wait(target, lambda: self.running(target), "running", entry.command_timeout_s)

    def rollback(self, target: str, fault: str, options: dict[str, Any]) -> dict[str, Any]:
        pid = self.pid(target)
        actions = []
        if _alive(pid) and proc_state(pid or 0) == "T":
            if self._entry(target).unit:
                self._signal(target, signals.SIGCONT)
            else:
                os.kill(pid or 0, signals.SIGCONT)
            self._wait(target, lambda: proc_state(pid or 0) != "T", "resumed", 5)
            actions.append("resumed")
        if fault != "pause" and not self.running(target):
            self._start(target)
            actions.append("started")
        return {"actions": actions}

    def leftovers(self, target: str, fault: str, options: dict[str, Any]) -> str:
        pid = self.pid(target)
        if _alive(pid) and proc_state(pid or 0) == "T":
            return f"pid {pid} stopped (state T)"
        entry = self._entry(target)
        if (entry.unit or entry.check or entry.pidfile) and not self.running(target):
            return "not running"
        return ""
