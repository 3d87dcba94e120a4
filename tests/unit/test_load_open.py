"""The open model's schedule, abort_on_fail, and the per-second series, without Locust: slots due at a constant
rate and counted late or unsent, an rps threshold that fails when the rate was not held, a breach judged clear only
when waiting could not change it, and seconds that merge across processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsproof.inventory import InventoryError, loads
from opsproof.load import abort, arrivals, runner
from opsproof.load.histogram import Tally
from opsproof.load.series import Series, merged
from opsproof.load.thresholds import Figures, judge, parse

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- the schedule -------------------------------------------------------------------------------------


def test_slots_are_due_at_the_rate_whatever_the_answers_took() -> None:
    clock = Clock()
    s = arrivals.Schedule(10, clock)
    assert [s.take() for _ in range(3)] == [1000.0, 1000.1, 1000.2]  # three free users: taken ahead, on time
    clock.now = 1000.4  # the users were busy: slot 3 was due at 1000.3
    assert s.take() == pytest.approx(1000.3)
    assert (s.late, s.late_at) == (1, [pytest.approx(1000.3)])
    assert s.report() == {"due": 4, "late": 1, "unsent": 0}  # 1000.4 - 50 ms tolerance: slots 0..3 due
    clock.now = 1001.0  # nobody took slots 4..9 (due by 1000.95)
    assert s.report() == {"due": 10, "late": 1, "unsent": 6}
    s.stopped = 1000.5  # the run stopped at 1000.5: later slots were never the generator's to send
    assert s.report() == {"due": 5, "late": 1, "unsent": 1}


def test_a_new_rate_keeps_the_slots_already_handed_out() -> None:
    clock = Clock()
    s = arrivals.Schedule(10, clock)
    s.take()
    s.set_rate(20)  # a second user of this process started
    assert [s.take(), s.take()] == [pytest.approx(1000.05), pytest.approx(1000.1)]
    assert s.late == 0


def test_the_rate_is_held_within_one_percent() -> None:
    assert arrivals.held(1000, 5, 5)
    assert not arrivals.held(1000, 6, 5)
    assert not arrivals.held(0, 0, 0)  # nothing was due: nothing was held
    assert arrivals.share(100, 3, 10) == 30


def _figures(n: int, elapsed: float, schedule: tuple[int, int, int] | None) -> Figures:
    t = Tally()
    for _ in range(n):
        t.record(5.0, False)
    return Figures(t.requests, t.failures, elapsed, t.latency_us, schedule)


def test_an_rps_threshold_fails_when_the_generator_could_not_hold_its_rate() -> None:
    held = judge("load[s]", parse("rps >= 40"), _figures(450, 10, (500, 3, 0)))
    assert held.ok is True
    v = judge("load[s]", parse("rps >= 40"), _figures(450, 10, (500, 30, 20)))
    assert v.ok is False  # 45/s meets the bound, but 50 of the 500 due requests went late or never
    assert v.message() == ("load[s]: rps 45.0/s over 450 requests, expected >= 40/s — the arrival rate was not held: "
                           "50 of 500 due requests sent late (> 50 ms) or never sent (20)")
    latency = judge("load[s]", parse("p(95) < 1s"), _figures(450, 10, (500, 30, 20)))
    assert latency.ok is True  # the latency (measured from each due time) is judged on its own


def test_the_open_model_is_typed_and_its_mistakes_are_refused() -> None:
    text = BASE.replace("    users: 10\n", "    users: 10\n    arrival_rate: 50\n")
    scenario = loads(text).load["s"]
    assert scenario.arrival_rate == 50
    assert runner.spec(loads(text), "s")["arrival_rate"] == 50
    with pytest.raises(InventoryError, match=r"load\.s: arrival_rate: spawn_rate and think_time are the closed "
                                             r"model's.*Fix: remove them"):
        loads(text.replace("    users: 10\n", "    users: 10\n    spawn_rate: 2\n"))
    with pytest.raises(InventoryError, match=r"arrival_rate: .*must be greater than 0|arrival_rate: Input should be "
                                             r"greater than 0"):
        loads(text.replace("arrival_rate: 50", "arrival_rate: 0"))


# --- abort_on_fail ------------------------------------------------------------------------------------

BASE = """\
environment: staging
http:
  app: {url: "http://127.0.0.1:8080"}
load:
  s:
    service: app
    users: 10
    duration: 30s
    thresholds:
      - "error_rate < 1%"
      - {threshold: "p(95) < 200ms", abort_on_fail: true, grace: 5s}
    requests:
      - {name: item, path: /items/1, thresholds: [{threshold: "rps >= 5", abort_on_fail: true}]}
"""


def test_aborting_thresholds_are_read_with_their_grace() -> None:
    inv = loads(BASE)
    scenario = inv.load["s"]
    assert scenario.scenario_thresholds == ["error_rate < 1%", "p(95) < 200ms"]
    assert scenario.thresholds_by_name == {"item": ["rps >= 5"]}
    assert runner.abort_rules(inv, "s") == [abort.Rule("load[s]", None, "p(95) < 200ms", 5.0),
                                            abort.Rule("load[s/item]", "item", "rps >= 5", 0.0)]
    assert abort.decode(abort.encode(runner.abort_rules(inv, "s"))) == runner.abort_rules(inv, "s")
    with pytest.raises(InventoryError, match=r"load\.s\.thresholds\.1.*'p\(95\) < 200': '200' has no unit"):
        loads(BASE.replace('"p(95) < 200ms", abort', '"p(95) < 200", abort'))


def _tally(values_ms: list[float], failures: int = 0) -> Tally:
    t = Tally()
    for i, v in enumerate(values_ms):
        t.record(v, failed=i < failures)
    return t


P95 = abort.Rule("load[s]", None, "p(95) < 200ms", 5.0)


def test_a_clear_breach_after_the_grace_period_aborts() -> None:
    slow = _tally([250.0] * 100)
    assert abort.breach(P95, slow, elapsed_s=4.9) is None  # still in its grace period
    verdict = abort.breach(P95, slow, elapsed_s=5.0)
    assert verdict is not None
    assert verdict.message() == "load[s]: p(95) 250.0 ms over 100 requests, expected < 200 ms"
    found = abort.first_breach([P95], {None: slow}, 6.2)
    assert found is not None
    assert abort.record(*found, 6.2)["message"].endswith("— aborted the run at 6.2 s (grace 5 s)")


def test_no_abort_on_too_few_samples_a_met_threshold_or_a_count_still_growing() -> None:
    assert abort.breach(P95, _tally([250.0] * (abort.MIN_SAMPLES - 1)), 10) is None
    assert abort.breach(P95, _tally([10.0] * 95 + [900.0] * 5), 10) is None  # p(95) is still 10 ms
    assert abort.breach(P95, _tally([10.0] * 94 + [900.0] * 6), 10) is not None
    assert abort.breach(abort.Rule("load[s]", None, "requests >= 10000", 0), _tally([1.0] * 60), 10) is None
    assert abort.breach(abort.Rule("load[s]", None, "error_rate < 1%", 0), _tally([1.0] * 60, 2), 10) is not None
    assert abort.breach(P95, _tally([250.0] * 100), 10, generator_cpu=95) is None  # no verdict: not a breach


@pytest.mark.parametrize(("text", "values", "met"), [
    ("p(95) <= 200ms", [200.0] * 100, True), ("p(95) < 200ms", [200.0] * 100, False),
    ("p(50) > 5ms", [6.0] * 51 + [1.0] * 49, True), ("p(50) > 5ms", [6.0] * 50 + [1.0] * 50, False),
    ("p(50) >= 5ms", [5.0] * 51 + [1.0] * 49, True),
])
def test_the_cheap_look_agrees_with_the_exact_percentile(text: str, values: list[float], met: bool) -> None:
    tally = _tally(values)
    figures = Figures(tally.requests, 0, 1, tally.latency_us)
    assert judge("load[s]", parse(text), figures).ok is met
    assert (abort.breach(abort.Rule("load[s]", None, text, 0), tally, 1) is None) is met


# --- the per-second series ----------------------------------------------------------------------------


def test_seconds_merge_across_processes_and_gaps_show_as_zeros() -> None:
    a, b = Series(), Series()
    a.record(100.2, 1_000, False)
    b.record(100.7, 3_000, True)
    b.record(102.5, 500_000, False)
    b.late(102.1)
    rows = merged([a.encode(), b.encode()]).rows(100.1, 102.9)
    assert [r["t"] for r in rows] == [0, 1, 2]
    assert rows[0] | {"p50_ms": None, "p95_ms": None, "p99_ms": None} == {
        "t": 0, "at": 100, "requests": 2, "failures": 1, "error_ratio": 0.5, "late": 0,
        "p50_ms": None, "p95_ms": None, "p99_ms": None}
    assert rows[0]["p95_ms"] == pytest.approx(3.0, rel=0.01)  # two significant digits: within 1 %
    assert rows[1] == {"t": 1, "at": 101, "requests": 0, "failures": 0, "error_ratio": 0.0, "late": 0,
                       "p50_ms": None, "p95_ms": None, "p99_ms": None}  # an outage is a row of zeros, not a gap
    assert rows[2]["late"] == 1
    assert rows[2]["p99_ms"] == pytest.approx(500, rel=0.01)


# --- the fleet and the overload scenario --------------------------------------------------------------

FLEET = BASE.replace("    users: 10\n",
                     "    users: 10\n    workers: 3\n    master_bind: 0.0.0.0\n    master_port: 6000\n")


def test_a_fleet_s_master_waits_for_its_workers_and_a_worker_joins_it() -> None:
    inv = loads(FLEET)
    scenario = inv.load["s"]
    cmd = runner.command(scenario, [Path("lf.py"), runner.PLUGIN], "http://127.0.0.1:8080", Path("out/s"))
    at = cmd.index("--master")
    assert cmd[at:at + 9] == ["--master", "--expect-workers", "3", "--expect-workers-max-wait", "30",
                              "--master-bind-host", "0.0.0.0", "--master-bind-port", "6000"]
    assert "--processes" not in cmd
    worker = runner.worker_command([Path("lf.py"), runner.PLUGIN], "10.0.0.5", 6000)
    assert worker[worker.index("--worker"):] == ["--worker", "--master-host", "10.0.0.5", "--master-port", "6000"]
    with pytest.raises(InventoryError, match=r"load\.s: workers: a fleet's master generates no load itself"):
        loads(FLEET.replace("    workers: 3\n", "    workers: 3\n    processes: 2\n"))


def test_the_kubernetes_manifest_runs_the_documented_commands() -> None:
    import argparse

    import yaml

    from opsproof.load import cli

    docs = {d["kind"]: d for d in yaml.safe_load_all((REPO / "load" / "fleet" / "kubernetes.yaml").read_text())}
    assert set(docs) == {"Service", "Job", "Deployment"}
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    [master] = docs["Job"]["spec"]["template"]["spec"]["containers"]
    [worker] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    m, w = parser.parse_args(master["args"][1:]), parser.parse_args(worker["args"][1:])  # opsproof's own parser
    assert (m.worker, m.scenarios) == (False, ["checkout"])
    assert (w.worker, w.master_host, w.master_port, w.scenarios) == (True, "opsproof-load-master", 5557, ["checkout"])
    assert docs["Service"]["metadata"]["name"] == w.master_host
    assert docs["Service"]["spec"]["ports"][0]["port"] == w.master_port


def test_an_overload_scenario_names_its_alerts() -> None:
    text = BASE.replace("    users: 10\n", "    users: 10\n    alerts: [HighLatency]\n    alert_allowance: 2s\n")
    scenario = loads(text).load["s"]
    assert (scenario.alerts, scenario.alert_allowance, scenario.resolve_within) == (["HighLatency"], 2.0, 60.0)


def test_a_second_outside_the_run_s_span_is_kept() -> None:
    s = Series()
    s.record(105.2, 1_000, False)  # a worker's answer that ended after the master stopped
    rows = s.rows(100.5, 103.9)
    assert [r["t"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert sum(r["requests"] for r in rows) == 1


def test_complete_seconds_are_kept_packed_and_still_chart_and_merge() -> None:
    s = Series()
    for t in range(100):
        for us in (1_000, 2_000, 40_000):
            s.record(1000 + t + 0.5, us, t == 3)
    packed = [k for k, sec in s.seconds.items() if sec.histogram is None]
    assert packed == list(range(1000, 1089))  # all but the newest SEAL_AFTER_S + 1 seconds
    assert max(len(s.seconds[k].packed) for k in packed) < 1_000  # not ≈ 25 kB of counters each
    late = Series()
    late.record(1003.2, 300_000, False)  # a worker's report for a packed second: unpacked, added
    s.merge(late.encode())
    rows = merged([s.encode()]).rows(1000, 1099.9)
    assert len(rows) == 100
    assert {k: rows[3][k] for k in ("t", "at", "requests", "failures", "error_ratio")} == {
        "t": 3, "at": 1003, "requests": 4, "failures": 3, "error_ratio": 0.75}
    assert rows[3]["p99_ms"] == pytest.approx(300, rel=0.01)
    assert rows[50]["p95_ms"] == pytest.approx(40, rel=0.01)
    s.clear()
    s.record(2000.1, 1_000, False)
    assert list(s.seconds) == [2000]
