"""Faults on targets the inventory names, whatever runs them: one action, one rollback, one audit, through the
target backends (:mod:`opsproof.chaos.backend`) — ``docker`` (``chaos.containers``), ``process``
(``chaos.processes``) and ``kubernetes`` (``kubernetes`` entries).

::

    method:
      - type: action
        name: pause-the-database
        provider: {type: python, module: opsproof.chaos.targets, func: inject_fault,
                   arguments: {target: db, fault: pause}}
    rollbacks:
      - type: action
        name: unpause-the-database
        provider: {type: python, module: opsproof.chaos.targets, func: rollback_fault,
                   arguments: {target: db, fault: pause}}

Every fault is written in the fault journal before it is injected, with what its rollback needs (the networks a
container was on, a deployment's replicas); :func:`rollback_fault` undoes what the journal lists for the target
and crosses it out — so rolling back twice, or a rollback whose fault never happened, does nothing, and a run
killed outright is rolled back by the next run or ``opsproof chaos recover``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from opsproof.chaos import faultjournal, run, timeline
from opsproof.chaos.backend import TargetBackend, open_target_backend
from opsproof.chaos.context import Configuration, Context, fail


def backend_of(inventory: Any, target: str) -> str | None:
    """The backend a target name belongs to: a container, a local process, a Kubernetes entry — or None."""
    found: str | None = inventory.chaos.backend_of(target)
    if found is None and target in inventory.kubernetes:
        return "kubernetes"
    return found


def _backend(ctx: Context, target: str) -> tuple[str, TargetBackend]:
    name = backend_of(ctx.inventory, target)
    if name is None:
        known = [*ctx.inventory.chaos.containers, *ctx.inventory.chaos.processes, *ctx.inventory.kubernetes]
        raise fail(f"target[{target}]", "not in the inventory's chaos.containers, chaos.processes or kubernetes",
                   f"one of {', '.join(known) or '(none)'}")
    return name, _open(name, ctx)


def _open(name: str, ctx: Context) -> TargetBackend:
    """The run's backend object of that name (its clients live as long as the run)."""
    backends = run.current().backends
    key = (name, id(ctx))
    if key not in backends:
        backends[key] = open_target_backend(name, ctx)
    backend: TargetBackend = backends[key]
    return backend


def _key(target: str, fault: str) -> str:
    return f"target[{target}]:{fault}"


def inject_fault(target: str, fault: str, signal: str | None = None, network: str | None = None,
                 timeout: int | None = None, selector: str | None = None, count: int | None = None,
                 deployment: str | None = None, replicas: int | None = None,
                 configuration: Configuration = None) -> dict[str, Any]:
    """Inject ``fault`` into ``target``: containers stop / kill / pause / restart / disconnect (``network``);
    processes stop / kill (``signal``) / pause / restart; Kubernetes delete_pods (``selector``, ``count``) /
    scale (``deployment``, ``replicas``)."""
    ctx = Context.of(configuration)
    ctx.destructive(f"{fault} {target}")
    name, backend = _backend(ctx, target)
    if fault not in backend.faults:
        raise fail(f"target[{target}]", f"the {name} backend has no fault {fault!r}",
                   f"one of {', '.join(sorted(backend.faults))}")
    given = {"signal": signal, "network": network, "timeout": timeout, "selector": selector, "count": count,
             "deployment": deployment, "replicas": replicas}
    options = {k: v for k, v in given.items() if v is not None}
    problems = backend.option_problems(target, fault, options)
    if problems:
        raise fail(f"target[{target}]", "; ".join(problems), f"options {fault} can use")
    prepared = backend.prepare(target, fault, options)
    faultjournal.record(configuration, _key(target, fault), f"{fault} {target} ({name})", rollback_fault,
                        target=target, fault=fault, prepared=prepared)
    run.current().note(name, target, fault, prepared, ctx.inventory.source)
    result = backend.inject(target, fault, prepared)
    at = timeline.mark("fault_injected", fault=f"{fault} {target} ({name})")
    return {"target": target, "backend": name, "fault": fault, **result, "injected_at": at}


def rollback_fault(target: str, fault: str, prepared: dict[str, Any] | None = None,
                   configuration: Configuration = None) -> dict[str, Any]:
    """Undo ``fault`` on ``target`` as the fault journal recorded it; nothing to do when it lists none (rolled back
    already, or never injected). Idempotent."""
    ctx = Context.of(configuration)
    _, backend = _backend(ctx, target)
    key = _key(target, fault)
    pending = [e.get("arguments", {}).get("prepared") or {} for e in faultjournal.entries(faultjournal.of(
        configuration)) if e.get("key") == key]
    if prepared is not None and not pending:
        pending = [prepared]
    actions: list[str] = []
    for options in pending:
        actions += backend.rollback(target, fault, options).get("actions", [])
    faultjournal.undone(configuration, key)
    run.current().rolled_back(target, fault)
    if actions:
        timeline.mark("remediated", action=f"rollback {fault} {target}: {', '.join(actions)}")
    return {"target": target, "fault": fault, "actions": actions, "pending": len(pending)}


def audit_checks(configuration: Configuration = None) -> list[tuple[str, Callable[[], str]]]:
    """The audit's part of the target backends: (what is checked, the check: what is left, empty when nothing)
    for every fault this run injected — a paused or stopped container, a disconnected network, a stopped process,
    a deployment not scaled back."""
    ctx = Context.of(configuration)
    checks: dict[str, Callable[[], str]] = {}
    for injected in run.current().injected:
        if injected.inventory != ctx.inventory.source:
            continue  # a fault on another inventory (a test calling faults outside any experiment run)
        what = f"{injected.backend} target {injected.target} after {injected.fault}"
        if what not in checks:
            checks[what] = functools.partial(_leftovers, ctx, injected)
    return list(checks.items())


def _leftovers(ctx: Context, injected: run.Injected) -> str:
    return _open(injected.backend, ctx).leftovers(injected.target, injected.fault, injected.options)
