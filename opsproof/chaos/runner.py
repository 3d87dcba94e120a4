"""Run one experiment with chaostoolkit-lib: rollback strategy ``always``, the opsproof control, evidence.

``opsproof chaos run chaos/experiments/redis-down.yaml`` calls :func:`run`. Chaos Toolkit installs signal
handlers, so a run happens in the main thread, one at a time. Ctrl-C (KeyboardInterrupt) and SIGTERM interrupt
the method; the rollbacks still run (strategy ``always``), then the audit, and :func:`run` raises
:class:`~opsproof.chaos.signals.Interrupted` (a KeyboardInterrupt) so that its caller stops as well. Whatever the
rollbacks leave in the fault journal is rolled back when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsproof import output
from opsproof.chaos import evidence, experiment_file, faultjournal, signals
from opsproof.chaos.context import Context

CONTROL: dict[str, Any] = {"name": "opsproof", "provider": {"type": "python", "module": "opsproof.chaos.control"}}
SETTINGS: dict[str, Any] = {"runtime": {"rollbacks": {"strategy": "always"}}}


@dataclass
class Outcome:
    path: Path
    journal: dict[str, Any]
    evidence: dict[str, Any]
    evidence_path: Path | None
    wall_s: float

    @property
    def ok(self) -> bool:
        return bool(self.evidence["ok"])

    @property
    def status(self) -> str:
        return str(self.journal.get("status"))

    @property
    def failures(self) -> list[str]:
        return list(self.evidence["failures"])

    def summary(self) -> str:
        lines = [f"{self.path.name}: {'PASS' if self.ok else 'FAIL'} ({self.status}, {self.wall_s:.1f} s)"]
        for d in self.evidence["detections"]:
            lines.append(f"  detect {d['alert']}: {d['detected_s']:.2f} s measured, {d['truth_s']:.2f} s by "
                         f"startsAt, budget {d['budget_s']:g} s")
        if rec := self.evidence.get("recovery"):
            lines.append(f"  recover {rec['target']}: {rec['recovery_s']:.2f} s, target {rec['target_s']:g} s")
        lines += [f"  failure: {f}" for f in self.failures]
        lines.append(f"  evidence: {self.evidence_path}")
        return "\n".join(lines)


def load(path: Path) -> dict[str, Any]:
    return experiment_file.load(path)  # a regular file of at most 4 MiB, no duplicate key


def configure(experiment: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The experiment with ``values`` as plain configuration values and the opsproof control declared."""
    experiment = copy.deepcopy(experiment)
    config = experiment.setdefault("configuration", {})
    for key, value in values.items():
        if value is not None:
            config[key] = str(value) if isinstance(value, Path) else value
    controls = experiment.setdefault("controls", [])
    if not any(c.get("provider", {}).get("module") == CONTROL["provider"]["module"] for c in controls):
        controls.append(copy.deepcopy(CONTROL))
    return experiment


def run(path: Path | str, *, inventory: Path | str | None = None, sandbox_dir: Path | str | None = None,
        allow_destructive: bool = False, out: Path | str | None = None,
        change: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
    """Validate and run one experiment, its evidence under ``out`` (the output root, see :mod:`opsproof.output`);
    ``change`` may edit the loaded experiment first (tests do)."""
    from chaoslib.configuration import load_configuration
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.run import Runner
    from chaoslib.types import Strategy

    path = Path(path)
    started = time.perf_counter()
    experiment = load(path)
    if change is not None:
        change(experiment)
    experiment = configure(experiment, {
        "opsproof_inventory": inventory, "opsproof_sandbox_dir": sandbox_dir,
        "opsproof_out": output.root(out), "opsproof_allow_destructive": allow_destructive})
    configuration = load_configuration(experiment["configuration"])
    ctx = Context.of(configuration)
    ctx.destructive(f"run the experiment {path.name}")  # refuse before Chaos Toolkit touches anything
    ensure_experiment_is_valid(experiment)
    logging.getLogger("chaostoolkit").setLevel(logging.WARNING)
    with _handlers_kept():
        signals.watch()
        try:
            with Runner(Strategy.DEFAULT) as runner:
                journal: dict[str, Any] = runner.run(experiment, settings=copy.deepcopy(SETTINGS))
        finally:  # whatever the rollbacks could not undo (a second Ctrl-C stops them; a rollback failed)
            _recover(configuration)
    doc = journal.get("opsproof")
    if doc is None:  # the control could not write it (its errors are only logged by Chaos Toolkit): do it here
        doc = evidence.save(journal, configuration, str(experiment.get("title") or "experiment"))[0]
    outcome = Outcome(path, journal, doc, Path(doc["evidence"]) if doc.get("evidence") else None,
                      time.perf_counter() - started)
    if (signum := signals.received()) is not None:
        raise signals.Interrupted(signum, outcome)  # the caller ends too: pytest's session, the CLI
    return outcome


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    """The caller's SIGINT handler back after the run (the opsproof control installs its own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _recover(configuration: dict[str, Any]) -> None:
    recovery = faultjournal.recover(faultjournal.of(configuration))
    for problem in recovery.problems:
        logging.getLogger("opsproof.chaos").error("opsproof: a fault could not be rolled back: %s", problem)
