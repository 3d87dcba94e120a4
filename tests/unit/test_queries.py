"""Named queries (issue 14): the inventory syntax of PromQL thresholds and SQL assertions, its errors (file, line,
key, fix), and how each answer is judged — every series, no data, units, rows, one value. No socket: the PromQL
probe runs on an httpx.MockTransport, the SQL judging on answers built here."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from opsproof.inventory import InventoryError, loads
from opsproof.probes import ALL, Target, promql, slo, sql
from opsproof.probes.promql import Series
from opsproof.probes.sql import Answer
from opsproof.util.errors import BadAnswer

if TYPE_CHECKING:
    from tests.unit.conftest import Serve

INVENTORY = """environment: t
prometheus:
  main:
    url: http://prom.test
    severity: medium
    queries:
      pool_usage:
        expr: max by (instance) (db_pool_in_use / db_pool_size)
        op: '<'
        value: 0.8
        for: 5m
        step: 15s
      p95:
        expr: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_ms_bucket[5m])))
        op: '<'
        value: 300ms
        unit: milliseconds
        severity: critical
      gone:
        expr: up{job="batch"}
        op: '=='
        value: 1
        absent_ok: true
postgres:
  main:
    dsn: postgresql://u@db.test/app
    timeout_s: 3
    queries:
      max_connections: {sql: SHOW max_connections, op: '>=', value: 100}
      index: {sql: "SELECT 1 FROM pg_indexes WHERE indexname = 'items_tenant';", rows: '>= 1'}
      migration: {sql: SELECT version_num FROM alembic_version, value: 4f2a9c1b7d3e}
      last_migration_age: {sql: SELECT now() - max(finished_at) FROM _prisma_migrations, op: '<', value: 30d}
      nothing_stuck: {sql: SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction', rows: 0,
                      timeout: 500ms}
slo:
  app: {prometheus: main, duration_metric: http_request_duration_ms}
"""
INV = loads(INVENTORY, "q.yaml")


def targets(check: str) -> dict[str, Target[Any]]:
    [spec] = [s for s in ALL if s.check == check]
    kind = spec.kind
    return {t.part[1]: t for name, cfg in INV.targets(kind).items() for t in spec.targets(name, cfg) if t.part}


def error(old: str, new: str) -> str:
    assert old in INVENTORY
    with pytest.raises(InventoryError) as caught:
        loads(INVENTORY.replace(old, new), "q.yaml")
    return str(caught.value)


# --- the inventory -------------------------------------------------------------------------------------------


def test_each_query_is_a_check_of_its_own_named_after_its_entry() -> None:
    prom, pg = targets("prometheus.query"), targets("postgres.query")
    assert [t.id for t in prom.values()] == ["prometheus[main] query pool_usage", "prometheus[main] query p95",
                                             "prometheus[main] query gone"]
    assert [t.id for t in pg.values()][:2] == ["postgres[main] query max_connections", "postgres[main] query index"]
    assert {t.entry.id for t in [*prom.values(), *pg.values()]} == {"prometheus[main]", "postgres[main]"}
    assert prom["pool_usage"].entry.config is INV.prometheus["main"]
    # the severity is the query's own, else its entry's
    assert (prom["p95"].config.severity, prom["pool_usage"].config.severity) == ("critical", "medium")
    assert pg["index"].config.severity is None
    # a PromQL check has its Prometheus' deadline; an SQL one its entry's plus the statement timeout
    assert (prom["p95"].config.timeout_s, pg["max_connections"].config.timeout_s) == (5.0, 8.0)
    assert pg["nothing_stuck"].config.timeout == 0.5


def test_the_expected_texts() -> None:
    [p, s] = [next(x for x in ALL if x.check == c) for c in ("prometheus.query", "postgres.query")]
    prom, pg = targets("prometheus.query"), targets("postgres.query")
    assert [p.expected(t.config) for t in prom.values()] == ["< 0.8", "< 300 ms", "== 1 (or no series)"]
    assert [s.expected(t.config) for t in pg.values()] == [
        ">= 100", "rows >= 1", "== '4f2a9c1b7d3e'", "< 2592000", "rows == 0"]
    assert pg["index"].config.sql.endswith("'items_tenant'")  # the trailing ; is not a second statement


def test_an_entry_without_queries_has_no_query_checks() -> None:
    inv = loads("environment: t\nprometheus:\n  main: {url: 'http://p'}\n")
    [spec] = [s for s in ALL if s.check == "prometheus.query"]
    assert spec.targets("main", inv.prometheus["main"]) == []
    assert not spec.applies(inv.prometheus["main"])  # an entry is not a query: baselines skip these checks


@pytest.mark.parametrize(("old", "new", "pattern"), [
    ("op: '<'\n        value: 0.8", "op: '=<'\n        value: 0.8",
     r"^q\.yaml:9: prometheus\.main\.queries\.pool_usage\.op: '=<' is not a comparison\. Fix: write one of <, <=, "
     r">, >=, ==, != in quotes, e\.g\. op: '>='"),
    ("op: '<'\n        value: 0.8", "op: >\n        value: 0.8",  # unquoted: YAML's folded text, empty
     r"^q\.yaml:9: prometheus\.main\.queries\.pool_usage\.op: an empty value is not a comparison\. Fix: "),
    ("        expr: max by (instance) (db_pool_in_use / db_pool_size)\n", "",
     r"^q\.yaml:7: prometheus\.main\.queries\.pool_usage\.expr: required key is missing\. Fix: add 'expr:'\.$"),
    ("        op: '<'\n        value: 0.8\n", "        op: '<'\n",
     r"^q\.yaml:7: prometheus\.main\.queries\.pool_usage\.value: required key is missing\. Fix: add 'value:'\.$"),
    ("        unit: milliseconds\n", "",
     r"^q\.yaml:13: prometheus\.main\.queries\.p95: value '300ms' is not a number\. Fix: write a number \(0\.8\), "
     r"or state unit: seconds\|milliseconds to write a duration \(300ms\)\.$"),
    ("step: 15s", "step: 1ms",
     r"^q\.yaml:7: prometheus\.main\.queries\.pool_usage: for / step is 300000 evaluations, above Prometheus' "
     r"11000 per series\. Fix: a larger step, or a shorter for\.$"),
    ("for: 5m", "window: 5m",
     r"^q\.yaml:11: prometheus\.main\.queries\.pool_usage\.window: unknown key 'window'\. Fix: known keys here: "
     r"absent_ok, expr, for, op, severity, step, unit, value\.$"),
    ("rows: '>= 1'", "rows: 'at least 1'",
     r"^q\.yaml:30: postgres\.main\.queries\.index: rows: 'at least 1' is not a number of rows\. Fix: write rows: 0, "
     r"or a comparison in quotes such as rows: '>= 1'\.$"),
    ("rows: '>= 1'", "rows: 20000", r"^q\.yaml:30: postgres\.main\.queries\.index: rows: 20000 is above the 10000 "),
    ("value: 4f2a9c1b7d3e}", "value: 4f2a9c1b7d3e, rows: 1}",
     r"^q\.yaml:31: postgres\.main\.queries\.migration: gives both rows: and op:/value:\. Fix: "),
    ("value: 4f2a9c1b7d3e}", "timeout: 1s}",
     r"^q\.yaml:31: postgres\.main\.queries\.migration: says nothing about the result\. Fix: add value: "),
    ("op: '<', value: 30d", "op: '<', value: soon",
     r"^q\.yaml:32: postgres\.main\.queries\.last_migration_age: op '<' needs a number or a duration, got value "
     r"'soon'\. Fix: write a number, or use op: '==' to compare text\.$"),
    ("timeout: 500ms", "timeout: 10m", r"^q\.yaml:34: postgres\.main\.queries\.nothing_stuck\.timeout: "),
    ("      index:", "      'bad name':",
     r"^q\.yaml:30: postgres\.main\.queries\.bad name\.\[key\]: query name 'bad name' must be letters, digits, "
     r"'_', '\.', '-' \(≤ 63\)\. Fix: rename it, e\.g\. pool_usage\.$"),
])
def test_bad_input_names_file_line_key_and_fix(old: str, new: str, pattern: str) -> None:
    assert re.match(pattern, error(old, new)), error(old, new)


# --- PromQL: judging ----------------------------------------------------------------------------------------


def prom(name: str) -> Any:
    return targets("prometheus.query")[name].config


def test_every_series_is_judged_and_the_failing_one_is_named() -> None:
    series = [Series({"__name__": "x", "instance": "db1"}, (0.5, 0.93, 0.7)), Series({"instance": "db2"}, (0.4, 0.5))]
    out = promql.judge(prom("pool_usage"), series, 300, 15)
    assert out.ok is False
    assert out.observed == '0.93 (instance="db1") at 1 of 3 evaluations over 5m (1 of 2 series)'
    assert out.evidence["series"][0] == {"labels": {"__name__": "x", "instance": "db1"}, "worst": 0.93,
                                         "failing_points": 1, "points": 3}


def test_a_pass_shows_the_worst_series() -> None:
    out = promql.judge(prom("pool_usage"), [Series({"instance": "db1"}, (0.5,)), Series({"instance": "db2"}, (0.7,))],
                       300, 15)
    assert (out.ok, out.observed) == (True, '0.7 (instance="db2") over 5m, the worst of 2 series')


def test_no_series_is_no_data_and_fails_unless_absent_ok() -> None:
    out = promql.judge(prom("pool_usage"), [], 300, 15)
    assert (out.ok, out.observed) == (False, "no data: no series over 5m (set absent_ok: true if none is fine)")
    only_nan = promql.judge(prom("pool_usage"), [Series({}, (math.nan, math.nan))], 300, 15)
    assert (only_nan.ok, only_nan.observed) == (False, "no data: 1 series, only NaN values over 5m (set absent_ok: "
                                                       "true if none is fine)")
    gone = promql.judge(prom("gone"), [], None, None)
    assert (gone.ok, gone.observed) == (True, "no series (absent_ok: true)")


def test_milliseconds_are_compared_and_shown_in_their_unit() -> None:
    out = promql.judge(prom("p95"), [Series({}, (412.5,))], None, None)
    assert (out.ok, out.observed) == (False, "412.5 ms")
    assert promql.judge(prom("p95"), [Series({}, (120.0,))], None, None).ok is True


def test_seconds_with_a_duration_threshold() -> None:
    inv = loads("environment: t\nprometheus:\n  main:\n    url: http://p\n    queries:\n      p95: {expr: x, op: '<',"
                " value: 300ms, unit: seconds}\n")
    cfg = inv.prometheus["main"].queries["p95"]
    assert cfg.threshold == pytest.approx(0.3)
    assert promql.judge(cfg, [Series({}, (0.31,))], None, None).observed == "0.31 s"


@pytest.mark.parametrize(("op", "value", "values", "ok"), [
    ("<", 1, (0.5, 1.0), False), ("<=", 1, (0.5, 1.0), True), (">", 1, (1.5, 1.0), False), (">=", 1, (1.0,), True),
    ("==", 0, (0.0, 0.0), True), ("==", 0, (0.0, 2.0), False), ("!=", 0, (1.0, 0.0), False), ("!=", 0, (1.0,), True),
])
def test_each_comparison(op: str, value: float, values: tuple[float, ...], ok: bool) -> None:
    inv = loads(f"environment: t\nprometheus:\n  m:\n    url: http://p\n    queries:\n      q: {{expr: x, op: '{op}', "
                f"value: {value}}}\n")
    assert promql.judge(inv.prometheus["m"].queries["q"], [Series({}, values)], None, None).ok is ok


def test_answers_that_are_not_numbers() -> None:
    assert promql.parse({"resultType": "scalar", "result": [1, "3"]}) == [Series({}, (3.0,))]
    with pytest.raises(BadAnswer, match="answered a string, not numbers"):
        promql.parse({"resultType": "string", "result": [1, "x"]})
    with pytest.raises(BadAnswer, match="native-histogram"):
        promql.parse({"resultType": "vector", "result": [{"metric": {}, "histogram": [1, {}]}]})


def envelope(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def test_the_window_is_a_range_query_at_the_step(serve: Serve) -> None:
    seen: list[httpx.Request] = []

    def range_query(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return envelope({"resultType": "matrix", "result": [
            {"metric": {"instance": "db1"}, "values": [[1, "0.5"], [2, "0.93"]]}]})

    t = targets("prometheus.query")["pool_usage"]
    result = promql.query(t, serve({"/api/v1/query_range": range_query}))
    assert result.explain() == ('prometheus[main] query pool_usage: 0.93 (instance="db1") at 1 of 2 evaluations over '
                                "5m, expected < 0.8")
    params = seen[0].url.params
    assert params["step"] == "15"
    assert float(params["end"]) - float(params["start"]) == pytest.approx(300)


def test_the_step_defaults_to_the_scrape_interval(serve: Serve) -> None:
    inv = loads("environment: t\nprometheus:\n  main:\n    url: http://p\n    queries:\n      q: {expr: up, op: '==',"
                " value: 1, for: 1m}\n")
    [t] = next(s for s in ALL if s.check == "prometheus.query").targets("main", inv.prometheus["main"])
    steps: list[str] = []

    def range_query(request: httpx.Request) -> httpx.Response:
        steps.append(request.url.params["step"])
        return envelope({"resultType": "matrix", "result": [{"metric": {"job": "app"}, "values": [[1, "1"]]}]})

    config = {"yaml": "global:\n  scrape_interval: 10s\nscrape_configs: []\n"}
    result = promql.query(t, serve({"/api/v1/query_range": range_query,
                                    "/api/v1/status/config": lambda r: envelope(config)}))
    assert (result.ok, steps) == (True, ["10"])


def test_a_query_prometheus_refuses_fails_with_its_reason(serve: Serve) -> None:
    t = targets("prometheus.query")["p95"]
    bad = httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "1:5: parse error"})
    result = promql.query(t, serve({"/api/v1/query": lambda r: bad}))
    assert result.explain() == ("prometheus[main] query p95: answered status=error: 1:5: parse error (from "
                                "/api/v1/query), expected < 300 ms")


# --- SQL: judging ------------------------------------------------------------------------------------------


def pg(name: str) -> Any:
    return targets("postgres.query")[name].config


def test_a_value_compared_as_a_number_even_as_text() -> None:
    assert sql.judge(pg("max_connections"), Answer(("max_connections",), [("40",)])).observed == "40"
    assert sql.judge(pg("max_connections"), Answer(("max_connections",), [("40",)])).ok is False
    assert sql.judge(pg("max_connections"), Answer(("max_connections",), [("200",)])).ok is True
    assert sql.judge(pg("max_connections"), Answer(("n",), [(decimal.Decimal("100"),)])).ok is True
    assert sql.judge(pg("max_connections"), Answer(("n",), [("lots",)])).observed == "'lots', not a number"


def test_text_and_intervals() -> None:
    assert sql.judge(pg("migration"), Answer(("version_num",), [("4f2a9c1b7d3e",)])).ok is True
    assert sql.judge(pg("migration"), Answer(("version_num",), [("0000aaaa",)])).observed == "'0000aaaa'"
    age = pg("last_migration_age")
    assert sql.judge(age, Answer(("age",), [(dt.timedelta(days=2),)])).ok is True
    assert sql.judge(age, Answer(("age",), [(dt.timedelta(days=40),)])).observed == "3456000"


def test_no_value_is_no_data_never_a_pass() -> None:
    cfg = pg("max_connections")
    assert sql.judge(cfg, Answer(("n",), [])).observed == "no data: the query returned no rows"
    assert sql.judge(cfg, Answer(("n",), [(None,)])).observed == "no data: the query returned NULL"
    several = sql.judge(cfg, Answer(("a", "b"), [(1, 2), (3, 4)]))
    assert (several.ok, several.observed) == (False, "2 row(s) of 2 column(s), not one value (judge rows:, or return "
                                                     "one value)")


def test_rows() -> None:
    index, stuck = pg("index"), pg("nothing_stuck")
    assert (sql.judge(index, Answer(("x",), [])).ok, sql.judge(index, Answer(("x",), [(1,)])).ok) == (False, True)
    out = sql.judge(stuck, Answer(("pid",), [(4242,), (4343,)]))
    assert (out.ok, out.observed) == (False, "2 rows (first: 4242)")
    many = sql.judge(stuck, Answer(("pid",), [(i,) for i in range(10_001)]))
    assert (many.ok, many.observed, many.evidence["row_count"]) == (False, "more than 10000 rows (first: 0)",
                                                                     "more than 10000")
    assert len(many.evidence["rows"]) == 5


def test_a_refusal_is_the_finding() -> None:
    refused = Answer(refused="statement timeout after 500 ms", evidence={"statement_timeout_ms": 500})
    out = sql.judge(pg("index"), refused)
    assert (out.ok, out.observed, out.evidence["statement_timeout_ms"]) == (False, "statement timeout after 500 ms",
                                                                            500)


# --- the SLO checks' histogram unit --------------------------------------------------------------------------


def test_an_slo_histogram_in_milliseconds() -> None:
    assert INV.slo["app"].seconds_per_unit == 0.001  # from the name …_ms
    inv = loads("environment: t\nprometheus:\n  main: {url: 'http://p'}\nslo:\n  a: {prometheus: main}\n"
                "  b: {prometheus: main, duration_metric: latency, duration_unit: milliseconds}\n")
    assert (inv.slo["a"].seconds_per_unit, inv.slo["b"].seconds_per_unit) == (1.0, 0.001)


def test_the_slo_p95_of_a_milliseconds_histogram(serve: Serve) -> None:
    """The same observations in a seconds and in a milliseconds histogram give the same p95 and the same buckets
    (bounds in seconds in the evidence, as baselines compare them)."""
    def answer(factor: float) -> Any:
        def query(request: httpx.Request) -> httpx.Response:
            promql_text = request.url.params["query"]
            if promql_text.startswith("histogram_quantile"):
                return envelope({"resultType": "vector", "result": [{"metric": {}, "value": [1, str(0.2 * factor)]}]})
            if "by (le)" in promql_text:
                return envelope({"resultType": "vector", "result": [
                    {"metric": {"le": f"{0.1 * factor:g}"}, "value": [1, "50"]},
                    {"metric": {"le": f"{0.25 * factor:g}"}, "value": [1, "150"]},
                    {"metric": {"le": "+Inf"}, "value": [1, "200"]}]})
            return envelope({"resultType": "vector", "result": [{"metric": {}, "value": [1, "200"]}]})
        return query

    inv = loads("environment: t\nprometheus:\n  main: {url: 'http://p'}\nslo:\n  s: {prometheus: main}\n"
                "  ms: {prometheus: main, duration_metric: http_request_duration_ms}\n")
    results = [slo.latency_p95(Target("slo", name, inv.slo[name]), serve({"/api/v1/query": answer(factor)}))
               for name, factor in (("s", 1), ("ms", 1000))]
    assert [r.observed.split(" over")[0] for r in results] == ["p95 200 ms", "p95 200 ms"]
    assert results[0].evidence["buckets"] == results[1].evidence["buckets"] == {"0.1": 50, "0.25": 150, "+Inf": 200}
    assert [r.evidence["window"]["histogram_unit"] for r in results] == ["seconds", "milliseconds"]


def test_a_waiver_names_one_query() -> None:
    from opsproof import governance

    [waiver] = governance.loads_waivers("- check: 'prometheus.query@prometheus[main] query pool_usage'\n"
                                        "  reason: known, OPS-1\n  owner: o\n  ticket: OPS-1\n  expires: 2999-01-01\n",
                                        "w.yaml")
    waivers = governance.Waivers([waiver])
    assert waivers.decide("prometheus.query@prometheus[main] query pool_usage", "n") is not None
    assert waivers.decide("prometheus.query@prometheus[main] query p95", "n") is None


def test_a_query_is_blocked_by_its_entry_being_down() -> None:
    from opsproof import governance
    from opsproof.result import Result

    [spec] = [s for s in ALL if s.check == "postgres.query"]
    query = targets("postgres.query")["index"]
    root = governance.root_spec("postgres")
    assert root is not None
    down = Result("postgres[main]", root.check, False, "unreachable (OperationalError: refused)", "accepting "
                  "connections", error="OperationalError: refused")
    failed = Result(query.id, spec.check, False, "unreachable (OperationalError: refused)", "rows >= 1",
                    error="OperationalError: refused")

    def fetch(s: Any, t: Target[Any]) -> Result:
        assert (s, t.id) == (root, "postgres[main]")  # the entry's reachability check, not the query's
        return down

    blocked = governance.find_blocker(spec, query, failed, INV, fetch, {f"{root.check}@postgres[main]"})
    assert blocked is not None
    assert (blocked.by, blocked.root) == ("postgres[main]", "postgres.ready@postgres[main]")


def test_many_failing_series_are_named_worst_first_then_counted() -> None:
    series = [Series({"instance": f"db{i}"}, (0.81 + i / 100,)) for i in range(7)]
    series.append(Series({"instance": "ok"}, (0.1,)))
    out = promql.judge(prom("pool_usage"), series, None, None)
    assert out.observed == ('0.87 (instance="db6"), 0.86 (instance="db5"), 0.85 (instance="db4"), 0.84 '
                            '(instance="db3"), 0.83 (instance="db2") and 2 more (7 of 8 series)')
    assert [s["labels"]["instance"] for s in out.evidence["series"]][-2:] == ["db0", "ok"]
    assert promql.judge(prom("p95"), [Series({}, (12345.6,))], None, None).observed == "12346 ms"


def test_since_the_deploy(serve: Serve) -> None:
    """``for: deploy``: the window runs from the entry's deploy time (its deployed_at, else its slo entries')."""
    text = ("environment: t\nprometheus:\n  main:\n    url: http://p\n    deployed_at: -10m\n    queries:\n"
            "      errors: {expr: x, op: '<', value: 0.05, for: deploy, step: 5s}\n")
    inv = loads(text)
    [t] = next(s for s in ALL if s.check == "prometheus.query").targets("main", inv.prometheus["main"])
    windows: list[float] = []

    def range_query(request: httpx.Request) -> httpx.Response:
        windows.append(float(request.url.params["end"]) - float(request.url.params["start"]))
        return envelope({"resultType": "matrix", "result": [{"metric": {"job": "api"}, "values": [[1, "0.07"]]}]})

    result = promql.query(t, serve({"/api/v1/query_range": range_query}))
    assert windows == [pytest.approx(600, abs=1)]
    assert result.explain() == ('prometheus[main] query errors: 0.07 (job="api") since the deploy (10m ago), '
                                "expected < 0.05")
    undated = loads(text.replace("    deployed_at: -10m\n", ""))
    [t] = next(s for s in ALL if s.check == "prometheus.query").targets("main", undated.prometheus["main"])
    result = promql.query(t, serve({}))
    assert (result.ok, result.observed) == (False, "no deploy time to judge since: set deployed_at: on the prometheus "
                                                   "entry (or on an slo entry read from it)")


@pytest.mark.parametrize(("window", "problem"), [
    ("5x", "'5x' is not a duration. Fix: write it like 5m or 1h, or deploy (since the deploy)."),
    ("8d", "'8d' is not a window of up to 7 days. Fix: write a duration such as 5m, or deploy."),
    ("0s", "'0s' is not a window of up to 7 days. Fix: write a duration such as 5m, or deploy."),
])
def test_a_window_is_a_duration_of_up_to_7_days_or_deploy(window: str, problem: str) -> None:
    assert error("for: 5m", f"for: {window}") == f"q.yaml:11: prometheus.main.queries.pool_usage.for: {problem}"
