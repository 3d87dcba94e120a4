"""One run's state, as the parts the plugin composes: its options, where its targets come from (the inventory,
or the sandbox's), how results become verdicts (budget, waivers, gate), how its probes run
(:mod:`opsproof.probing`), and the pipeline its records go through (:mod:`opsproof.report.pipeline`)."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from opsproof import governance, output
from opsproof.inventory import Inventory, InventoryError, load
from opsproof.probes import ProbeSpec, Target
from opsproof.probing import Prober
from opsproof.records import Encoded, Recorder
from opsproof.redact import Redactor, mask_client_logs
from opsproof.report.pipeline import Pipeline
from opsproof.result import Result, Severity
from opsproof.util import process

if TYPE_CHECKING:
    from opsproof.sandbox.control import Sandbox


@dataclass(frozen=True)
class Options:
    """The opsproof command-line options (defined in ``opsproof.plugin.pytest_addoption``), typed."""

    inventory: str | None
    no_sandbox: bool
    sandbox_dir: str | None
    out: str | None  # --opsproof-out, as given
    record: str | None  # --opsproof-record, as given
    concurrency: int
    fail_on: Severity
    waivers: str | None
    time_budget: float | None
    baseline: str | None
    invocation_dir: Path  # relative paths resolve here, as pytest resolves --junitxml

    @classmethod
    def of(cls, config: pytest.Config) -> Options:
        opt = config.getoption
        return cls(inventory=opt("inventory"), no_sandbox=bool(opt("no_sandbox")), sandbox_dir=opt("sandbox_dir"),
                   out=opt("opsproof_out"), record=opt("opsproof_record"), concurrency=opt("opsproof_concurrency"),
                   fail_on=Severity(opt("fail_on")), waivers=opt("waivers"), time_budget=opt("time_budget"),
                   baseline=opt("baseline"), invocation_dir=config.invocation_params.dir)

    @property
    def root(self) -> Path:
        """The run's output root (see :mod:`opsproof.output`)."""
        return output.root(self.out, self.invocation_dir)

    @property
    def record_path(self) -> Path:
        return output.resolve(self.record, self.invocation_dir) if self.record else output.results(self.root)


class Environment:
    """The inventory under test — the sandbox's when none was given — and the redactor of its secrets."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self._inventory: Inventory | None = None
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()
        self.redact = Redactor()
        mask_client_logs()  # the clients' logs (httpx: every URL at INFO) reach log_cli, --log-file and the reports
        self.notes: list[str] = []  # shown once collection ends: where the targets come from
        self.error: pytest.UsageError | None = None  # a broken inventory met during collection, raised after it

    def inventory(self) -> Inventory:
        if self._inventory is not None:  # read once per check: no lock once loaded
            return self._inventory
        with self._lock:
            if self._inventory is None:
                path = self.options.inventory
                if not path:
                    path = self._use_sandbox()
                try:
                    self._inventory = load(path)
                except InventoryError as e:
                    raise pytest.UsageError(str(e)) from None
                self.redact = Redactor(self._inventory.secrets)
                mask_client_logs(self._inventory.secrets)
            return self._inventory

    def mask(self, text: str) -> str:
        """The secrets of the inventory masked (its redactor is replaced once the inventory is read)."""
        return self.redact(text)

    def _use_sandbox(self) -> str:
        if self.options.no_sandbox:
            raise pytest.UsageError("no --inventory given (and --no-sandbox). Fix: pass --inventory FILE.")
        from opsproof.sandbox.control import attach_or_start
        from opsproof.sandbox.process import SandboxError

        try:
            self._sandbox, path, started = attach_or_start(self.options.sandbox_dir)
        except SandboxError as e:
            raise pytest.UsageError(f"no --inventory given, and the sandbox could not start: {e}") from None
        how = "started for this run, stopped after it" if started else "already up"
        self.notes.append(f"opsproof: no --inventory given; using the sandbox ({how}): {path}")
        return str(path)

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.down()
            self._sandbox = None


@dataclass
class Judging:
    """What the run's results mean: the time budget, the waivers, the gate, and the ``check@target`` of every
    check this run reports (only those can be root causes)."""

    budget: governance.Budget
    waivers: governance.Waivers = field(default_factory=governance.Waivers)
    gate: governance.Gate = field(default_factory=governance.Gate)
    reported: set[str] = field(default_factory=set)

    def configure(self, options: Options) -> None:
        """Validate --time-budget and the waivers file before collection (a usage error, like the inventory)."""
        if self.budget.seconds is not None and not self.budget.seconds > 0:
            raise pytest.UsageError(f"--time-budget {self.budget.seconds:g}: must be more than 0 seconds. "
                                    "Fix: pass the run's time in seconds, e.g. --time-budget 120.")
        if options.waivers:
            try:
                self.waivers = governance.Waivers(governance.load_waivers(options.waivers))
            except governance.WaiverError as e:
                raise pytest.UsageError(str(e)) from None
        self.gate = governance.Gate(options.fail_on, self.budget, self.waivers.items)


@dataclass
class Summary:
    """What the terminal summary says beyond the gate."""

    not_configured: int = 0  # checks deselected: not configured in this inventory
    notes_at_end: list[str] = field(default_factory=list)  # e.g. the post-maintenance diff


BUDGET_START = "opsproof_budget_start"  # an xdist worker's input: when the controller's budget started (time.time())


def budget_start(config: pytest.Config) -> float:
    """When the time budget started, as ``time.monotonic()``: the start of the process, as the CI job that gives the
    budget counts (start-up included) — for an xdist worker, the start of its controller."""
    started = getattr(config, "workerinput", {}).get(BUDGET_START)
    return time.monotonic() - (time.time() - float(started) if started is not None else process.age())


def budget_start_wall(budget: governance.Budget) -> float:
    """The budget's start as ``time.time()``, for the workers (their monotonic clocks need not agree)."""
    return time.time() - (time.monotonic() - budget.start)


def run_id() -> str:
    """Which run wrote a record: host, time and process, so that runs on several machines never collide."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{socket.gethostname()}-{stamp}-{os.getpid()}"


class Run:
    """Per-run state: the options, the environment, the judging, the prober, the recorder and the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.options = Options.of(config)
        self.env = Environment(self.options)
        self.judging = Judging(governance.Budget(self.options.time_budget, budget_start(config)))
        self.prober = Prober(self.judging.budget, self.options.concurrency)
        self.recorder = Recorder(self.options.record_path, run_id(), self.environment_name)
        self.carrying: dict[str, Encoded] = {}  # nodeid → the record its report carries, until the report hook
        self.summary = Summary()
        self.pipeline = self._pipeline()

    def configure(self) -> None:
        """Validate --time-budget and the waivers (a usage error), and build the records' pipeline on them."""
        self.judging.configure(self.options)
        self.pipeline = self._pipeline()

    def _pipeline(self) -> Pipeline:
        return Pipeline(self.judging.waivers, self.judging.gate, self.recorder, self.env.mask)

    def environment_name(self) -> str | None:
        try:
            return self.env.inventory().environment
        except pytest.UsageError:  # the engine's own tests, or a broken inventory (reported on its own)
            return None

    def judge(self, spec: ProbeSpec, target: Target[Any]) -> governance.Judgement:
        j = self.judging
        return governance.judge(spec, target, self.fetch, self.env.inventory(), j.budget, j.reported)

    def fetch(self, spec: ProbeSpec, target: Target[Any]) -> Result:
        """A probe's result (raises TimedOut once the budget is spent), secrets masked."""
        return self.prober.fetch(spec, target).redacted(self.env.redact)

    def close(self) -> None:
        self.prober.close()
        self.recorder.close()
        self.env.close()
