"""The pytest plugin: options, markers, parametrization from the inventory, concurrent probing, evidence.

A suite test declares the probe it verifies with ``@pytest.mark.check(probe)`` and asks for ``result``;
the plugin parametrizes it over the inventory entries of the probe's kind (ids like ``redis[cache]``),
runs every selected probe ahead of time in a thread pool (one client per target, so a run of 500 checks
takes about as long as its slowest targets, not their sum), and records every result as a JSON line.
What the results mean for the run (eventually/retry, blocked-by, the time budget) is decided in
:mod:`opsproof.governance`; every check's record goes through :mod:`opsproof.report.pipeline` (collect → waive →
judge → gate → render); the run's state lives in :mod:`opsproof.session` (probing in :mod:`opsproof.probing`, the
records' transport in :mod:`opsproof.records`); this module only wires them into pytest.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Any

import pytest

from opsproof import baseline, lean, output, records
from opsproof.environment import opsproof_environment as opsproof_environment  # the users' fixture
from opsproof.environment import opsproof_environment_spec as opsproof_environment_spec
from opsproof.governance.verdict import Judgement
from opsproof.input_warnings import waiver_warnings
from opsproof.inventory import Inventory
from opsproof.probes import ProbeSpec, Target
from opsproof.report import maintenance, pipeline
from opsproof.report.records import CheckRecord
from opsproof.result import Result, Severity
from opsproof.session import BUDGET_START, Run, budget_start_wall

JUDGEMENT_KEY = pytest.StashKey[Judgement]()  # the check's result and its verdict before the test ran
SEVERITY_KEY = pytest.StashKey[Severity]()  # of a check with a probe: fixed once collected, computed once
CHECK_KEY = pytest.StashKey[tuple[ProbeSpec | None, Target[Any] | None]]()  # the item's probe and target, cached


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opsproof", "opsproof: operational checks")
    group.addoption("--inventory", metavar="FILE", default=os.environ.get("OPSPROOF_INVENTORY"),
                    help="inventory of the environment to check (env: OPSPROOF_INVENTORY). "
                    "Without it, the suites run against the opsproof sandbox.")
    group.addoption("--no-sandbox", action="store_true",
                    help="fail instead of using the sandbox when no --inventory is given")
    group.addoption("--sandbox-dir", metavar="DIR", default=None,
                    help="state folder of the sandbox (default: $OPSPROOF_SANDBOX_DIR or ~/.local/state/opsproof)")
    group.addoption("--opsproof-environment", metavar="FILE", default=None,
                    help="a containers spec for the opsproof_environment fixture (README: Containers)")
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
                    help="time for the whole run: once spent, every check whose result is not ready fails as timed "
                    "out, naming the target it waited for; the run then ends at once, whatever the targets do")
    group.addoption("--baseline", metavar="LABEL|FILE", default=None,
                    help="for checks/post_maintenance: the baseline captured before the window "
                    "(`opsproof baseline capture --label LABEL`), by label (OUT/baselines/LABEL.json) or path")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(probe): the opsproof probe this test verifies")
    config.addinivalue_line("markers", "severity(level): critical|high|medium|low, overrides the probe default")
    config.addinivalue_line("markers", "smoke: part of the smoke suite")
    run = Run(config)
    config.stash[STATE_KEY] = run
    config.pluginmanager.register(_Reports(run, config), "opsproof-state")
    config.pluginmanager.register(lean.Lean(config, _is_check), "opsproof-lean")
    if run.options.inventory:
        run.env.inventory()  # validate before collection; a broken file is a usage error, not a traceback
    gc.freeze()  # the modules and the inventory live until the end: out of the collector's way from now on
    run.configure()
    waivers = run.judging.waivers
    run.summary.notes_at_end += [f"opsproof: warning: {w}"
                                 for w in waiver_warnings(waivers.items, str(run.options.waivers), waivers.today)]


class _Reports:
    """The hooks that see every report (controller side, so they also work under xdist); pytest passes them no
    config, so they are methods of an object registered per run."""

    def __init__(self, run: Run, config: pytest.Config) -> None:
        self.run = run
        self.worker = hasattr(config, "workerinput")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """The gate and the results file (the pipeline's end) see every report."""
        if self.worker:
            return
        record = records.carried(report, self.run.carrying.pop(report.nodeid, None))
        self.run.pipeline.at_report(pipeline.Seen(report.nodeid, report.when, report.outcome), record)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and not self.worker:
            self.run.judging.gate.failed_collection(report.nodeid)


STATE_KEY = pytest.StashKey[Run]()


def _state(config: pytest.Config) -> Run:
    return config.stash[STATE_KEY]


def output_root(config: pytest.Config) -> Path:
    """The run's output root (``--opsproof-out``; see :mod:`opsproof.output`)."""
    return _state(config).options.root


def inventory_of(config: pytest.Config) -> Inventory:
    """The run's inventory, for suites that parametrize themselves (the DR drill)."""
    return _state(config).env.inventory()


def record_result(item: pytest.Item, result: Result) -> None:
    """Record a result produced by the test itself (a drill phase) like a probe's: JSON line, JUnit, Allure,
    severity gate, secrets masked."""
    run = _state(item.config)
    result = result.redacted(run.env.redact)
    item.stash[JUDGEMENT_KEY] = Judgement(result, result.verdict)
    if item.config.getoption("allure_report_dir", None):
        _attach_to_allure(item, result)


def _spec_and_target(item: pytest.Item) -> tuple[ProbeSpec | None, Target[Any] | None]:
    found = item.stash.get(CHECK_KEY, None)
    if found is None:
        marker = item.get_closest_marker("check")
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec is not None else None
        found = (None, None) if marker is None or callspec is None else \
            (marker.args[0], target if isinstance(target, Target) else None)
        item.stash[CHECK_KEY] = found
    return found


def _is_check(item: pytest.Item) -> bool:
    return _spec_and_target(item)[0] is not None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("check")
    if marker is None:
        return
    spec = marker.args[0] if marker.args else None
    if not isinstance(spec, ProbeSpec):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.check needs a probe, got {spec!r}")
    env = _state(metafunc.config).env
    if env.error is not None:
        return
    try:
        inventory = env.inventory()
    except pytest.UsageError as e:  # raised again once collection ends: a usage error, not 20 collection errors
        env.error = e
        return
    targets = [t for name, cfg in inventory.targets(spec.kind).items() for t in spec.targets(name, cfg)]
    metafunc.parametrize("target", [pytest.param(t, id=t.id) for t in targets])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect checks the inventory does not configure (no entry of their kind, or the option unset)."""
    error = _state(config).env.error
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
        _state(config).summary.not_configured = len(dropped)


@pytest.fixture
def result(request: pytest.FixtureRequest, target: Target[Any]) -> Result:
    """The result of the probe named by the test's ``check`` marker, for this test's target."""
    spec, _ = _spec_and_target(request.node)
    assert spec is not None, "the result fixture needs @pytest.mark.check(probe)"
    judgement = _state(request.config).judge(spec, target)
    request.node.stash[JUDGEMENT_KEY] = judgement
    if judgement.blocked is not None:
        pytest.skip(judgement.blocked.reason)
    return judgement.result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    judged = item.stash.get(JUDGEMENT_KEY, None)
    if judged is not None and item.config.getoption("allure_report_dir", None):
        _attach_to_allure(item, judged.result)  # in the call phase, so it lands on the test, not the fixture
    return (yield)


def _attach_to_allure(item: pytest.Item, res: Result) -> None:
    """With allure-pytest active (--alluredir): labels, evidence (opsproof.report.allure)."""
    from opsproof.report import allure

    allure.label_check(res, _severity(item), item.nodeid, _state(item.config).environment_name())


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    """The inventory of the environment under test (the sandbox's when none was given)."""
    return _state(request.config).env.inventory()


@pytest.fixture(scope="session")
def maintenance_diff(request: pytest.FixtureRequest, inventory: Inventory) -> list[baseline.Change]:
    """The environment now against the baseline given with --baseline (captured once per run), also written
    as JSON beside the results (``opsproof.report.maintenance``: the report reads it) and printed at the end."""
    options = _state(request.config).options
    label = options.baseline
    if not label:
        pytest.fail("no --baseline given: capture one before the window with "
                    "`opsproof baseline capture --label pre-maint --inventory …`, then pass --baseline pre-maint",
                    pytrace=False)
    try:
        before = baseline.load(label, output_root(request.config), request.config.invocation_params.dir)
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    changes = baseline.compare(before, baseline.capture(inventory, f"{before['label']}-after"), inventory.tolerances)
    _state(request.config).summary.notes_at_end.append(baseline.render(changes, before["label"]))
    out = output.baseline_diff(options.root, before["label"])
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = maintenance.document(baseline.to_json(changes), before["label"], inventory.environment,  # typed, versioned
                               before.get("captured_at"), _state(request.config).recorder.run, records.commit())
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return changes


def _severity(item: pytest.Item) -> Severity | None:
    known = item.stash.get(SEVERITY_KEY, None)
    if known is not None:
        return known
    spec, target = _spec_and_target(item)
    if spec is None:
        if JUDGEMENT_KEY not in item.stash:
            return None  # not an opsproof check
        marker = item.get_closest_marker("severity")
        return Severity(marker.args[0] if marker else Severity.HIGH)  # recorded by the test (record_result)
    override = getattr(target.config, "severity", None) if target is not None else None
    marker = item.get_closest_marker("severity")
    item.stash[SEVERITY_KEY] = severity = Severity(override or (marker.args[0] if marker else spec.severity))
    return severity


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    config = session.config
    # The collected items live until the end too: out of the way of the collector's full passes (and of pytest's
    # own at exit), which would walk them again and again (≈ 1.5 s for 9,000 checks)
    gc.freeze()
    if config.option.collectonly or session.testsfailed:
        return  # no probing for --collect-only, nor when collection failed (pytest will not run the tests)
    run = _state(config)
    checks = []
    for item in session.items:
        spec, target = _spec_and_target(item)
        if spec is not None and target is not None and spec.applies(target.config):
            checks.append((spec, target))
    run.judging.reported = {f"{spec.check}@{target.id}" for spec, target in checks}
    if not hasattr(config, "workerinput"):  # an xdist worker probes on demand
        run.prober.prefetch(checks)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: a worker's time budget is its controller's, started when the controller's process did."""
    node.workerinput[BUDGET_START] = budget_start_wall(_state(node.config).judging.budget)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Once the time budget is spent, every remaining test fails at once (a check, through its result)."""
    run = _state(item.config)
    if run.judging.budget.exhausted() and _severity(item) is None:
        run.prober.expire()
        pytest.fail(run.judging.budget.message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    run = _state(item.config)
    redact = run.env.redact
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = report.longrepr
        report.longrepr = (path, line, redact(reason))
    elif report.longrepr is not None:
        report.longrepr = redact(str(report.longrepr))
    severity = _severity(item)
    if severity is None:
        return report  # not an opsproof check
    if report.when == "call" or (report.when == "setup" and not report.passed):
        seen = pipeline.Seen(item.nodeid, report.when, report.outcome, item.stash.get(JUDGEMENT_KEY, None))
        record = run.pipeline.at_test(seen, severity)  # collect → waive → judge
        _waive(report, record)
        # on the item, so that the teardown report carries it into JUnit XML (and xdist ships it to the controller)
        encoded = records.encode(record, redact)
        item.user_properties.append((records.KEY, encoded.text))
        if not hasattr(item.config, "workerinput"):  # this process's report hook reads it back without parsing
            run.carrying[item.nodeid] = encoded
        report.user_properties = list(item.user_properties)
    return report


def _waive(report: pytest.TestReport, record: CheckRecord) -> None:
    """A failed check under a waiver: reported as xfailed while the waiver holds, failing loudly once expired."""
    if record.waiver_expired is not None:
        report.longrepr = f"{report.longrepr}\n{record.message}: the failure counts again."
    reason = pipeline.xfail_reason(record)
    if reason is not None:
        report.outcome = "skipped"
        report.wasxfail = reason


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """--fail-on: a run that failed only through checks below the gate exits 0."""
    run = session.config.stash.get(STATE_KEY, None)
    if run is not None and not hasattr(session.config, "workerinput"):
        stopped = bool(session.shouldfail or session.shouldstop)  # -x/--maxfail: later checks never ran
        session.exitstatus = run.judging.gate.exit_status(int(session.exitstatus), stopped=stopped)
        allure_dir = session.config.getoption("allure_report_dir", None)
        if allure_dir:
            from opsproof.report import allure

            allure.write_run_files(Path(allure_dir), run.environment_name(), run.options.inventory, records.commit(),
                                   run.env.redact)


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash:
        _state(config).close()


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    run = config.stash.get(STATE_KEY, None)
    return list(run.env.notes) if run is not None else []


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(STATE_KEY, None)
    if run is not None and run.summary.not_configured:
        terminalreporter.write_line(
            f"opsproof: {run.summary.not_configured} check(s) deselected: not configured in this inventory")
    if run is not None and not hasattr(config, "workerinput"):
        for line, loud in run.judging.gate.summary():
            terminalreporter.write_line(line, red=loud, bold=loud)
    for note in run.summary.notes_at_end if run is not None else []:
        terminalreporter.write_line(note)
    if run is not None and run.recorder.file is not None:
        terminalreporter.write_line(f"opsproof: results recorded in {run.recorder.file.name}")


def pytest_report_header(config: pytest.Config) -> str | None:
    path = _state(config).options.inventory
    if not path:
        return None
    inv = _state(config).env.inventory()
    production = " — PRODUCTION" if inv.production else ""
    return f"opsproof: inventory {path} (environment {inv.environment}{production}, {inv.count()} targets)"
