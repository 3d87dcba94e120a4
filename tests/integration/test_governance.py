"""Governance: --fail-on, waivers, eventually/retry, blocked-by and the time budget.

Suites run as a user runs them (a pytest subprocess) against small HTTP servers started here, and against
closed ports for targets that are down. The pure parts (waiver files, polling, blocking, the gate) are tested
directly, without a service, in tests/unit/test_governance.py.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from support import SuiteRun, http_server, respond, run_suite

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
        respond(self, status, body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with http_server(Handler) as url:
        yield url


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
    # running, or — on a machine so loaded that start-up took the 2 s — never started: either way, named
    assert re.search(r"http\[a\]: timed out: the gate's time budget of 2 s was exhausted: (still waiting for )?"
                     rf"http\[a\] \({re.escape(server)}/slow/3/\w+\)(, running for \d+\.\d s| never started "
                     r"\(queued behind \d+ checks?\)), expected HTTP 200", run.output)
    assert ("opsproof: the gate's time budget of 2 s was exhausted: 4 check(s) timed out, on http[a], http[b]"
            in run.output)


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
