"""``opsproof chaos validate``: every experiment checked without injecting anything.

The file is read as the inventory is (a regular file, duplicate keys refused); every python provider is checked
against the extension's catalogue without importing anything else (:mod:`opsproof.chaos.catalogue`); then Chaos
Toolkit's own validation (the schema, every python function importable and its arguments bound to its
signature), then opsproof's: the opsproof control is declared (production refusal, SIGTERM, audit), a method with
actions has rollbacks, and every target an activity names exists — services in the sandbox, entries in the
inventory, alert rules in the inventory's Prometheus rules, probes among opsproof's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from opsproof import shape
from opsproof.chaos import proxy
from opsproof.chaos.catalogue import provider_problems
from opsproof.chaos.experiment_file import ExperimentError
from opsproof.chaos.runner import CONTROL, load
from opsproof.inventory import Inventory, loads
from opsproof.probes import ALL
from opsproof.shape import SERVICES

# the entries chaos can target, from the sandbox's shape (no ports or passwords): used when no inventory is given
_PLACEHOLDER = {"http": {"url": "http://127.0.0.1:1"}, "postgres": {"dsn": "postgresql://u@127.0.0.1:1/app"},
                "redis": {"url": "redis://127.0.0.1:1/0"},
                "prometheus": {"url": "http://127.0.0.1:1", "rules": shape.RULE_NAMES},
                "alertmanager": {"url": "http://127.0.0.1:1"}}
SANDBOX_SHAPE = yaml.safe_dump({"environment": "sandbox", **{
    kind: {name: entry for name in shape.ENTRIES[kind]} for kind, entry in _PLACEHOLDER.items()}})
KIND_OF_MODULE = {"opsproof.chaos.pgfaults": "postgres", "opsproof.chaos.redisfaults": "redis",
                  "opsproof.chaos.alerts": "http", "opsproof.chaos.probes": "http"}
ALERT_FUNCS = {"alert_fires", "alert_delivered", "alert_resolves"}


def activities(experiment: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for probe in (experiment.get("steady-state-hypothesis") or {}).get("probes", []):
        yield "steady-state", probe
    for activity in experiment.get("method", []):
        yield "method", activity
    for activity in experiment.get("rollbacks", []):
        yield "rollbacks", activity


def _sandbox_part(module: str, func: str, args: dict[str, Any], configured: Collection[str]) -> str | None:
    """The part of the opsproof sandbox an activity acts on, when the experiment's configuration names no stand-in
    for it; None when it needs no sandbox."""
    if module == "opsproof.chaos.faults":
        return f"the sandbox's processes (service {args.get('service')!r})"
    proxy_name = args.get("proxy", "proxy")
    if module == "opsproof.chaos.proxy" and f"opsproof_{proxy_name}_url" not in configured:
        return f"the sandbox's fault proxy {proxy_name!r} (or opsproof_{proxy_name}_url in the configuration)"
    if module == "opsproof.chaos.alerts" and func == "alert_delivered" and "opsproof_webhook_url" not in configured:
        return "the sandbox's webhook receiver (or opsproof_webhook_url in the configuration)"
    return None


def _target_problems(where: str, activity: dict[str, Any], inventory: Inventory, sandbox: bool = True,
                     configured: Collection[str] = ()) -> Iterator[str]:
    provider = activity.get("provider", {})
    module, func, args = provider.get("module", ""), provider.get("func", ""), provider.get("arguments", {})
    name = f"{where} {activity.get('name')!r}"
    if not module.startswith("opsproof.chaos."):
        return
    part = None if sandbox else _sandbox_part(module, func, args, configured)
    if part is not None:
        yield (f"{name}: {module.rsplit('.', 1)[-1]}.{func} acts on {part}, and there is no sandbox: the inventory "
               "given is not a sandbox's (no sandbox.json beside it) and no --sandbox-dir was given. Fix: run it on "
               "the sandbox (--sandbox-dir DIR), or use an action of your own stack's (a Chaos Toolkit process action)")
    if "service" in args and args["service"] not in SERVICES:
        yield f"{name}: service {args['service']!r} is not a sandbox service ({', '.join(SERVICES)})"
    if "proxy" in args and args["proxy"] not in proxy.PROXIES:
        yield f"{name}: proxy {args['proxy']!r} is not one of {', '.join(proxy.PROXIES)}"
    if module == "opsproof.chaos.targets":
        yield from _backend_problems(name, func, args, inventory)
        return
    kind = KIND_OF_MODULE.get(module)
    if func in ("check", "check_fails"):
        specs = [s for s in ALL if s.check == args.get("check")]
        if not specs:
            yield f"{name}: no opsproof probe {args.get('check')!r}"
            return
        kind = specs[0].kind
    if module == "opsproof.chaos.alerts" and func in ALERT_FUNCS:
        rules = {r for p in inventory.prometheus.values() for r in p.rules}
        if rules and args.get("name") not in rules:
            yield f"{name}: alert {args.get('name')!r} is not among the inventory's Prometheus rules"
        if not inventory.prometheus or not inventory.alertmanager:
            yield f"{name}: the inventory has no prometheus or no alertmanager entry to follow alerts in"
        return
    if kind is not None:
        entries = inventory.targets(kind)  # type: ignore[arg-type]
        wanted = args.get("target")
        if wanted is None and len(entries) != 1:
            yield f"{name}: no target given and the inventory has {len(entries)} {kind} entries"
        elif wanted is not None and wanted not in entries:
            yield f"{name}: {kind}[{wanted}] is not in the inventory ({', '.join(entries) or 'none'})"


def _backend_problems(name: str, func: str, args: dict[str, Any], inventory: Inventory) -> Iterator[str]:
    """A fault on an inventory target: the target is there, its backend has the fault and can act here (a Docker
    daemon answers, systemctl and the entry's commands exist), the options fit."""
    from opsproof.chaos.backend import open_target_backend
    from opsproof.chaos.context import Context
    from opsproof.chaos.targets import backend_of

    target, fault = args.get("target"), args.get("fault")
    if func not in ("inject_fault", "rollback_fault") or not isinstance(target, str) or "${" in target:
        return
    backend_name = backend_of(inventory, target)
    if backend_name is None:
        known = [*inventory.chaos.containers, *inventory.chaos.processes, *inventory.kubernetes]
        yield (f"{name}: target {target!r} is not in the inventory's chaos.containers, chaos.processes or kubernetes "
               f"({', '.join(known) or 'none'}). Fix: name it there (README: chaos backends)")
        return
    backend = open_target_backend(backend_name, Context(inventory, None))
    try:
        if isinstance(fault, str) and fault not in backend.faults:
            yield f"{name}: the {backend_name} backend has no fault {fault!r} (it has " \
                  f"{', '.join(sorted(backend.faults))})"
            return
        missing = backend.available()
        if missing:
            yield f"{name}: the {backend_name} backend cannot act for this inventory: {missing}"
        if func == "inject_fault" and isinstance(fault, str):
            options = {k: v for k, v in args.items() if k not in ("target", "fault")}
            yield from (f"{name}: {p}" for p in backend.option_problems(target, fault, options))
    finally:
        getattr(backend, "close", lambda: None)()


def problems(path: Path, inventory: Inventory, allowed: Collection[str] = (), sandbox: bool = True) -> list[str]:
    """Everything wrong with one experiment file; empty when it is valid. Only the extension's modules and the
    ``allowed`` ones are imported. ``sandbox``: whether the run will have an opsproof sandbox to act on."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        experiment = load(path)
    except ExperimentError as e:
        return [str(e)]
    refused = provider_problems(experiment, allowed)
    if refused:
        return refused  # before Chaos Toolkit's validation, which would import the modules
    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as e:
        return [f"Chaos Toolkit: {e}"]
    except Exception as e:  # a schema Chaos Toolkit does not expect (`method: 5`) breaks its own checks
        return [f"Chaos Toolkit could not validate it: {type(e).__name__}: {e}"]
    found: list[str] = []
    module = CONTROL["provider"]["module"]
    if not any(c.get("provider", {}).get("module") == module for c in experiment.get("controls", [])):
        found.append(f"the opsproof control ({module}) is not declared: plain `chaos run` would have no "
                     "production refusal, no SIGTERM rollback and no audit")
    strategy = (experiment.get("runtime") or {}).get("rollbacks", {}).get("strategy")
    if strategy != "always":
        found.append(f"runtime.rollbacks.strategy is {strategy or 'not set'}, expected always: with Chaos "
                     "Toolkit's default, plain `chaos run` skips the rollbacks of an interrupted or failed run")
    if any(a.get("type") == "action" for a in experiment.get("method", [])) and not experiment.get("rollbacks"):
        found.append("the method has actions but the experiment has no rollbacks")
    configured = set(experiment.get("configuration") or {})
    for where, activity in activities(experiment):
        found += _target_problems(where, activity, inventory, sandbox, configured)
    return found


def validate(paths: Iterable[Path], inventory: Inventory | None = None,
             allowed: Collection[str] = (), sandbox: bool = True) -> dict[Path, list[str]]:
    """``sandbox``: whether the runs will have an opsproof sandbox (always, without an inventory: its shape is
    the sandbox's)."""
    inv = inventory or loads(SANDBOX_SHAPE, "<sandbox shape>")
    return {p: problems(p, inv, allowed, sandbox or inventory is None) for p in paths}
