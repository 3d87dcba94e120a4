"""DR drills: restore a real backup into a scratch instance, verify it, and measure RTO and RPO.

``checks/dr_drill`` runs one drill per ``backups:`` entry that names its datastore (``postgres:`` or ``redis:``);
``opsproof backup`` takes a consistent backup with the manifest a drill verifies against.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from opsproof.drill.phases import PHASES, Drill
from opsproof.drill.tools import DrillError
from opsproof.inventory import Inventory
from opsproof.redact import Redactor

__all__ = ["PHASES", "Drill", "DrillError", "drillable", "interruptible", "open_drill"]


def drillable(inventory: Inventory) -> list[str]:
    """Names of the ``backups:`` entries a drill can restore (those that name their datastore)."""
    return [name for name, cfg in inventory.backups.items() if cfg.datastore is not None]


def open_drill(inventory: Inventory, name: str, evidence_dir: Path | None = None,
               scratch_root: Path | None = None, allow_destructive: bool = False) -> Drill:
    """The drill of ``backups.NAME``. On an environment marked ``production: true`` it writes to no server of the
    inventory (``scratch.dsn`` is refused) unless ``allow_destructive``."""
    from opsproof.drill.pitr import PitrDrill
    from opsproof.drill.postgres import PostgresDrill
    from opsproof.drill.redis import RedisDrill
    from opsproof.drill.scratch import workdir

    cfg = inventory.backups[name]
    if cfg.datastore is None:
        raise DrillError(f"backups.{name} names no datastore to restore. Fix: add postgres: NAME or redis: NAME")
    kind, source = cfg.datastore
    redact = Redactor(inventory.secrets)
    drill: Drill
    if kind == "postgres" and cfg.pitr is not None:
        drill = PitrDrill(name, cfg, inventory.postgres[source], workdir(scratch_root), evidence_dir, redact)
    elif kind == "postgres":
        drill = PostgresDrill(name, cfg, inventory.postgres[source], workdir(scratch_root), evidence_dir, redact)
    else:
        drill = RedisDrill(name, cfg, inventory.redis[source], workdir(scratch_root), evidence_dir, redact)
    drill.protected = inventory.environment if inventory.production and not allow_destructive else None
    drill.environment = inventory.environment  # stamped on the evidence: several clusters' drills merge in a report
    return drill


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM ends the drill like Ctrl-C (KeyboardInterrupt), so teardown runs either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
