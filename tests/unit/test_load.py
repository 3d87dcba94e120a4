"""The load engine without Locust: thresholds parsed and judged, exact histograms merged, the inventory's ``load:``
section, the command and locustfile built for Locust, and the refusal to load production."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from opsproof.inventory import InventoryError, loads
from opsproof.load import histogram, runner
from opsproof.load.histogram import Tally
from opsproof.load.thresholds import BOTTLENECK_CPU, Figures, judge, judge_all, parse

# --- thresholds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "metric", "op", "bound"), [
    ("p(95) < 200ms", "p(95)", "<", 200_000),
    ("p(99.9)<=1s", "p(99.9)", "<=", 1_000_000),
    ("p( 50 ) < 500us", "p(50)", "<", 500),
    ("avg < 1m30s", "avg", "<", 90_000_000),
    ("max < 2s", "max", "<", 2_000_000),
    ("error_rate < 0.1%", "error_rate", "<", 0.001),
    ("error_rate <= 0.05", "error_rate", "<=", 0.05),
    ("rps >= 50", "rps", ">=", 50),
    ("requests > 1000", "requests", ">", 1000),
])
def test_thresholds_parse(text: str, metric: str, op: str, bound: float) -> None:
    t = parse(text)
    assert (t.metric, t.op) == (metric, op)
    assert t.bound == pytest.approx(bound)


@pytest.mark.parametrize(("text", "problem"), [
    ("p95 < 200ms", r"^'p95 < 200ms': unknown metric 'p95'\. Fix: write p\(95\) for a percentile$"),
    ("mean < 1s", r"^'mean < 1s': unknown metric 'mean'\. Fix: write it like 'p\(95\) < 200ms'"),
    ("p(95) < 200", r"^'p\(95\) < 200': '200' has no unit\. Fix: write 200ms or 1s"),
    ("p(0) < 1s", r"^'p\(0\) < 1s': percentile 0 is outside \(0, 100\]"),
    ("p(95) < fast", r"^'p\(95\) < fast': 'fast' is not a duration\. Fix:"),
    ("error_rate < lots", r"^'error_rate < lots': 'lots' is not a rate\. Fix: write 0\.1% or 0\.001"),
    ("error_rate < 150%", r"^'error_rate < 150%': an error rate is between 0% and 100%"),
    ("rps = 5", r"^'rps = 5' is not a threshold\. Fix:"),
    ("", r"^'' is not a threshold\."),
])
def test_bad_thresholds_name_the_fix(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse(text)


def _figures(values_us: list[int], failures: int = 0, elapsed_s: float = 10.0) -> Figures:
    tally = Tally()
    for i, v in enumerate(values_us):
        tally.record(v / 1000, failed=i < failures)
    return Figures(tally.requests, tally.failures, elapsed_s, tally.latency_us)


def test_a_breached_p95_reads_like_a_finding() -> None:
    figures = _figures([241_300] * 18_422)
    v = judge("load[checkout]", parse("p(95) < 200ms"), figures)
    assert v.ok is False
    assert v.message() == "load[checkout]: p(95) 241.3 ms over 18,422 requests, expected < 200 ms"
    assert v.value == 241_300


def test_a_met_threshold_passes_and_each_kind_is_judged_on_its_own_figure() -> None:
    figures = _figures([1000] * 99 + [900_000], failures=1, elapsed_s=2.0)  # 100 requests in 2 s, one failed
    assert judge("load[s]", parse("p(95) < 2ms"), figures).ok is True
    assert judge("load[s]", parse("p(99.5) < 2ms"), figures).ok is False  # the 900 ms one
    assert judge("load[s]", parse("max < 1s"), figures).ok is True
    assert judge("load[s]", parse("error_rate <= 1%"), figures).ok is True
    rate = judge("load[s]", parse("error_rate < 1%"), figures)
    assert rate.message() == "load[s]: error_rate 1% (1 failed of 100 requests), expected < 1%"
    assert judge("load[s]", parse("rps >= 50"), figures).message() == \
        "load[s]: rps 50.0/s over 100 requests, expected >= 50/s"
    assert judge("load[s]", parse("rps > 50"), figures).ok is False


@pytest.mark.parametrize("text", ["p(95) < 1s", "error_rate < 100%", "rps >= 0", "requests >= 0"])
def test_nothing_measured_fails_whatever_the_threshold(text: str) -> None:
    none = judge("load[s]", parse(text), Figures(0, 0, 5.0, lambda m, p: 0.0))
    assert none.ok is False
    assert none.message().startswith(f"load[s]: {parse(text).metric}: no request was made (0 requests), expected")
    never = judge("load[s/checkout]", parse(text), None)
    assert never.ok is False
    assert "the request never ran (0 requests)" in never.message()


def test_a_saturated_generator_gives_no_latency_verdict_but_counts_still_count() -> None:
    figures = _figures([1000] * 10)
    v = judge("load[s]", parse("p(95) < 1s"), figures, generator_cpu=BOTTLENECK_CPU)
    assert v.ok is None
    assert v.message().startswith("load[s]: p(95): no verdict — the generator was the bottleneck (CPU 90%")
    assert judge("load[s]", parse("rps >= 1"), figures, generator_cpu=97).ok is None
    assert judge("load[s]", parse("requests >= 10"), figures, generator_cpu=97).ok is True
    assert judge("load[s]", parse("p(95) < 1s"), figures, generator_cpu=89.9).ok is True


def test_judge_all_covers_the_scenario_and_each_named_request() -> None:
    fig = _figures([1000] * 10)
    verdicts = judge_all("s", ["p(95) < 1s"], {"item": ["p(99) <= 1ms"], "gone": ["p(95) < 1s"]},
                         {"item": fig}, fig, 0.0)
    assert [(v.subject, v.ok) for v in verdicts] == [("load[s]", True), ("load[s/item]", True),
                                                     ("load[s/gone]", False)]


# --- histograms ---------------------------------------------------------------------------------------


def _rank(samples: list[int], pct: float) -> int:
    """HdrHistogram's rank rule: the value at count round(pct × N / 100), at least the first."""
    ordered = sorted(samples)
    return ordered[max(int(pct * len(ordered) / 100 + 0.5), 1) - 1]


def test_histograms_merged_from_workers_equal_one_histogram_of_every_sample_to_the_microsecond() -> None:
    rng = random.Random(7)
    samples = [rng.randint(200, 250_000) for _ in range(20_000)]  # µs, all below 262 ms: kept exactly
    workers = [Tally(), Tally(), Tally()]
    for i, us in enumerate(samples):
        workers[i % 3].record(us / 1000, failed=us % 17 == 0)
    reports = [json.loads(json.dumps({"get": w.encode()})) for w in workers]  # as they travel, JSON
    merged = histogram.merge(reports)["get"]
    assert merged.requests == len(samples)
    assert merged.failures == sum(us % 17 == 0 for us in samples)
    for pct in (50, 90, 95, 99, 99.9, 100):
        assert merged.latency_us("p", pct) == _rank(samples, pct)
    assert merged.latency_us("max") == max(samples)
    assert merged.latency_us("min") == min(samples)
    assert merged.summary()["us"]["p(95)"] == _rank(samples, 95)


def test_large_response_times_stay_within_hdr_precision() -> None:
    tally = Tally()
    tally.record(1234.567, failed=False)  # 1.234567 s
    assert tally.latency_us("max") == pytest.approx(1_234_567, rel=1e-5)
    tally.record(10 ** 9, failed=True)  # beyond the range: kept as its highest value, not lost
    assert tally.requests == 2
    assert tally.latency_us("max") == pytest.approx(histogram.HIGHEST_US, rel=1e-5)


def test_an_empty_tally_travels_and_has_no_latency_figures() -> None:
    empty = histogram.merge([{"x": Tally().encode()}])["x"]
    assert (empty.requests, empty.summary()) == (0, {"requests": 0, "failures": 0})


# --- the inventory's load: section --------------------------------------------------------------------

BASE = """\
environment: staging
http:
  app: {url: "http://svc:pa55word@127.0.0.1:8080/api/"}
load:
  browse:
    service: app
    users: 10
    duration: 30s
    headers: {Authorization: Bearer tok-load-123}
    thresholds: ["p(95) < 200ms", "error_rate < 0.1%"]
    requests:
      - {name: item, path: "/items/1?token=abc", weight: 3, thresholds: ["p(99) < 500ms"]}
      - {method: POST, path: /items, body: {name: x}}
"""


def test_a_load_section_is_typed() -> None:
    inv = loads(BASE)
    scenario = inv.load["browse"]
    assert (scenario.users, scenario.duration, scenario.spawn_rate, scenario.processes) == (10, 30.0, None, 1)
    assert [r.label for r in scenario.requests] == ["item", "POST /items"]
    assert scenario.thresholds_by_name == {"item": ["p(99) < 500ms"]}
    assert {"tok-load-123", "Bearer tok-load-123"} <= inv.secrets


@pytest.mark.parametrize(("change", "problem"), [
    (("service: app", "service: api"), r"^<inventory>:6: load\.browse\.service: 'api' is not an http entry of this "
                                       r"inventory\. Fix: name one of: app\.$"),
    (('"p(95) < 200ms"', '"p(95) < 200"'), r"^<inventory>:10: load\.browse\.thresholds\.0\.threshold: "
                                           r"'p\(95\) < 200': '200' has no unit\. Fix: write 200ms or 1s"),
    (("users: 10", "users: 0"), r"^<inventory>:7: load\.browse\.users: .*Fix: use a larger number\.$"),
    (("duration: 30s", "duraton: 30s"), r"^<inventory>: 2 problem\(s\)(.|\n)*load\.browse\.duraton: unknown key "
                                        r"'duraton'\. Fix: did you mean 'duration'\."),
    (("weight: 3", "weight: -1"), r"^<inventory>:12: load\.browse\.requests\.0\.weight: "),
    (("{name: item, ", "{name: POST /items, "), r"^<inventory>:5: load\.browse: requests\.1\.name: 'POST /items' is "
                                                r"already the name of request 0\. Fix: give each request its own"),
])
def test_load_section_errors_name_line_key_and_fix(change: tuple[str, str], problem: str) -> None:
    with pytest.raises(InventoryError, match=problem):
        loads(BASE.replace(*change))


def test_a_scenario_that_could_never_fail_is_refused() -> None:
    text = BASE.replace('    thresholds: ["p(95) < 200ms", "error_rate < 0.1%"]\n', "").replace(
        ', thresholds: ["p(99) < 500ms"]', "")
    with pytest.raises(InventoryError, match=r"load\.browse: thresholds: the scenario has none, so it could never "
                                             r"fail\. Fix: add one"):
        loads(text)


# --- what Locust is given -----------------------------------------------------------------------------


def test_the_url_s_password_never_reaches_locust_s_command_line() -> None:
    inv = loads(BASE)
    data = runner.spec(inv, "browse")
    assert data["host"] == "http://127.0.0.1:8080/api"
    assert data["headers"]["Authorization"] == "Bearer tok-load-123"  # the scenario's header wins over userinfo
    assert runner.base_url("http://svc:pa55word@h:1/")[1] == {"Authorization": "Basic c3ZjOnBhNTV3b3Jk"}
    assert [r["name"] for r in data["requests"]] == ["item", "POST /items"]
    cmd = runner.command(inv.load["browse"], [Path("lf.py"), runner.PLUGIN], data["host"], Path("out/b"))
    assert "pa55word" not in " ".join(cmd)
    assert cmd[cmd.index("-u") + 1: cmd.index("-u") + 6] == ["10", "-r", "10", "-t", "30s"]
    assert "--processes" not in cmd
    source = runner.locustfile(data)
    compile(source, "locustfile.py", "exec")
    assert json.loads(json.loads(source.split("json.loads(", 1)[1].rsplit(")\nScenarioUser", 1)[0])) == data


def test_default_names_mask_query_values() -> None:
    inv = loads(BASE.replace("{name: item, ", "{"))
    assert inv.load["browse"].requests[0].label == "GET /items/1?token=***"


def test_load_on_production_is_refused_before_anything_runs(tmp_path: Path) -> None:
    inv = loads("production: true\n" + BASE)
    with pytest.raises(runner.LoadRefused, match=r"^load\[browse\]: environment 'staging' is marked production: "
                                                 r"true and load is destructive work .*Fix: run it against a "
                                                 r"staging inventory, or pass --allow-destructive"):
        runner.run(inv, "browse", tmp_path)
    assert not (tmp_path / "load").exists()


def test_opsproof_load_refuses_unknown_scenarios_and_production(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from opsproof.cli import main

    path = tmp_path / "inv.yaml"
    path.write_text(BASE)
    assert main(["load", "--inventory", str(path), "brwse", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"opsproof: no load scenario 'brwse' in {path}. Known: browse\n"
    path.write_text("production: true\n" + BASE)
    assert main(["load", "--inventory", str(path), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("opsproof: load[browse]: environment 'staging' is marked production")
    assert not (tmp_path / "load").exists()


def test_a_scenario_has_its_requests_or_a_locustfile_of_its_own() -> None:
    own = BASE.split("    requests:")[0] + "    locustfile: load/locustfiles/catalogue.py\n" \
        "    request_thresholds: {itme: ['p(95) < 1s']}\n"
    scenario = loads(own).load["browse"]
    assert scenario.locustfile == "load/locustfiles/catalogue.py"
    assert scenario.thresholds_by_name == {"itme": ["p(95) < 1s"]}  # judged at run time: a name that never ran fails
    with pytest.raises(InventoryError, match=r"load\.browse: requests: a scenario has either requests: or a "
                                             r"locustfile:, not both\. Fix:"):
        loads(BASE + "    locustfile: x.py\n")
    with pytest.raises(InventoryError, match=r"load\.browse: request_thresholds: 'itme' is not the name of a request "
                                             r"of this scenario\. Fix: use one of item, POST /items"):
        loads(BASE + "    request_thresholds: {itme: ['p(95) < 1s']}\n")
