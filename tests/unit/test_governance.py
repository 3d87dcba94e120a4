"""Governance's pure parts, without a service: the gate's arithmetic, waiver files and patterns, polling with a
deadline (on a fake clock), blocked-by and the dependency graph (on fake answers), the time budget's judgement.
The same features as a user meets them — suites run against HTTP servers — are in tests/integration/."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsproof import governance
from opsproof.governance import Budget, Gate, TimedOut, Waiver, WaiverError, Waivers
from opsproof.inventory import Inventory, Kind, Retry, loads
from opsproof.probes import ProbeSpec, Target
from opsproof.probes import http as http_probes
from opsproof.probes import postgres as pg_probes
from opsproof.probes import redis as redis_probes
from opsproof.report.records import CheckRecord
from opsproof.result import Result, Severity, Verdict

if TYPE_CHECKING:  # the fixtures' types (tests/unit/conftest.py)
    from tests.unit.conftest import FakeClock

WAIVER = """
- check: a@b
  reason: known outage of the web tier
  owner: alice
  ticket: OPS-1
  expires: 2030-01-01
"""


# --- the gate ------------------------------------------------------------------------------------------------


def test_gate_counts_every_failure_that_is_not_a_check_finding() -> None:
    gate = Gate(Severity.HIGH)
    finding = CheckRecord(check="http.health", target="http[web]", suite="smoke", severity=Severity.MEDIUM,
                          verdict=Verdict.FAIL, observed="HTTP 500", expected="HTTP 200")
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


# --- waivers -----------------------------------------------------------------------------------------------


def test_waivers_file_reports_every_problem_with_its_line() -> None:
    text = WAIVER + "- check: c@d\n  reason: r\n  expires: 2030-13-01\n"
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


def results(*oks: bool | None) -> Iterator[Result]:
    for ok in oks:
        yield Result("http[app]", "http.health", ok, f"answer {ok}", "HTTP 200")


def test_eventually_is_bounded_by_its_deadline(fake_clock: FakeClock) -> None:
    clock, answers = fake_clock, results(*[False] * 100)
    res = governance.eventually(lambda: next(answers), Retry(within_s=10, interval_s=2), wait=clock.wait, clock=clock)
    assert res.ok is False
    assert res.attempts == 6  # at 0, 2, 4, 6, 8, 10 s; none after the deadline
    assert res.observed == "answer False after 6 attempts in 10.0 s (needed 1 consecutive pass)"


def test_eventually_counts_passes_in_a_row(fake_clock: FakeClock) -> None:
    clock, answers = fake_clock, results(True, False, True, True, False, True, True, True, True)
    res = governance.eventually(lambda: next(answers), Retry(within_s=60, consecutive=3, interval_s=1),
                                wait=clock.wait, clock=clock)
    assert (res.ok, res.attempts) == (True, 8)
    assert governance.is_flaky(res, Retry(consecutive=3))


def test_eventually_stops_when_the_run_stops() -> None:
    answers = results(*[False] * 10)
    with pytest.raises(TimedOut):
        governance.eventually(lambda: next(answers), Retry(within_s=60, interval_s=30), wait=lambda _s: True)


def test_eventually_returns_no_data_at_once(fake_clock: FakeClock) -> None:
    clock, answers = fake_clock, results(None, True)
    res = governance.eventually(lambda: next(answers), Retry(within_s=60), wait=clock.wait, clock=clock)
    assert (res.ok, res.attempts) == (None, 1)


# --- blocked-by ------------------------------------------------------------------------------------------


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


# --- time budget -------------------------------------------------------------------------------------------


def test_judge_times_out_without_probing() -> None:
    inv = loads("environment: t\npostgres:\n  main: {dsn: 'postgresql://h/db'}\n")
    target = Target("postgres", "main", inv.postgres["main"])

    def spent(spec: ProbeSpec, target: Target[Any]) -> Result:
        raise TimedOut

    judgement = governance.judge(pg_probes.ready, target, spent, inv, Budget(5))
    assert judgement.verdict == "timed-out"
    assert judgement.result.explain() == ("postgres[main]: timed out: the gate's time budget of 5 s was exhausted, "
                                          "expected accepting connections")
