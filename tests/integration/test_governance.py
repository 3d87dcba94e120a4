"""Governance: --fail-on, waivers, eventually/retry, blocked-by and the time budget.

Suites run as a user runs them (a pytest subprocess) against small HTTP servers started here, and against
closed ports for targets that are down; the pure parts (waiver files, polling, blocking, the gate) are also
tested directly.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import SuiteRun, run_suite

from opsproof import governance
from opsproof.governance import Budget, Gate, TimedOut, Waiver, WaiverError, Waivers
from opsproof.inventory import Inventory, Kind, Retry, loads
from opsproof.probes import ProbeSpec, Target
from opsproof.probes import http as http_probes
from opsproof.probes import postgres as pg_probes
from opsproof.probes import redis as redis_probes
from opsproof.result import Result, Severity

HEALTH = "smoke/test_http.py::test_health"  # one check per target, so that request counts are exact


class Handler(BaseHTTPRequestHandler):
    """``/<behaviour>/<arg>/<token>/health``: ok, fail (HTTP 500), fail-first/K, flap (pass, fail, …), slow/S.

    Requests are counted per path, so every test uses a path of its own (a fresh token).
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    counts: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        behaviour, arg, *_ = [*self.path.strip("/").split("/"), "", ""]
        with self.lock:
            n = self.counts[self.path] = self.counts.get(self.path, 0) + 1
        if behaviour == "slow":
            time.sleep(float(arg))
        if behaviour == "fail-first":
            ok = n > int(arg)
        else:
            ok = {"ok": True, "slow": True, "flap": n % 2 == 1}.get(behaviour, False)
        status = 200 if ok else 500
        body = json.dumps({"status": "ok" if status == 200 else "error", "request": n}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default backlog of 5 drops connections: 1 s SYN retries


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def url(server: str, behaviour: str, arg: object = "-") -> str:
    return f"{server}/{behaviour}/{arg}/{uuid.uuid4().hex}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def by_check(run: SuiteRun) -> dict[str, dict[str, Any]]:
    """``check@target`` → record."""
    return {f"{r['check']}@{r['target']}": r for r in run.records}


# --- --fail-on ---------------------------------------------------------------------------------------------


def gated_inventory(tmp_path: Path, server: str, severity: str) -> Path:
    return write(tmp_path, f"""
environment: staging
http:
  api: {{url: "{url(server, 'ok')}", ready: null}}
  web: {{url: "{url(server, 'fail')}", ready: null, severity: {severity}}}
""")


def test_fail_on_high_forgives_a_medium_failure(server: str, tmp_path: Path) -> None:
    run = run_suite(gated_inventory(tmp_path, server, "medium"), tmp_path, "--fail-on=high", suite=HEALTH)
    assert run.code == 0, run.output
    assert run.failed == {"http.health@http[web]"}  # still reported as failed, with its finding
    assert "opsproof: gate --fail-on=high: failed checks of severity critical or high fail the run" in run.output
    assert ("opsproof: 1 failed check(s) below --fail-on=high (medium: http[web] http.health) "
            "do not fail the run") in run.output


def test_fail_on_high_fails_on_a_high_failure(server: str, tmp_path: Path) -> None:
    run = run_suite(gated_inventory(tmp_path, server, "high"), tmp_path, "--fail-on=high", suite=HEALTH)
    assert run.code == 1
    assert "below --fail-on" not in run.output


def test_fail_on_under_xdist(server: str, tmp_path: Path) -> None:
    """The gate judges on the controller, from the reports the workers send."""
    run = run_suite(gated_inventory(tmp_path, server, "medium"), tmp_path, "--fail-on=high", "-n", "2", suite=HEALTH)
    assert run.code == 0, run.output
    assert "opsproof: 1 failed check(s) below --fail-on=high" in run.output


def test_a_failing_test_that_is_not_a_check_always_fails_the_run(server: str, tmp_path: Path) -> None:
    plain = write(tmp_path, "def test_plain():\n    assert False\n", "test_plain.py")
    run = run_suite(gated_inventory(tmp_path, server, "medium"), tmp_path, "--fail-on=high", str(plain), suite=HEALTH)
    assert run.code == 1
    assert "opsproof: 1 failed check(s) below --fail-on=high" in run.output


def test_default_gate_fails_on_any_failed_check(server: str, tmp_path: Path) -> None:
    run = run_suite(gated_inventory(tmp_path, server, "low"), tmp_path, suite=HEALTH)
    assert run.code == 1
    assert "opsproof: gate --fail-on=low: any failed check fails the run" in run.output


def test_fail_on_rejects_an_unknown_severity(server: str, tmp_path: Path) -> None:
    run = run_suite(gated_inventory(tmp_path, server, "low"), tmp_path, "--fail-on=urgent", suite=HEALTH)
    assert run.code == 4
    assert "invalid choice: 'urgent'" in run.output


def test_gate_counts_every_failure_that_is_not_a_check_finding() -> None:
    gate = Gate(Severity.HIGH)
    finding = {"check": "http.health", "target": "http[web]", "severity": "medium", "verdict": "fail"}
    gate.observe("smoke/test_http.py::test_health[http[web]]", "call", "failed", finding)
    assert gate.exit_status(1) == 0
    gate.observe("tests/test_x.py::test_plain", "call", "failed", None)  # not an opsproof check
    assert gate.exit_status(1) == 1
    setup_error = Gate(Severity.HIGH)
    setup_error.observe("smoke/test_http.py::test_ready[http[web]]", "setup", "failed", finding)
    assert setup_error.exit_status(1) == 1  # a check that could not run is no finding to forgive
    assert Gate(Severity.HIGH).exit_status(2) == 2  # interrupted, usage errors: untouched
    stopped = Gate(Severity.HIGH)
    stopped.observe("smoke/test_http.py::test_health[http[web]]", "call", "failed", finding)
    assert stopped.exit_status(1, stopped=True) == 1  # -x stopped the run: the checks after it never ran
    collection = Gate(Severity.HIGH)
    collection.observe("smoke/test_http.py::test_health[http[web]]", "call", "failed", finding)
    collection.failed_collection("smoke/test_broken.py")
    assert collection.exit_status(1) == 1


def test_a_root_cause_below_the_gate_still_fails_when_it_blocks_checks_above_it(tmp_path: Path) -> None:
    """Prometheus down: prometheus.ready (high) fails, prometheus.alerts (critical) is blocked by it;
    --fail-on=critical must not turn that into a green run."""
    inventory = write(tmp_path, f"environment: staging\nprometheus:\n  main: {{url: 'http://127.0.0.1:{closed_port()}'}}\n")
    run = run_suite(inventory, tmp_path, "--fail-on=critical", suite="smoke/test_monitoring.py")
    assert run.code == 1, run.output
    records = by_check(run)
    assert records["prometheus.ready@prometheus[main]"]["outcome"] == "failed"
    assert records["prometheus.alerts@prometheus[main]"]["verdict"] == "blocked"
    assert ("opsproof: prometheus[main] prometheus.ready (high) fails the run despite --fail-on=critical: "
            "it blocks checks of severity critical") in run.output


# --- waivers -----------------------------------------------------------------------------------------------


def waived_run(server: str, tmp_path: Path, waivers: str, *args: str) -> SuiteRun:
    inventory = write(tmp_path, f"""
environment: staging
http:
  api: {{url: "{url(server, 'ok')}", ready: null}}
  web: {{url: "{url(server, 'fail')}", ready: null}}
""")
    path = write(tmp_path, waivers, "waivers.yaml")
    return run_suite(inventory, tmp_path, "--waivers", str(path), *args, suite=HEALTH)


WAIVER = """
- check: {pattern}
  reason: known outage of the web tier
  owner: alice
  ticket: OPS-1
  expires: {expires}
"""


def test_waived_failure_does_not_fail_the_run(server: str, tmp_path: Path) -> None:
    run = waived_run(server, tmp_path, WAIVER.format(pattern="http.health@http[web]", expires="2999-12-31"), "-rx")
    assert run.code == 0, run.output
    rec = by_check(run)["http.health@http[web]"]
    assert rec["outcome"] == "skipped"
    assert rec["verdict"] == "waived"
    assert rec["waived"] == {"check": "http.health@http[web]", "reason": "known outage of the web tier",
                             "owner": "alice", "ticket": "OPS-1", "expires": "2999-12-31"}
    assert rec["observed"] == "GET /health → HTTP 500"  # the finding is kept as evidence
    assert "XFAIL" in run.output
    assert "waived: known outage of the web tier (alice, OPS-1, until 2999-12-31)" in run.output
    assert ("opsproof: waived: http[web] http.health — known outage of the web tier "
            "(owner alice, ticket OPS-1, until 2999-12-31)") in run.output
    assert 'type="pytest.xfail" message="waived: known outage' in run.junit


def test_waivers_never_hide_passing_checks(server: str, tmp_path: Path) -> None:
    run = waived_run(server, tmp_path, WAIVER.format(pattern="'*'", expires="2999-12-31"))
    records = by_check(run)
    assert records["http.health@http[api]"]["verdict"] == "pass"
    assert records["http.health@http[api]"]["outcome"] == "passed"
    assert "waived" not in records["http.health@http[api]"]


def test_waiver_matches_the_test_id_too(server: str, tmp_path: Path) -> None:
    run = waived_run(server, tmp_path, WAIVER.format(pattern="'smoke/test_http.py::test_health[http[web]]'",
                                                     expires="2999-12-31"))
    assert run.code == 0, run.output
    assert by_check(run)["http.health@http[web]"]["verdict"] == "waived"


def test_expired_waiver_fails_loudly(server: str, tmp_path: Path) -> None:
    run = waived_run(server, tmp_path, WAIVER.format(pattern="http.*@http[web]", expires="2020-01-01"))
    assert run.code == 1
    rec = by_check(run)["http.health@http[web]"]
    assert rec["outcome"] == "failed"
    assert rec["verdict"] == "fail"
    assert rec["waiver_expired"]["expires"] == "2020-01-01"
    message = "waiver for http.*@http[web] (alice, OPS-1) expired on 2020-01-01"
    assert f"{message}: the failure counts again." in run.output  # in the failure itself
    assert f"opsproof: EXPIRED WAIVER: {message} — http[web] http.health fails" in run.output


def test_waiver_that_does_not_match_leaves_the_failure(server: str, tmp_path: Path) -> None:
    run = waived_run(server, tmp_path, WAIVER.format(pattern="http.health@http[api]", expires="2999-12-31"))
    assert run.code == 1
    assert run.failed == {"http.health@http[web]"}
    assert "opsproof: 1 waiver(s) matched no failed check in this run: http.health@http[api] (alice, OPS-1)" \
        in run.output


def test_waivers_under_xdist(server: str, tmp_path: Path) -> None:
    """Waivers are applied where the test runs (a worker); the gate judges on the controller."""
    run = waived_run(server, tmp_path, WAIVER.format(pattern="http.health@http[web]", expires="2999-12-31"),
                     "-n", "2")
    assert run.code == 0, run.output
    assert by_check(run)["http.health@http[web]"]["verdict"] == "waived"
    assert "opsproof: waived: http[web] http.health" in run.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (WAIVER.format(pattern="x@y", expires="2025-02-30"),
         r"waivers.yaml:6: \[0\].expires: 2025-02-30 is not a calendar date. Fix: write it like 2025-06-30"),
        (WAIVER.format(pattern="x@y", expires="next week"),
         r"waivers.yaml:6: \[0\].expires: 'next week' is not a date written YYYY-MM-DD"),
        ("- check: x@y\n  reason: r\n  ticket: OPS-1\n  expires: 2030-01-01\n",
         r"waivers.yaml:1: \[0\].owner: required key is missing. Fix: add 'owner:' \(e.g. alice@example.com\)"),
        ("- check: x@y\n  reason: ''\n  owner: a\n  ticket: OPS-1\n  expires: 2030-01-01\n",
         r"waivers.yaml:2: \[0\].reason: must not be empty"),
        ("- check: x@y\n  reason: r\n  onwer: a\n  ticket: T\n  expires: 2030-01-01\n",
         r"waivers.yaml:3: \[0\].onwer: unknown key 'onwer'. Fix: did you mean 'owner'"),
        ("check: x@y\n", r"waivers.yaml:1: \(top level\): expected a list of waivers, got a dict"),
        ("- check: [x\n", r"waivers.yaml:2: not valid YAML"),
    ],
)
def test_malformed_waivers_file_is_a_usage_error(server: str, tmp_path: Path, text: str, message: str) -> None:
    run = waived_run(server, tmp_path, text)
    assert run.code == 4  # nothing was collected or run
    assert re.search(r"(?s)ERROR: .*" + message, run.output), run.output
    assert "Traceback" not in run.output
    assert not run.records


def test_waivers_file_reports_every_problem_with_its_line() -> None:
    text = WAIVER.format(pattern="a@b", expires="2030-01-01") + "- check: c@d\n  reason: r\n  expires: 2030-13-01\n"
    with pytest.raises(WaiverError, match=r"^w.yaml: 3 problem\(s\) in the waivers:\n  w.yaml:7: \[1\].owner: "):
        governance.loads_waivers(text, "w.yaml")
    assert governance.loads_waivers("", "w.yaml") == []


WAIVER_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.dates(),
                          st.sampled_from(["2030-01-01", "2025-02-30", "*", "x@y[z]", ""]))
WAIVER_ITEMS = st.dictionaries(st.sampled_from([*Waiver.model_fields, "onwer", "0"]), WAIVER_VALUES, max_size=7)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(st.one_of(WAIVER_ITEMS, WAIVER_VALUES), max_size=4).map(yaml.safe_dump)))
def test_any_waivers_file_gives_waivers_or_the_clear_error(text: str) -> None:
    try:
        waivers: list[Waiver] | str = governance.loads_waivers(text, "w.yaml")
    except WaiverError as e:
        waivers = str(e)
    if isinstance(waivers, str):
        assert re.match(r"w\.yaml(:\d+)?: ", waivers), waivers
        assert "Fix: " in waivers
    else:
        assert all(isinstance(w, Waiver) for w in waivers)


def test_waiver_patterns_take_brackets_literally() -> None:
    waiver = Waiver(check="postgres.*@postgres[main]", reason="r", owner="o", ticket="t", expires=date(2030, 1, 1))
    assert waiver.matches("postgres.cache_hit@postgres[main]", "n")
    assert not waiver.matches("postgres.cache_hit@postgres[replica]", "n")
    assert not waiver.matches("postgres.cache_hit@postgresm", "n")  # fnmatch would read [main] as a class
    today = Waivers([waiver], today=date(2030, 1, 1)).decide("postgres.rls@postgres[main]", "n")
    assert today is not None
    assert not today.expired
    after = Waivers([waiver], today=date(2030, 1, 2)).decide("postgres.rls@postgres[main]", "n")
    assert after is not None
    assert after.expired


# --- eventually / retry --------------------------------------------------------------------------------------


def retry_inventory(tmp_path: Path, target_url: str, retry: str) -> Path:
    return write(tmp_path, f"""
environment: staging
http:
  app: {{url: "{target_url}", ready: null, retry: {retry}}}
""")


def test_retry_passes_after_failures_as_flaky(server: str, tmp_path: Path) -> None:
    inventory = retry_inventory(tmp_path, url(server, "fail-first", 2), "{within_s: 20, interval_s: 0.1}")
    run = run_suite(inventory, tmp_path, suite=HEALTH)
    assert run.code == 0, run.output
    rec = run.record("http.health")
    assert rec["outcome"] == "passed"
    assert rec["verdict"] == "flaky"
    assert rec["flaky"] is True
    assert rec["attempts"] == 3
    assert [h["ok"] for h in rec["evidence"]["polling"]["history"]] == [False, False, True]
    assert "opsproof: 1 flaky check(s) passed only after failing: http[app] http.health (3 attempts)" in run.output


def test_retry_that_never_passes_fails_with_the_attempts(server: str, tmp_path: Path) -> None:
    inventory = retry_inventory(tmp_path, url(server, "fail"), "{within_s: 1, interval_s: 0.2}")
    run = run_suite(inventory, tmp_path, suite=HEALTH)
    assert run.code == 1
    rec = run.record("http.health")
    assert rec["verdict"] == "fail"
    assert rec["attempts"] >= 3
    assert re.fullmatch(r"GET /health → HTTP 500 after (\d+) attempts in [\d.]+ s \(needed 1 consecutive pass\)",
                        rec["observed"]), rec["observed"]
    assert f"after {rec['attempts']} attempts in" in run.output


def test_retry_needs_consecutive_passes(server: str, tmp_path: Path) -> None:
    retry = "{within_s: 20, consecutive: 3, interval_s: 0.1}"
    inventory = retry_inventory(tmp_path, url(server, "fail-first", 1), retry)
    rec = run_suite(inventory, tmp_path, suite=HEALTH).record("http.health")
    assert (rec["verdict"], rec["attempts"]) == ("flaky", 4)  # one failure, then three passes in a row


def test_retry_that_keeps_flapping_fails(server: str, tmp_path: Path) -> None:
    inventory = retry_inventory(tmp_path, url(server, "flap"), "{within_s: 1, consecutive: 2, interval_s: 0.1}")
    run = run_suite(inventory, tmp_path, suite=HEALTH)
    assert run.code == 1
    observed = run.record("http.health")["observed"]
    assert observed.startswith("GET /health → HTTP 500")
    assert "(needed 2 consecutive passes)" in observed


def test_retry_on_demand_path(server: str, tmp_path: Path) -> None:
    """Without the prefetch pool (--opsproof-concurrency 1) the check is polled the same way."""
    inventory = retry_inventory(tmp_path, url(server, "fail-first", 2), "{within_s: 20, interval_s: 0.1}")
    rec = run_suite(inventory, tmp_path, "--opsproof-concurrency", "1", suite=HEALTH).record("http.health")
    assert (rec["verdict"], rec["attempts"]) == ("flaky", 3)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.now += seconds
        return False


def results(*oks: bool | None) -> Iterator[Result]:
    for ok in oks:
        yield Result("http[app]", "http.health", ok, f"answer {ok}", "HTTP 200")


def test_eventually_is_bounded_by_its_deadline() -> None:
    clock, answers = FakeClock(), results(*[False] * 100)
    res = governance.eventually(lambda: next(answers), Retry(within_s=10, interval_s=2), wait=clock.wait, clock=clock)
    assert res.ok is False
    assert res.attempts == 6  # at 0, 2, 4, 6, 8, 10 s; none after the deadline
    assert res.observed == "answer False after 6 attempts in 10.0 s (needed 1 consecutive pass)"


def test_eventually_counts_passes_in_a_row() -> None:
    clock, answers = FakeClock(), results(True, False, True, True, False, True, True, True, True)
    res = governance.eventually(lambda: next(answers), Retry(within_s=60, consecutive=3, interval_s=1),
                                wait=clock.wait, clock=clock)
    assert (res.ok, res.attempts) == (True, 8)
    assert governance.is_flaky(res, Retry(consecutive=3))


def test_eventually_stops_when_the_run_stops() -> None:
    answers = results(*[False] * 10)
    with pytest.raises(TimedOut):
        governance.eventually(lambda: next(answers), Retry(within_s=60, interval_s=30), wait=lambda _s: True)


def test_eventually_returns_no_data_at_once() -> None:
    clock, answers = FakeClock(), results(None, True)
    res = governance.eventually(lambda: next(answers), Retry(within_s=60), wait=clock.wait, clock=clock)
    assert (res.ok, res.attempts) == (None, 1)


# --- blocked-by ------------------------------------------------------------------------------------------


def test_checks_depending_on_a_down_target_are_blocked_by_it(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, f"""
environment: staging
redis:
  cache: {{url: "redis://127.0.0.1:{closed_port()}/0", timeout_s: 2}}
http:
  api: {{url: "{url(server, 'fail')}", ready: null, depends_on: [redis.cache]}}
""")
    run = run_suite(inventory, tmp_path, "-rs", suite="smoke")
    assert run.code == 1  # the root cause still fails the run
    assert run.failed == {"redis.ping@redis[cache]"}
    records = by_check(run)
    for blocked in ("http.health@http[api]", "redis.memory@redis[cache]"):
        assert records[blocked]["outcome"] == "skipped"
        assert records[blocked]["verdict"] == "blocked"
        assert records[blocked]["blocked_by"] == "redis[cache]"
        assert records[blocked]["root_cause"] == "redis.ping@redis[cache]"
    assert records["http.health@http[api]"]["observed"] == "GET /health → HTTP 500"  # its own finding is kept
    # blocking never touches a check that did not fail: the latency of this 500 page is no verdict (deferred to health)
    assert records["http.latency@http[api]"]["verdict"] == "no-data"
    assert re.search(r"SKIPPED .*blocked by redis\[cache\]: unreachable \(ConnectionError", run.output), run.output
    assert "opsproof: 2 check(s) blocked by redis[cache]: " in run.output


def test_a_dependency_outside_the_run_blocks_nothing(server: str, tmp_path: Path) -> None:
    """Only the HTTP checks run: Redis being down is not reported, so the HTTP failure must stand."""
    inventory = write(tmp_path, f"""
environment: staging
redis:
  cache: {{url: "redis://127.0.0.1:{closed_port()}/0", timeout_s: 2}}
http:
  api: {{url: "{url(server, 'fail')}", ready: null, depends_on: [redis.cache]}}
""")
    run = run_suite(inventory, tmp_path, suite="smoke/test_http.py")
    assert run.code == 1
    assert run.failed == {"http.health@http[api]"}


def test_a_down_target_blocks_its_own_other_checks(tmp_path: Path) -> None:
    inventory = write(tmp_path, f"""
environment: staging
postgres:
  main: {{dsn: "postgresql://opsproof@127.0.0.1:{closed_port()}/app", connect_timeout_s: 2}}
""")
    run = run_suite(inventory, tmp_path, suite="smoke/test_postgres.py")
    assert run.code == 1
    assert run.failed == {"postgres.ready@postgres[main]"}
    blocked = {key for key, r in by_check(run).items() if r["verdict"] == "blocked"}
    assert blocked == {"postgres.connections@postgres[main]", "postgres.long_queries@postgres[main]",
                       "postgres.cache_hit@postgres[main]"}
    assert {r["blocked_by"] for r in run.records if r["verdict"] == "blocked"} == {"postgres[main]"}


INVENTORY = """
environment: t
redis:
  cache: {url: "redis://h:1/0", depends_on: [redis.other]}
  other: {url: "redis://h:2/0"}
http:
  api: {url: "http://api", depends_on: [redis.cache]}
"""


def fake_fetch(answers: dict[str, Result]) -> governance.Fetch:
    def fetch(spec: ProbeSpec, target: Target[Any]) -> Result:
        return answers.get(f"{spec.check}@{target.id}") or Result(target.id, spec.check, True, "fine", "fine")

    return fetch


def down(check: str, target: str) -> Result:
    return Result(target, check, False, "unreachable (ConnectionError: refused)", "PONG", error="ConnectionError")


REPORTED = {"redis.ping@redis[cache]", "redis.ping@redis[other]", "http.health@http[api]"}  # checks in the run


def blocker(spec: ProbeSpec, target: Target[Any], result: Result, answers: dict[str, Result],
            reported: set[str] = REPORTED) -> governance.Blocked | None:
    return governance.find_blocker(spec, target, result, loads(INVENTORY), fake_fetch(answers), reported)


def test_blocking_rules() -> None:
    inv = loads(INVENTORY)
    cache = Target("redis", "cache", inv.redis["cache"])
    api = Target("http", "api", inv.http["api"])
    bad_answer = Result(cache.id, "redis.memory", False, "used_memory 97%", "≤ 90%")  # reachable, just wrong
    unreachable = down("redis.memory", cache.id)
    api_failed = Result(api.id, "http.health", False, "HTTP 500", "HTTP 200")
    ping_down = {"redis.ping@redis[cache]": down("redis.ping", cache.id)}
    # (a) same target: only checks that failed as unreachable, never the root itself
    assert blocker(redis_probes.memory, cache, unreachable, ping_down) is not None
    assert blocker(redis_probes.memory, cache, bad_answer, ping_down) is None
    assert blocker(redis_probes.ping, cache, down("redis.ping", cache.id), ping_down) is None
    assert blocker(redis_probes.memory, cache, unreachable, {}) is None
    # (b) depends_on: any failing check of the dependent entry
    found = blocker(http_probes.health, api, api_failed, ping_down)
    assert found is not None
    assert found.reason == "blocked by redis[cache]: unreachable (ConnectionError: refused)"
    # a root cause this run does not report (deselected, say) blocks nothing: the outage would be hidden
    assert blocker(http_probes.health, api, api_failed, ping_down, reported={"http.health@http[api]"}) is None
    # the root cause of a chain is its deepest failed dependency
    both_down = {**ping_down, "redis.ping@redis[other]": down("redis.ping", "redis[other]")}
    deep = blocker(http_probes.health, api, api_failed, both_down)
    assert deep is not None
    assert deep.by == "redis[other]"


def with_dependencies(inv: Inventory, kind: Kind, depends: dict[str, list[str]]) -> Inventory:
    """``inv`` with these ``depends_on`` — cycles included, which the inventory's loader would refuse."""
    entries = inv.targets(kind)
    changed = {name: entry.model_copy(update={"depends_on": depends.get(name, [])}) for name, entry in entries.items()}
    return inv.model_copy(update={kind: changed})


def judge_all(inv: Inventory, answers: dict[str, Result],
              specs: Sequence[ProbeSpec]) -> dict[str, governance.Judgement]:
    """Every check of ``specs`` on every redis entry, judged as the plugin does: ``check@target`` → judgement."""
    targets = [Target("redis", name, entry) for name, entry in inv.redis.items()]
    reported = {f"{spec.check}@{t.id}" for spec in specs for t in targets}
    return {f"{spec.check}@{t.id}": governance.judge(spec, t, fake_fetch(answers), inv, Budget(None), reported)
            for spec in specs for t in targets}


def assert_root_causes_fail(judged: dict[str, governance.Judgement]) -> None:
    """Blocked-ness ends in a real failure: the root cause of every blocked check is a check that fails."""
    failed = {key for key, j in judged.items() if j.verdict == "fail"}
    assert failed, "nothing fails: a dead environment would pass"
    for key, j in judged.items():
        if j.blocked is not None:
            assert j.blocked.root in failed, f"{key} is blocked by {j.blocked.root}, which does not fail"


REDIS_ABC = "environment: t\nredis:\n" + "".join(f"  {n}: {{url: 'redis://h:{i}/0'}}\n" for i, n in enumerate("abc", 1))
ALL_DOWN = {f"{check}@redis[{n}]": down(check, f"redis[{n}]") for check in ("redis.ping", "redis.memory")
            for n in "abc"}


@pytest.mark.parametrize("depends", [
    {"a": ["redis.b"], "b": ["redis.a"], "c": ["redis.a"]},
    {"a": ["redis.b"], "b": ["redis.c"], "c": ["redis.a"]},
    {"a": ["redis.a"]},
], ids=["2-cycle", "3-cycle", "self"])
def test_a_dependency_cycle_never_turns_a_dead_environment_green(depends: dict[str, list[str]]) -> None:
    """The loader refuses cycles; if one slipped through, every target down must still fail the run."""
    inv = with_dependencies(loads(REDIS_ABC), "redis", depends)
    judged = judge_all(inv, ALL_DOWN, [redis_probes.ping, redis_probes.memory])
    assert_root_causes_fail(judged)
    # no target outside a cycle to blame: each reachability check fails (c, leading only into the cycle, too)
    assert {k for k, j in judged.items() if j.verdict == "fail"} == {f"redis.ping@redis[{n}]" for n in "abc"}
    assert {k for k, j in judged.items() if j.verdict == "blocked"} == {f"redis.memory@redis[{n}]" for n in "abc"}


def test_a_cycle_with_a_way_out_blames_the_target_it_leads_to() -> None:
    inv = with_dependencies(loads(REDIS_ABC), "redis", {"a": ["redis.b"], "b": ["redis.a", "redis.c"]})
    judged = judge_all(inv, ALL_DOWN, [redis_probes.ping, redis_probes.memory])
    assert_root_causes_fail(judged)
    assert {k for k, j in judged.items() if j.verdict == "fail"} == {"redis.ping@redis[c]"}
    assert {j.blocked.by for j in judged.values() if j.blocked is not None} == {"redis[c]"}


@settings(max_examples=200, deadline=None)
@given(edges=st.dictionaries(st.sampled_from("abc"), st.lists(st.sampled_from("abc"), max_size=3)),
       dead=st.sets(st.sampled_from("abc"), min_size=1))
def test_any_dependency_graph_blames_only_real_failures(edges: dict[str, list[str]], dead: set[str]) -> None:
    inv = with_dependencies(loads(REDIS_ABC), "redis", {n: [f"redis.{d}" for d in refs] for n, refs in edges.items()})
    answers = {k: r for k, r in ALL_DOWN.items() if k.split("[")[1][0] in dead}
    assert_root_causes_fail(judge_all(inv, answers, [redis_probes.ping, redis_probes.memory]))


def test_judge_times_out_without_probing() -> None:
    inv = loads("environment: t\npostgres:\n  main: {dsn: 'postgresql://h/db'}\n")
    target = Target("postgres", "main", inv.postgres["main"])

    def spent(spec: ProbeSpec, target: Target[Any]) -> Result:
        raise TimedOut

    judgement = governance.judge(pg_probes.ready, target, spent, inv, Budget(5))
    assert judgement.verdict == "timed-out"
    assert judgement.result.explain() == ("postgres[main]: timed out: the gate's time budget of 5 s was exhausted, "
                                          "expected accepting connections")


# --- time budget -------------------------------------------------------------------------------------------


def test_time_budget_ends_the_run(server: str, tmp_path: Path) -> None:
    """Answers take 3 s (timeout 10 s); a 2 s budget: every check fails as timed out, nothing waits 10 s."""
    inventory = write(tmp_path, f"""
environment: staging
http:
  a: {{url: "{url(server, 'slow', 3)}", ready: null, timeout_s: 10}}
  b: {{url: "{url(server, 'slow', 3)}", ready: null, timeout_s: 10}}
""")
    # without the budget every check would pass (3 s < 10 s): "timed-out" on all four is the budget cutting them
    # short; a run that ignored it would hang past run_suite's timeout and fail there
    run = run_suite(inventory, tmp_path, "--time-budget", "2", suite="smoke/test_http.py", timeout=60)
    assert run.code == 1
    assert {r["verdict"] for r in run.records} == {"timed-out"}
    assert len(run.records) == 4
    assert "http[a]: timed out: the gate's time budget of 2 s was exhausted, expected HTTP 200" in run.output
    assert "opsproof: the gate's time budget of 2 s was exhausted: 4 check(s) timed out" in run.output


def test_time_budget_stops_polling(server: str, tmp_path: Path) -> None:
    inventory = retry_inventory(tmp_path, url(server, "fail"), "{within_s: 600, interval_s: 0.2}")
    # the poll would go on for 600 s (past run_suite's timeout of 60 s): a "timed-out" record is the budget ending it
    run = run_suite(inventory, tmp_path, "--time-budget", "2", suite=HEALTH, timeout=60)
    assert run.record("http.health")["verdict"] == "timed-out"
    assert "the gate's time budget of 2 s was exhausted" in run.record("http.health")["observed"]


@pytest.mark.parametrize("budget", [(), ("--time-budget", "60")], ids=["no budget", "budget not reached"])
def test_slow_answers_within_the_budget_pass(server: str, tmp_path: Path, budget: tuple[str, ...]) -> None:
    target_url = url(server, "slow", 0.3)
    inventory = write(tmp_path, f"environment: staging\nhttp:\n  a: {{url: '{target_url}', ready: null}}\n")
    run = run_suite(inventory, tmp_path, *budget, suite="smoke/test_http.py")
    assert run.code == 0, run.output
    assert {r["verdict"] for r in run.records} == {"pass"}


def test_time_budget_must_be_positive(server: str, tmp_path: Path) -> None:
    inventory = write(tmp_path, f"environment: staging\nhttp:\n  a: {{url: '{url(server, 'ok')}'}}\n")
    run = run_suite(inventory, tmp_path, "--time-budget", "0", suite=HEALTH)
    assert run.code == 4
    assert "--time-budget 0: must be more than 0 seconds" in run.output
