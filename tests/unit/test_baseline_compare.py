"""The post-maintenance comparison, on recorded results: values judged at their data's resolution, and a
comparison with nothing on one side is a finding (no data), never a pass."""

from __future__ import annotations

from typing import Any

from opsproof.baseline import Change, compare, render
from opsproof.inventory import Tolerances

INF = "+Inf"
BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", INF)


def record(check: str, target: str, evidence: dict[str, Any], verdict: str = "pass",
           observed: str = "fine") -> dict[str, Any]:
    return {"check": check, "target": target, "verdict": verdict, "observed": observed, "evidence": evidence}


def document(*records: dict[str, Any]) -> dict[str, Any]:
    return {"label": "pre", "results": {f"{r['check']}@{r['target']}": r for r in records}}


def latency(p95_ms: float, counts: tuple[int, ...]) -> dict[str, Any]:
    """A slo.latency_p95 record with cumulative bucket counts, one per bound of BOUNDS."""
    buckets = dict(zip(BOUNDS, counts, strict=True))
    window = {"requests": counts[-1], "errors": 0, "p95_ms": p95_ms, "seconds": 10}
    return record("slo.latency_p95", "slo[app]", {"window": window, "buckets": buckets})


def only(changes: list[Change], prefix: str) -> Change:
    [found] = [c for c in changes if c.key.startswith(prefix)]
    return found


def rows(count: int | None, hidden: str = "") -> dict[str, Any]:
    return record("postgres.tables", "postgres[main]",
                  {"rows": {"public.items": count}, "hidden_by_rls": {"public.items": hidden} if hidden else {}},
                  observed=hidden or f"public.items: {count} rows")


def test_rows_the_run_cannot_count_are_no_data_not_a_pass() -> None:
    hidden = ("public.items: rows hidden from role monitor by row-level security (policies: tenant_isolation); "
              "set count_dsn to a role with BYPASSRLS to count them")
    change = only(compare(document(rows(1000)), document(rows(None, hidden))), "row count")
    assert (change.kind, change.ok, change.before, change.after) == ("no-data", False, "1000", "no data")
    assert change.detail == f"nothing to compare: now: {hidden}"


def test_rows_the_baseline_could_not_count_are_no_data_too() -> None:
    change = only(compare(document(rows(None, "hidden by RLS")), document(rows(0))), "row count")
    assert (change.kind, change.ok) == ("no-data", False)
    assert change.detail == "nothing to compare: before: hidden by RLS"


def test_every_lost_row_is_a_finding() -> None:
    change = only(compare(document(rows(1000)), document(rows(0))), "row count")
    assert (change.kind, change.ok, change.explain()) == (
        "moved", False, "row count@postgres[main]:public.items: 1000 → 0 (-1000, tolerance -0)")


def test_a_window_without_data_after_is_no_data() -> None:
    before = record("slo.error_ratio", "slo[app]", {"window": {"requests": 1000, "errors": 1}})
    after = record("slo.error_ratio", "slo[app]", {"window": {"requests": 12, "errors": 0}}, verdict="no-data",
                   observed="no data: 12 requests in the 30 s since the deploy (need ≥ 100 to judge)")
    change = only(compare(document(before), document(after)), "error ratio")
    assert (change.kind, change.ok) == ("no-data", False)
    assert change.detail == ("nothing to compare: now: no data: 12 requests in the 30 s since the deploy "
                             "(need ≥ 100 to judge)")


def test_p95_interpolated_a_bucket_apart_is_within_resolution() -> None:
    """histogram_quantile puts p95 at 8 ms before and 19 ms after (×2.4) although no request after is slower than
    25 ms: a few more requests in the 10–25 ms bucket. At bucket resolution nothing moved."""
    before = latency(8.1, (900, 980, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000))
    after = latency(19.0, (700, 880, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000))
    change = only(compare(document(before), document(after)), "p95 latency")
    assert (change.kind, change.ok) == ("within", True), change.explain()
    assert change.explain().startswith("p95 latency@slo[app]: p95 8.1 ms → p95 19.0 ms (judged at bucket "
                                       "resolution against 1.5 × p95 before: 0.0% of requests slower than 25 ms")


def test_a_real_tail_regression_moves() -> None:
    before = latency(8.1, (900, 980, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000))
    after = latency(180.0, (700, 800, 850, 870, 880, 900, 1000, 1000, 1000, 1000, 1000))  # 15 % over 25 ms
    change = only(compare(document(before), document(after)), "p95 latency")
    assert (change.kind, change.ok) == ("moved", False)
    assert "15.0% of requests slower than 25 ms after (150/1000) vs 0.0% before (0/1000)" in change.detail


def test_p95_beyond_the_top_bucket_is_no_verdict() -> None:
    before = latency(4000.0, (0, 0, 0, 0, 0, 0, 0, 0, 10, 60, 100))
    after = latency(4500.0, (0, 0, 0, 0, 0, 0, 0, 0, 5, 50, 100))
    change = only(compare(document(before), document(after)), "p95 latency")
    assert (change.kind, change.ok) == ("no-data", False)
    assert change.detail.startswith("no verdict: no bucket bound ≥ 6000 ms (1.5 × p95 before) in both windows")


def test_a_latency_record_without_buckets_is_no_data() -> None:
    old = latency(8.1, (900, 980, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000))
    new = {**old, "evidence": {"window": old["evidence"]["window"]}}
    assert only(compare(document(old), document(new)), "p95 latency").kind == "no-data"


def error_window(errors: int, requests: int) -> dict[str, Any]:
    return record("slo.error_ratio", "slo[app]", {"window": {"requests": requests, "errors": errors}})


def test_an_error_ratio_beyond_tolerance_by_chance_is_within() -> None:
    """0/200 before, 2/200 after: 1 % is beyond the 0.5 % tolerance, but two errors say nothing (p = 0.25)."""
    change = only(compare(document(error_window(0, 200)), document(error_window(2, 200))), "error ratio")
    assert (change.kind, change.ok) == ("within", True)
    assert change.detail.endswith("exact conditional binomial test, one-sided p = 0.25")


def test_an_error_ratio_beyond_tolerance_and_significant_moves() -> None:
    change = only(compare(document(error_window(0, 1000)), document(error_window(40, 1000))), "error ratio")
    assert (change.kind, change.ok, change.before, change.after) == ("moved", False, "0.00%", "4.00%")


def test_tolerances_come_from_the_inventory() -> None:
    loose = Tolerances(rows_lost=5)
    assert only(compare(document(rows(1000)), document(rows(996)), loose), "row count").ok
    assert not only(compare(document(rows(1000)), document(rows(994)), loose), "row count").ok


def test_the_rendered_diff_counts_no_data() -> None:
    text = render(compare(document(rows(1000)), document(rows(None, "hidden"))), "pre")
    assert text.splitlines()[0] == ("opsproof: post-maintenance diff against baseline 'pre': 0 flipped, "
                                    "0 moved beyond tolerance, 1 without data, 0 recovered")
    assert "  NO DATA  row count@postgres[main]:public.items: 1000 → no data" in text
