"""The post-maintenance diff in the readiness report: the typed, versioned file the post-maintenance run writes
(opsproof.report.maintenance.document, from opsproof.baseline's changes), read back validated, judged (a flipped check
or a value beyond tolerance fails; nothing to compare is a no-go where the policy requires the area) and rendered as
its own area — from files only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from opsproof.baseline import Change, to_json
from opsproof.report import RecordError, Verdict
from opsproof.report.collect import collect
from opsproof.report.judge import decide
from opsproof.report.maintenance import document, read
from opsproof.report.policy import default_policy, loads_policy
from opsproof.report.render import Report, render_all

DATA = Path(__file__).parent / "data" / "report"
NOW = 1796409691.0

BROKEN_WINDOW = [  # what tests/integration/test_post_maintenance.py's broken window finds, in opsproof.baseline's words
    Change("prometheus.targets@prometheus[main]", "flipped", "pass", "fail",
           False, "prometheus[main]: 1 of 6 targets down: redis (connection refused)"),
    Change("Redis memory@redis[cache]", "moved", "0.41%", "1.89%", False, "+1.48%, tolerance +1.00%"),
    Change("row count@postgres[main]:public.audit_log", "moved", "25", "0", False, "-25, tolerance -0"),
    Change("replication lag@postgres[replica]:main", "no-data", "0.1 s", "no data", False,
           "nothing to compare: now: replica unreachable"),
    Change("error ratio@slo[app]", "within", "0.00%", "0.10%", True, "+0.10%, tolerance +1.00%"),
]


def diff_root(tmp_path: Path, changes: list[Change], environment: str = "sandbox", label: str = "pre-maint",
              at: float = NOW, smoke: bool = True) -> Path:
    """An output root as a post-maintenance run leaves it (plus a smoke run's records: the gates area)."""
    root = tmp_path / "reports"
    (root / "runs").mkdir(parents=True, exist_ok=True)
    if smoke:
        shutil.copy(DATA / "smoke.jsonl", root / "runs" / "smoke.jsonl")
    doc = document(to_json(changes), label, environment, "2026-12-04T18:00:00+00:00", "host-20261204T1841Z-42",
                   "abc123", now=at)
    (root / f"baseline-diff-{label}.json").write_text(json.dumps(doc, indent=2) + "\n")
    return root


def test_the_file_is_versioned_and_reads_back_as_typed_lines(tmp_path: Path) -> None:
    root = diff_root(tmp_path, BROKEN_WINDOW)
    raw = json.loads((root / "baseline-diff-pre-maint.json").read_text())
    assert (raw["schema"], raw["kind"], raw["environment"], raw["run"]) == (1, "baseline-diff", "sandbox",
                                                                            "host-20261204T1841Z-42")
    diff = read(root / "baseline-diff-pre-maint.json")
    assert diff is not None
    assert [line.key for line in diff.regressed()] == ["prometheus.targets@prometheus[main]",
                                                       "Redis memory@redis[cache]",
                                                       "row count@postgres[main]:public.audit_log"]
    assert [line.verdict for line in diff.lines] == [Verdict.FAIL] * 3 + [Verdict.NO_DATA, Verdict.PASS]
    assert diff.at == NOW


@pytest.mark.parametrize(("change", "problem"), [
    ({"schema": 2}, r"schema 2 is not one this opsproof reads"),
    ({"kind": "baseline"}, r"key 'kind': 'baseline', expected 'baseline-diff'"),
    ({"changes": {}}, r"key 'changes': not a list"),
    ({"changes": [{"key": "x", "kind": "slid", "before": "1", "after": "2", "ok": False}]},
     r"changes\[0\]: key 'kind': 'slid' is not one of flipped, moved"),
    ({"changes": [{"key": "x", "kind": "moved", "before": "1", "after": "2", "ok": "no"}]},
     r"changes\[0\]: key 'ok': not true or false"),
    ({"changes": [{"kind": "moved", "before": "1", "after": "2", "ok": False}]}, r"changes\[0\]: key 'key': missing"),
])
def test_a_diff_it_cannot_use_is_an_error_naming_the_file_and_key(tmp_path: Path, change: dict[str, Any],
                                                                  problem: str) -> None:
    root = diff_root(tmp_path, BROKEN_WINDOW)
    path = root / "baseline-diff-pre-maint.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(RecordError, match=rf"^{path}: .*{problem}"):
        collect([root])


def test_a_diff_written_before_diffs_were_versioned_is_skipped_with_the_reason(tmp_path: Path) -> None:
    root = diff_root(tmp_path, [])
    (root / "baseline-diff-pre-maint.json").write_text(json.dumps(to_json(BROKEN_WINDOW)))
    evidence = collect([root])
    assert evidence.diffs == []
    assert any("written before diffs were versioned" in s for s in evidence.skipped)


def test_regressions_make_the_change_no_go_naming_each(tmp_path: Path) -> None:
    evidence = collect([diff_root(tmp_path, BROKEN_WINDOW)])
    decision = decide(evidence.records, default_policy(require=("gates", "post-maintenance")), now=NOW)
    assert not decision.go
    area = decision.areas["post-maintenance"]
    assert area.count(Verdict.FAIL) == 3
    reasons = "\n".join(decision.reasons)
    assert ("post-maintenance: baseline.diff fail (high) — prometheus.targets@prometheus[main]: pass → fail "
            "(prometheus[main]: 1 of 6 targets down: redis (connection refused)), expected still passing") in reasons
    assert "row count@postgres[main]:public.audit_log: 25 → 0 (-25, tolerance -0)" in reasons
    assert ("post-maintenance: nothing to compare with the baseline 'pre-maint' — replication "
            "lag@postgres[replica]:main: 0.1 s → no data") in reasons


def test_nothing_to_compare_is_a_no_go_only_where_the_policy_requires_the_area(tmp_path: Path) -> None:
    no_data = [c for c in BROKEN_WINDOW if c.kind in ("no-data", "within")]
    evidence = collect([diff_root(tmp_path, no_data)])
    assert decide(evidence.records, default_policy(), now=NOW).go
    required = loads_policy("fail_on: high\ngates: {}\npost_maintenance: {max_age: 24h}\n")
    decision = decide(evidence.records, required, now=NOW + 3600)
    assert [r.split(" — ")[0] for r in decision.reasons] == [
        "post-maintenance: nothing to compare with the baseline 'pre-maint'"]
    stale = decide(evidence.records, required, now=NOW + 2 * 86400)
    assert "post-maintenance: the latest evidence is 2 d old (policy: within 1 d)" in stale.reasons


def test_the_report_shows_the_diff_as_its_own_area(tmp_path: Path) -> None:
    evidence = collect([diff_root(tmp_path, BROKEN_WINDOW)])
    decision = decide(evidence.records, default_policy(require=("gates", "post-maintenance")), now=NOW)
    out = render_all(Report(decision, evidence, "CHG-7", "sandbox"), str)
    page = out["html"]
    section = page[page.index("<section id=post-maintenance>"):]
    section = section[:section.index("</section>")]
    assert ("against baseline &#x27;pre-maint&#x27; on sandbox (captured 2026-12-04T18:00:00+00:00, compared "
            "2026-12-04T18:41:31+00:00): 1 flipped, 2 moved beyond tolerance, 1 without data, 0 recovered, "
            "1 within tolerance") in section
    assert "<b>Checks that regressed:</b> prometheus.targets@prometheus[main]</p>" in section
    assert ("<tr class=fail><td>moved</td><td>Redis memory@redis[cache]</td><td>0.41%</td><td>1.89%</td>"
            "<td>+1.48%, tolerance +1.00%</td></tr>") in section
    assert section.index("flipped") < section.index("<td>moved</td>") < section.index("<td>within</td>")
    change = json.loads(out["json"])
    [diff] = change["post_maintenance_diff"]
    assert diff["regressed"] == ["prometheus.targets@prometheus[main]", "Redis memory@redis[cache]",
                                 "row count@postgres[main]:public.audit_log"]
    assert diff["no_data"] == ["replication lag@postgres[replica]:main"]
    assert change["test_results"]["post-maintenance"] == {"pass": 1, "fail": 3, "no-data": 1}
    assert any(f["kind"] == "maintenance" and f["records"] == 5 for f in change["evidence_files"])
    md = out["md"]
    assert "**Post-maintenance diff** against baseline 'pre-maint' on sandbox" in md
    assert "- moved: Redis memory@redis[cache]: 0.41% → 1.89% (+1.48%, tolerance +1.00%)" in md


def test_each_regions_latest_diff_is_kept_and_another_environment_left_out(tmp_path: Path) -> None:
    root = diff_root(tmp_path, BROKEN_WINDOW, environment="eu", label="old", at=NOW - 3600)
    diff_root(tmp_path, [BROKEN_WINDOW[-1]], environment="eu", label="new", at=NOW)
    diff_root(tmp_path, BROKEN_WINDOW[:1], environment="us", label="us", at=NOW)
    both = collect([root])
    decision = decide(both.records, default_policy(require=("post-maintenance",)), now=NOW)
    page = render_all(Report(decision, both), str)["html"]
    assert "baseline &#x27;new&#x27; on eu" in page
    assert "baseline &#x27;us&#x27; on us" in page
    assert "baseline &#x27;old&#x27;" not in page  # eu's newer diff stands
    eu = collect([root], environment="eu")
    assert {d.label for d in eu.diffs} == {"old", "new"}
    assert any("baseline-diff-us.json: a post-maintenance diff of another environment" in s for s in eu.skipped)
