"""After every run: proof that nothing was left behind — no stopped process, no service down, no supervisor left
disabled, no held connection, no paused or filled Redis, no proxy fault — and, for the faults of the target
backends (opsproof.chaos.targets), no paused or stopped container, no disconnected network, no stopped process or
unit, no deployment left scaled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsproof.chaos import faults, pgfaults, proxy, redisfaults, targets
from opsproof.chaos.backend import ProcessBackend
from opsproof.chaos.context import Configuration, Context
from opsproof.shape import SERVICES


@dataclass
class Audit:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "checked": self.checked, "problems": self.problems}


def audit(configuration: Configuration = None) -> Audit:
    """Look at every place a fault can leave something; a place that cannot be checked is a problem too."""
    ctx = Context.of(configuration)
    report = Audit()

    def look(what: str, fn: Any) -> None:
        report.checked.append(what)
        try:
            problem = fn()
        except Exception as e:  # unreachable is a finding, never a traceback
            problem = f"could not check ({type(e).__name__}: {ctx.redact(str(e))})"
        if problem:
            report.problems.append(f"{what}: {problem}")

    if ctx.sandbox_dir is not None and (ctx.sandbox_dir / "sandbox.json").exists():
        box = ctx.sandbox
        look("stopped processes", lambda: ", ".join(faults.stopped_services(box)))
        look("services running", lambda: _not_running(box))
        look("app supervisor", lambda: "restarts disabled (hold file present)"
             if box.keeper_files()["hold"].exists() else "")
        for name in proxy.PROXIES:
            look(f"fault proxy {name}", lambda name=name: _proxy_fault(name, configuration))
    for name in ctx.inventory.postgres:
        look(f"postgres[{name}] held connections", lambda name=name: _count(
            pgfaults.chaos_connections(name, configuration), "connection(s) held by opsproof-chaos"))
    for name in ctx.inventory.redis:
        look(f"redis[{name}] filled memory", lambda name=name: _count(
            redisfaults.filled_keys(name, configuration), "filled key(s) left"))
        look(f"redis[{name}] client pause", lambda name=name: "clients paused"
             if redisfaults.paused(name, configuration) else "")
    for what, check in targets.audit_checks(configuration):
        look(what, check)
    return report


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n else ""


def _not_running(box: ProcessBackend) -> str:
    down = [n for n in SERVICES if faults.service_pid(box, n) is None]
    return f"not running: {', '.join(down)}" if down else ""


def _proxy_fault(name: str, configuration: Configuration) -> str:
    mode = proxy.proxy_state(name, configuration).get("mode")
    return f"fault {mode} still set" if mode != "none" else ""
