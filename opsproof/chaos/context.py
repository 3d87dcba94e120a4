"""Where a chaos function finds its targets: the experiment's configuration → the inventory and the sandbox.

Configuration keys (an experiment declares them as ``type: env`` entries, so plain ``chaos run`` works too):

* ``opsproof_inventory`` — the inventory file (default: the sandbox's ``inventory.yaml``);
* ``opsproof_sandbox_dir`` — the sandbox state folder (processes, the fault proxy, the webhook receiver);
* ``opsproof_allow_destructive`` — ``true`` to allow faults on an inventory marked ``production: true``;
* ``opsproof_pg_dsn`` — a DSN with more rights than the inventory's (to terminate other roles' backends).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from opsproof.chaos import run
from opsproof.chaos.backend import ProcessBackend, open_backend
from opsproof.inventory import Inventory, Kind, load
from opsproof.probes import Connections, Target
from opsproof.redact import Redactor, mask_client_logs
from opsproof.shape import default_dir

Configuration = Mapping[str, Any] | None
CHAOS_APPLICATION = "opsproof-chaos"  # application_name of every connection a fault holds


def connections() -> Connections:
    """The run's clients for chaos calls that outlive no fault (HTTP APIs): each new HTTP client builds a TLS
    context, ~50 ms. Probes that run across a fault open Connections of their own. Closed when the run ends
    (:mod:`opsproof.chaos.run`)."""
    shared = run.current().connections
    if not shared:
        shared.append(Connections())
    conns: Connections = shared[0]
    return conns


def http(verify: bool | str = True) -> httpx.Client:
    """The shared HTTP client (opsproof's User-Agent, the target's TLS verification); callers pass timeouts."""
    return connections().http(verify)


class ChaosError(RuntimeError):
    """A fault or probe did not do or see what it should; the message names target, observed and expected."""


class ChaosRefused(ChaosError):
    """Destructive work on an environment marked ``production: true`` without ``--allow-destructive``."""


def fail(target: str, observed: str, expected: str) -> ChaosError:
    return ChaosError(f"{target}: {observed}, expected {expected}")


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Context:
    inventory: Inventory
    sandbox_dir: Path | None
    allow_destructive: bool = False
    pg_dsn_override: str | None = None
    redact: Redactor = field(default_factory=Redactor)

    @classmethod
    def of(cls, configuration: Configuration) -> Context:
        """The context of a configuration; cached in the run while the inventory file is unchanged (a run asks
        often)."""
        cfg = {k: v for k, v in (configuration or {}).items() if k.startswith("opsproof_")}
        sandbox_dir = Path(cfg["opsproof_sandbox_dir"]) if cfg.get("opsproof_sandbox_dir") else None
        inventory_path = Path(cfg.get("opsproof_inventory") or (sandbox_dir or default_dir()) / "inventory.yaml")
        try:
            stamp = inventory_path.stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = (repr(sorted(cfg.items())), stamp)
        contexts = run.current().contexts
        if key not in contexts:
            contexts.clear()
            contexts[key] = cls._load(cfg)
        found: Context = contexts[key]
        return found

    @classmethod
    def _load(cls, cfg: dict[str, Any]) -> Context:
        sandbox_dir = Path(cfg["opsproof_sandbox_dir"]) if cfg.get("opsproof_sandbox_dir") else None
        inventory_path = cfg.get("opsproof_inventory") or (sandbox_dir or default_dir()) / "inventory.yaml"
        inventory = load(inventory_path)
        if sandbox_dir is None and Path(inventory_path).parent.joinpath("sandbox.json").exists():
            sandbox_dir = Path(inventory_path).parent  # the sandbox's own inventory: its folder is the sandbox
        override = cfg.get("opsproof_pg_dsn") or None
        redact = Redactor([*inventory.secrets, *([override] if override else [])])
        mask_client_logs(redact.secrets)  # plain `chaos run` logs activities at DEBUG in chaostoolkit.log
        return cls(inventory, sandbox_dir, truthy(cfg.get("opsproof_allow_destructive", False)), override, redact)

    # --- safety ------------------------------------------------------------------------------------------------
    def destructive(self, what: str) -> None:
        """Refuse a fault on a production environment unless destructive work was allowed explicitly."""
        if self.inventory.production and not self.allow_destructive:
            raise ChaosRefused(f"environment {self.inventory.environment} is marked production: true; refusing "
                               f"to {what}. Fix: run with --allow-destructive (opsproof_allow_destructive: true) "
                               "if this game day is approved")

    # --- targets -----------------------------------------------------------------------------------------------
    @property
    def sandbox(self) -> ProcessBackend:
        if self.sandbox_dir is None or not (self.sandbox_dir / "sandbox.json").exists():
            raise ChaosError(f"sandbox: no sandbox state at {self.sandbox_dir or '(unset)'}, expected the folder "
                             "of a running sandbox in opsproof_sandbox_dir (OPSPROOF_SANDBOX_DIR)")
        # one backend object per folder and run: the processes a fault or rollback starts keep their Popen handle,
        # handed over at the end of the run to be reaped when this process exits (opsproof.chaos.run)
        key = self.sandbox_dir.absolute()
        boxes = run.current().sandboxes
        if key not in boxes:
            try:
                provider = json.loads((key / "sandbox.json").read_text()).get("provider", "process")
                boxes[key] = open_backend(key, provider)
            except (OSError, ValueError, KeyError) as e:
                raise ChaosError(f"sandbox: unreadable state at {key} ({type(e).__name__}: {e}), expected the "
                                 "sandbox.json of a running sandbox") from None
        box: ProcessBackend = boxes[key]
        return box

    def target(self, kind: Kind, name: str | None) -> Target[Any]:
        """The inventory entry ``kind[name]`` (the only one of its kind when ``name`` is None)."""
        entries: dict[str, Any] = self.inventory.targets(kind)
        if name is None and len(entries) == 1:
            name = next(iter(entries))
        if name not in entries:
            raise fail(f"{kind}[{name}]", "no such inventory entry",
                       f"one of {', '.join(entries) or '(none)'} in {kind}")
        return Target(kind, name, entries[name])

    def entry(self, kind: Kind, name: str | None) -> tuple[str, Any]:
        """``(kind[name], the entry)``, as :meth:`target` finds it."""
        found = self.target(kind, name)
        return found.id, found.config

    def pg_dsn(self, name: str | None) -> tuple[str, str]:
        target, entry = self.entry("postgres", name)
        return target, self.pg_dsn_override or entry.dsn
