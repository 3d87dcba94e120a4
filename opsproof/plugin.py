"""The pytest plugin: options, markers, parametrization from the inventory, concurrent probing, evidence.

A suite test declares the probe it verifies with ``@pytest.mark.check(probe)`` and asks for ``result``;
the plugin parametrizes it over the inventory entries of the probe's kind (ids like ``redis[cache]``),
runs every selected probe ahead of time in a thread pool (one client per target, so a run of 500 checks
takes about as long as its slowest targets, not their sum), and records every result as a JSON line.
What the results mean for the run (eventually/retry, blocked-by, waivers, the time budget, ``--fail-on``) is
decided in :mod:`opsproof.governance`; this module only wires it into pytest.
"""

from __future__ import annotations

import gc
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from opsproof import baseline, governance, output
from opsproof.inventory import Inventory, InventoryError, load
from opsproof.probes import Connections, ProbeSpec, Target, run
from opsproof.redact import Redactor
from opsproof.result import Result, Severity

if TYPE_CHECKING:
    from opsproof.sandbox.control import Sandbox

RESULT_KEY = pytest.StashKey[Result]()
SEVERITY_KEY = pytest.StashKey[Severity]()
VERDICT_KEY = pytest.StashKey[dict[str, Any]]()  # governance fields of the check's record (verdict, blocked_by…)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opsproof", "opsproof: operational checks")
    group.addoption("--inventory", metavar="FILE", default=os.environ.get("OPSPROOF_INVENTORY"),
                    help="inventory of the environment to check (env: OPSPROOF_INVENTORY). "
                    "Without it, the suites run against the opsproof sandbox.")
    group.addoption("--no-sandbox", action="store_true",
                    help="fail instead of using the sandbox when no --inventory is given")
    group.addoption("--sandbox-dir", metavar="DIR", default=None,
                    help="state folder of the sandbox (default: $OPSPROOF_SANDBOX_DIR or ~/.local/state/opsproof)")
    group.addoption("--opsproof-out", metavar="DIR", default=None,
                    help="where every output goes: results.jsonl, baselines/, drills/, chaos/ (env: OPSPROOF_OUT; "
                    "default: reports). Relative paths resolve against the working directory, as --junitxml")
    group.addoption("--opsproof-record", metavar="FILE", default=None,
                    help="where every check's result is written as JSON lines (default: OUT/results.jsonl)")
    group.addoption("--opsproof-concurrency", metavar="N", type=int, default=32,
                    help="probes run at once (default 32; 1 runs them one after another)")
    group.addoption("--fail-on", metavar="SEVERITY", default="low", choices=[s.value for s in Severity],
                    help="lowest severity of a failed check that fails the run: critical|high|medium|low "
                    "(default low: any failed check fails the run)")
    group.addoption("--waivers", metavar="FILE", default=None,
                    help="YAML list of accepted findings: {check: PATTERN, reason, owner, ticket, expires: "
                    "YYYY-MM-DD}; PATTERN matches check@target (redis.hit_rate@redis[cache]) or the test id")
    group.addoption("--time-budget", metavar="SECONDS", type=float, default=None,
                    help="time for the whole run: once spent, every unfinished check fails as timed out")
    group.addoption("--baseline", metavar="LABEL|FILE", default=None,
                    help="for checks/post_maintenance: the baseline captured before the window "
                    "(`opsproof baseline capture --label LABEL`), by label (OUT/baselines/LABEL.json) or path")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(probe): the opsproof probe this test verifies")
    config.addinivalue_line("markers", "severity(level): critical|high|medium|low, overrides the probe default")
    config.addinivalue_line("markers", "smoke: part of the smoke suite")
    state = State(config)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "opsproof-state")
    if config.getoption("inventory"):
        state.inventory()  # validate before collection; a broken file is a usage error, not a traceback
    state.configure_governance()


class State:
    """Per-run state: the inventory, clients, the probe pool and the results file."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._inventory: Inventory | None = None
        self._sandbox: Sandbox | None = None
        self.redact = Redactor()
        self.conns = Connections()
        self.futures: dict[str, Future[Result]] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.record_file: Any = None
        self._lock = threading.Lock()
        self.not_configured = 0
        self.notes: list[str] = []
        self.notes_at_end: list[str] = []  # e.g. the post-maintenance diff
        self.error: pytest.UsageError | None = None
        self.budget = governance.Budget(config.getoption("time_budget"))
        self.waivers = governance.Waivers()
        self.gate = governance.Gate()
        self.stopping = threading.Event()  # set once the time budget is spent: polling loops end
        self._on_demand: ThreadPoolExecutor | None = None
        self.reported: set[str] = set()  # check@target of every check this run reports (root causes among them)

    def configure_governance(self) -> None:
        """Validate --time-budget and the waivers file before collection (a usage error, like the inventory)."""
        if self.budget.seconds is not None and not self.budget.seconds > 0:
            raise pytest.UsageError(f"--time-budget {self.budget.seconds:g}: must be more than 0 seconds. "
                                    "Fix: pass the run's time in seconds, e.g. --time-budget 120.")
        path = self.config.getoption("waivers")
        if path:
            try:
                self.waivers = governance.Waivers(governance.load_waivers(path))
            except governance.WaiverError as e:
                raise pytest.UsageError(str(e)) from None
        self.gate = governance.Gate(Severity(self.config.getoption("fail_on")), self.budget, self.waivers.items)

    def inventory(self) -> Inventory:
        with self._lock:
            if self._inventory is None:
                path = self.config.getoption("inventory")
                if not path:
                    path = self._use_sandbox()
                try:
                    self._inventory = load(path)
                except InventoryError as e:
                    raise pytest.UsageError(str(e)) from None
                self.redact = Redactor(self._inventory.secrets)
            return self._inventory

    def _use_sandbox(self) -> str:
        if self.config.getoption("no_sandbox"):
            raise pytest.UsageError("no --inventory given (and --no-sandbox). Fix: pass --inventory FILE.")
        from opsproof.sandbox.control import attach_or_start
        from opsproof.sandbox.process import SandboxError

        try:
            self._sandbox, path, started = attach_or_start(self.config.getoption("sandbox_dir"))
        except SandboxError as e:
            raise pytest.UsageError(f"no --inventory given, and the sandbox could not start: {e}") from None
        how = "started for this run, stopped after it" if started else "already up"
        self.notes.append(f"opsproof: no --inventory given; using the sandbox ({how}): {path}")
        return str(path)

    def judge(self, spec: ProbeSpec, target: Target[Any]) -> governance.Judgement:
        return governance.judge(spec, target, self.fetch, self.inventory(), self.budget, self.reported)

    def fetch(self, spec: ProbeSpec, target: Target[Any]) -> Result:
        """A probe's result, prefetched or run now; waits at most what is left of the time budget."""
        if self.budget.exhausted():
            self.expire()
            raise governance.TimedOut
        try:
            result = self._future(spec, target).result(timeout=self.budget.remaining())
        except (TimeoutError, CancelledError, governance.TimedOut):
            self.expire()
            raise governance.TimedOut from None
        return result.redacted(self.redact)

    def _future(self, spec: ProbeSpec, target: Target[Any]) -> Future[Result]:
        key = f"{spec.check}:{target.id}"
        if key not in self.futures:
            if self.budget.seconds is not None:  # in a thread, so that waiting for it is bounded by the budget
                if self._on_demand is None:
                    self._on_demand = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsproof-on-demand")
                self.futures[key] = self._on_demand.submit(self._job, spec, target)
            else:
                done: Future[Result] = Future()
                self.futures[key] = done
                try:
                    done.set_result(self._job(spec, target))
                except governance.TimedOut as e:
                    done.set_exception(e)
        return self.futures[key]

    def _job(self, spec: ProbeSpec, target: Target[Any]) -> Result:
        """Run a probe once, or until it passes as the entry's ``retry`` asks."""
        retry = getattr(target.config, "retry", None)
        attempt: Callable[[], Result] = lambda: run(spec, target, self.conns)  # noqa: E731
        return attempt() if retry is None else governance.eventually(attempt, retry, wait=self.stopping.wait)

    def expire(self) -> None:
        """The time budget is spent: stop polling, cancel every probe not started; in-flight ones end on
        their own timeouts."""
        self.stopping.set()
        for pool in (self.pool, self._on_demand):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def prefetch(self, jobs: list[tuple[ProbeSpec, Target[Any]]]) -> None:
        workers = max(1, self.config.getoption("opsproof_concurrency"))
        if workers == 1 or not jobs:
            return
        self.pool = ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="opsproof-probe")
        for spec, target in jobs:
            key = f"{spec.check}:{target.id}"
            if key not in self.futures:
                self.futures[key] = self.pool.submit(self._job, spec, target)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Write one JSON line per check, and tell the gate (controller side, so it also works under xdist)."""
        if hasattr(self.config, "workerinput"):
            return
        props = dict(report.user_properties)
        recorded = "opsproof" in props and (report.when == "call" or (report.when == "setup" and not report.passed))
        record = {"test": report.nodeid, "outcome": report.outcome, **json.loads(str(props["opsproof"]))} \
            if recorded else None
        self.gate.observe(report.nodeid, report.when, report.outcome, record)
        if record is None:
            return
        if report.failed and "verdict" not in record and report.longrepr:
            record["message"] = str(report.longrepr).splitlines()[-1][:500]
        if self.record_file is None:
            path = record_path(self.config)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.record_file = path.open("w", encoding="utf-8")
        self.record_file.write(self.redact(json.dumps(record, default=str, ensure_ascii=False)) + "\n")
        self.record_file.flush()

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not hasattr(self.config, "workerinput"):
            self.gate.failed_collection(report.nodeid)

    def close(self) -> None:
        self.stopping.set()
        for pool in (self.pool, self._on_demand):  # waits only for probes in flight, bounded by their timeouts
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.conns.close()
        if self.record_file is not None:
            self.record_file.close()
        if self._sandbox is not None:
            self._sandbox.down()
            self._sandbox = None


STATE_KEY = pytest.StashKey[State]()


def _state(config: pytest.Config) -> State:
    return config.stash[STATE_KEY]


def output_root(config: pytest.Config) -> Path:
    """The run's output root (``--opsproof-out``; see :mod:`opsproof.output`)."""
    return output.root(config.getoption("opsproof_out"), config.invocation_params.dir)


def record_path(config: pytest.Config) -> Path:
    given = config.getoption("opsproof_record")
    return output.resolve(given, config.invocation_params.dir) if given else output.results(output_root(config))


def inventory_of(config: pytest.Config) -> Inventory:
    """The run's inventory, for suites that parametrize themselves (the DR drill)."""
    return _state(config).inventory()


def record_result(item: pytest.Item, result: Result) -> None:
    """Record a result produced by the test itself (a drill phase) like a probe's: JSON line, JUnit, Allure,
    severity gate, secrets masked."""
    state = _state(item.config)
    result = result.redacted(state.redact)
    item.stash[RESULT_KEY] = result
    item.stash[VERDICT_KEY] = {"verdict": result.verdict}
    if item.config.getoption("allure_report_dir", None):
        _attach_to_allure(result, _severity(item))


def _spec_and_target(item: pytest.Item) -> tuple[ProbeSpec | None, Target[Any] | None]:
    marker = item.get_closest_marker("check")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None:
        return None, None
    target = callspec.params.get("target")
    return marker.args[0], target if isinstance(target, Target) else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("check")
    if marker is None:
        return
    spec = marker.args[0] if marker.args else None
    if not isinstance(spec, ProbeSpec):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.check needs a probe, got {spec!r}")
    state = _state(metafunc.config)
    if state.error is not None:
        return
    try:
        inventory = state.inventory()
    except pytest.UsageError as e:  # raised again once collection ends: a usage error, not 20 collection errors
        state.error = e
        return
    targets = [Target(spec.kind, name, cfg) for name, cfg in inventory.targets(spec.kind).items()]
    metafunc.parametrize("target", [pytest.param(t, id=t.id) for t in targets])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect checks the inventory does not configure (no entry of their kind, or the option unset)."""
    error = _state(config).error
    if error is not None:
        raise error
    keep, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("check")
        if marker is None:
            keep.append(item)
            continue
        spec, target = _spec_and_target(item)
        if spec is None or target is None or not spec.applies(target.config):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        _state(config).not_configured = len(dropped)


@pytest.fixture
def result(request: pytest.FixtureRequest, target: Target[Any]) -> Result:
    """The result of the probe named by the test's ``check`` marker, for this test's target."""
    spec, _ = _spec_and_target(request.node)
    assert spec is not None, "the result fixture needs @pytest.mark.check(probe)"
    judgement = _state(request.config).judge(spec, target)
    request.node.stash[RESULT_KEY] = judgement.result
    request.node.stash[VERDICT_KEY] = judgement.record()
    if judgement.blocked is not None:
        pytest.skip(judgement.blocked.reason)
    return judgement.result


ALLURE_SEVERITY = {"critical": "blocker", "high": "critical", "medium": "normal", "low": "minor"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    res = item.stash.get(RESULT_KEY, None)
    if res is not None and item.config.getoption("allure_report_dir", None):
        _attach_to_allure(res, _severity(item))  # in the call phase, so it lands on the test, not the fixture
    return (yield)


def _attach_to_allure(res: Result, severity: Severity | None) -> None:
    """With allure-pytest active (--alluredir): the evidence as an attachment, the severity as its label."""
    import allure

    allure.dynamic.label("severity", ALLURE_SEVERITY[severity.value if severity else "medium"])  # type: ignore[no-untyped-call]
    allure.dynamic.label("opsproof_check", res.check)  # type: ignore[no-untyped-call]
    allure.attach(json.dumps(res.to_record(), indent=2, default=str, ensure_ascii=False),
                  name=f"evidence {res.target}", attachment_type=allure.attachment_type.JSON)


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    """The inventory of the environment under test (the sandbox's when none was given)."""
    return _state(request.config).inventory()


@pytest.fixture(scope="session")
def maintenance_diff(request: pytest.FixtureRequest, inventory: Inventory) -> list[baseline.Change]:
    """The environment now against the baseline given with --baseline (captured once per run), also written
    as JSON beside the results and printed at the end of the run."""
    label = request.config.getoption("baseline")
    if not label:
        pytest.fail("no --baseline given: capture one before the window with "
                    "`opsproof baseline capture --label pre-maint --inventory …`, then pass --baseline pre-maint",
                    pytrace=False)
    try:
        before = baseline.load(label, output_root(request.config), request.config.invocation_params.dir)
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    changes = baseline.compare(before, baseline.capture(inventory, f"{before['label']}-after"), inventory.tolerances)
    state = _state(request.config)
    state.notes_at_end.append(baseline.render(changes, before["label"]))
    out = output.baseline_diff(output_root(request.config), before["label"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(baseline.to_json(changes), indent=2, ensure_ascii=False) + "\n")
    return changes


def _severity(item: pytest.Item) -> Severity | None:
    spec, target = _spec_and_target(item)
    if spec is None:
        if RESULT_KEY not in item.stash:
            return None  # not an opsproof check
        marker = item.get_closest_marker("severity")
        return Severity(marker.args[0] if marker else Severity.HIGH)  # recorded by the test (record_result)
    override = getattr(target.config, "severity", None) if target is not None else None
    marker = item.get_closest_marker("severity")
    return Severity(override or (marker.args[0] if marker else spec.severity))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly or session.testsfailed:
        return  # no probing for --collect-only, nor when collection failed (pytest will not run the tests)
    state = _state(config)
    checks = []
    for item in session.items:
        spec, target = _spec_and_target(item)
        if spec is not None and target is not None and spec.applies(target.config):
            checks.append((spec, target))
    state.reported = {f"{spec.check}@{target.id}" for spec, target in checks}
    # The collected items, the inventory and the modules live until the end: out of the collector's way, so that
    # its full passes (and pytest's own at exit) do not walk them again (≈ 1.5 s for 9,000 checks)
    gc.freeze()
    if not hasattr(config, "workerinput"):  # an xdist worker probes on demand
        state.prefetch(checks)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Once the time budget is spent, every remaining test fails at once (a check, through its result)."""
    state = _state(item.config)
    if state.budget.exhausted() and _severity(item) is None:
        state.expire()
        pytest.fail(state.budget.message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    state = _state(item.config)
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = report.longrepr
        report.longrepr = (path, line, state.redact(reason))
    elif report.longrepr is not None:
        report.longrepr = state.redact(str(report.longrepr))
    severity = _severity(item)
    res = item.stash.get(RESULT_KEY, None)
    if severity is None:
        return report  # not an opsproof check
    if report.when == "call" or (report.when == "setup" and not report.passed):
        record: dict[str, Any] = {"severity": severity.value if severity else None}
        if res is not None:
            record.update(res.to_record())
            record.update(item.stash.get(VERDICT_KEY, {"verdict": res.verdict}))
            if report.when == "call" and report.failed and record.get("verdict") != "timed-out":
                record.update(_waive(report, state.waivers.decide(f"{res.check}@{res.target}", item.nodeid)))
        # on the item, so that the teardown report carries it into JUnit XML (and xdist ships it to the controller)
        item.user_properties.append(("opsproof", state.redact(json.dumps(record, default=str))))
        report.user_properties = list(item.user_properties)
    return report


def _waive(report: pytest.TestReport, decision: governance.WaiverDecision | None) -> dict[str, Any]:
    """A failed check under a waiver: reported as xfailed while the waiver holds, failing loudly once expired."""
    if decision is None:
        return {}
    if decision.expired:
        report.longrepr = f"{report.longrepr}\n{decision.expired_message}: the failure counts again."
    else:
        report.outcome = "skipped"
        report.wasxfail = decision.xfail_reason
    return decision.record()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """--fail-on: a run that failed only through checks below the gate exits 0."""
    state = session.config.stash.get(STATE_KEY, None)
    if state is not None and not hasattr(session.config, "workerinput"):
        stopped = bool(session.shouldfail or session.shouldstop)  # -x/--maxfail: later checks never ran
        session.exitstatus = state.gate.exit_status(int(session.exitstatus), stopped=stopped)


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash:
        _state(config).close()


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    state = config.stash.get(STATE_KEY, None)
    return list(state.notes) if state is not None else []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.not_configured:
        terminalreporter.write_line(
            f"opsproof: {state.not_configured} check(s) deselected: not configured in this inventory")
    if state is not None and not hasattr(config, "workerinput"):
        for line, loud in state.gate.summary():
            terminalreporter.write_line(line, red=loud, bold=loud)
    for note in state.notes_at_end if state is not None else []:
        terminalreporter.write_line(note)
    if state is not None and state.record_file is not None:
        terminalreporter.write_line(f"opsproof: results recorded in {state.record_file.name}")


def pytest_report_header(config: pytest.Config) -> str | None:
    path = config.getoption("inventory")
    if not path:
        return None
    inv = _state(config).inventory()
    production = " — PRODUCTION" if inv.production else ""
    return f"opsproof: inventory {path} (environment {inv.environment}{production}, {inv.count()} targets)"
