"""Render a decision: JSON mapped onto a change record's fields, Markdown sized for a change ticket, and one
self-contained HTML file (no network, no script, no CDN; opens from ``file://`` and prints).

Every text that came from a record is escaped here; secrets were masked when the records were written, and every
rendered text goes through the inventory's redactor once more before it is written.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opsproof.report import maintenance, trend
from opsproof.report.charts import chaos_timeline, latency_percentiles
from opsproof.report.collect import Evidence
from opsproof.report.judge import Decision
from opsproof.report.records import CheckRecord, Verdict


@dataclass(frozen=True)
class Report:
    decision: Decision
    evidence: Evidence
    change: str | None = None
    environment: str | None = None
    previous: dict[str, Any] | None = field(default=None)  # the previous report's JSON, for the trend

TITLES = {"gates": "Gates (smoke, post-deploy)", "post-maintenance": "Post-maintenance checklist",
          "dr-drill": "DR drill", "chaos": "Chaos experiments", "load": "Load tests"}


def _iso(at: float | None) -> str | None:
    return None if at is None else dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


def value(r: CheckRecord) -> float | None:
    """The measured figure of a check, where it has one: RTO/RPO seconds, detection seconds, a load metric."""
    for key in ("measured_s", "detected_s", "value"):
        found = r.evidence.get(key)
        if isinstance(found, int | float) and not isinstance(found, bool):
            return float(found)
    return None


def to_json(report: Report) -> dict[str, Any]:
    """The usual change-record fields: test plan, test results, backout plan tested, risk and impact."""
    decision, evidence, change, environment = report.decision, report.evidence, report.change, report.environment
    times = [r.at for r in evidence.records if r.at is not None]
    drill = decision.areas["dr-drill"].records
    doc = {
        "schema": 1, "change": change, "environment": environment, "verdict": "go" if decision.go else "no-go",
        "reasons": decision.reasons,
        "time_range": {"from": _iso(min(times)) if times else None, "to": _iso(max(times)) if times else None},
        "commits": sorted({r.commit for r in evidence.records if r.commit}),
        "test_plan": {name: sorted({r.check for r in area.records}) for name, area in decision.areas.items()},
        "test_results": {name: {v.value: area.count(v) for v in Verdict if area.count(v)}
                         for name, area in decision.areas.items()},
        "backout_plan_tested": {"drills": [_phase(r) for r in drill if r.check in ("drill.rto", "drill.rpo",
                                                                                    "drill.restore")]},
        "risk_and_impact": {
            "failing": [_brief(r) for a in decision.areas.values() for r in a.records if r.verdict.counts_as_failure],
            "waived": [{**_brief(r), "waiver": dict(r.waiver or {})} for r in decision.waived],
            "below_gate": [_brief(r) for r in decision.below], "fail_on": decision.fail_on.value},
        "post_maintenance_diff": [maintenance.to_json(d) for d in maintenance.latest(evidence.diffs)],
        "missing": decision.missing,
        "evidence_files": [{"path": str(s.path), "kind": s.kind, "sha256": s.sha256, "records": s.records}
                           for s in evidence.sources],
        "results": [{"check": r.check, "target": r.target, "verdict": r.verdict.value, "value": value(r),
                     "environment": r.environment, "run": r.run} for a in decision.areas.values() for r in a.records],
    }
    if report.previous is not None:
        doc["trend"] = trend.trend(doc, report.previous)
    return doc


def _brief(r: CheckRecord) -> dict[str, Any]:
    return {"check": r.check, "target": r.target, "severity": r.severity.value, "verdict": r.verdict.value,
            "finding": r.explain(), "environment": r.environment, "run": r.run, "at": _iso(r.at)}


def _phase(r: CheckRecord) -> dict[str, Any]:
    return {**_brief(r), "measured": r.evidence}


def to_markdown(report: Report) -> str:
    decision, evidence, change, environment = report.decision, report.evidence, report.change, report.environment
    head = "GO" if decision.go else "NO-GO"
    lines = [f"# Readiness: **{head}** — {environment or 'environment'}" + (f", change {change}" if change else ""), ""]
    lines += [f"- {_md(reason)}" for reason in _some(decision.reasons)] or ["- every required check passed"]
    lines += ["", "| area | pass | fail | blocked | timed out | waived | no data |", "|---|---|---|---|---|---|---|"]
    for name, area in decision.areas.items():
        counts = [area.count(v) for v in (Verdict.PASS, Verdict.FAIL, Verdict.BLOCKED, Verdict.TIMED_OUT,
                                          Verdict.WAIVED, Verdict.NO_DATA)]
        lines.append(f"| {TITLES[name]} | " + " | ".join(str(c) for c in counts) + " |")
    for diff in maintenance.latest(evidence.diffs):
        lines += ["", *maintenance.to_markdown(diff)]
    if decision.missing:
        lines += ["", "**Missing evidence:** " + ", ".join(TITLES[m] for m in decision.missing)]
    if decision.waived:
        lines += ["", "**Waived** (what each waiver hides):"]
        lines += [f"- {_md(r.explain())} — {_waiver(r)}" for r in decision.waived]
    change_since = trend.trend(to_json(report), report.previous) if report.previous is not None else None
    if change_since:
        lines += ["", "**Since the previous report:**"] + [f"- {_md(t)}" for t in trend.lines(change_since)]
    lines += ["", f"Evidence: {len(evidence.sources)} file(s), {len(evidence.records)} record(s)."]
    return "\n".join(lines) + "\n"


def _some(reasons: Sequence[str], limit: int = 20) -> list[str]:
    """The first reasons, and how many more (every one is in the JSON)."""
    more = len(reasons) - limit
    return [*reasons[:limit], f"… and {more} more (readiness.json lists every one)"] if more > 0 else list(reasons)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _waiver(r: CheckRecord) -> str:
    w = r.waiver or {}
    return f"owner {w.get('owner')}, ticket {w.get('ticket')}, until {w.get('expires')}: {w.get('reason')}"


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222}
h1{font-size:1.6rem}.go{color:#0a6b2b}.nogo{color:#a40e0e}table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
.fail,.blocked,.timed-out{background:#fde8e8}.waived{background:#fff6d6}.no-data{background:#eef}
section{margin-top:1.5rem}summary{cursor:pointer;margin:.4rem 0}.summary td:not(:first-child){text-align:right}
@media print{body{margin:0}details{display:block}details>summary{display:none}}"""


def to_html(report: Report) -> str:
    decision, evidence, change, environment = report.decision, report.evidence, report.change, report.environment
    e = html.escape
    head = "GO" if decision.go else "NO-GO"
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Readiness {e(head)}</title>",
             f"<style>{CSS}</style></head><body>",
             f"<h1 class={'go' if decision.go else 'nogo'}>Readiness: {e(head)} — {e(environment or '')}"
             + (f", change {e(change)}" if change else "") + "</h1>",
             "<ul>" + "".join(f"<li>{e(r)}</li>" for r in _some(decision.reasons) or ["every required check passed"])
             + "</ul>", _summary(decision)]
    for name, area in decision.areas.items():
        parts.append(f"<section id={e(name)}><h2>{e(TITLES[name])}</h2>")
        if name == "post-maintenance":  # what moved since the baseline, from → to, against tolerance
            parts += [maintenance.to_html(d) for d in maintenance.latest(evidence.diffs)]
        if not area.records:
            parts.append("<p><b>Missing:</b> no evidence of this area was found.</p></section>")
            continue
        passed = [r for r in area.records if r.verdict in (Verdict.PASS, Verdict.FLAKY)]
        others = [r for r in area.records if r.verdict not in (Verdict.PASS, Verdict.FLAKY)]
        if others:
            parts.append(_rows(others))
        if passed:  # folded: with a fleet, thousands of rows that need no reading
            parts.append(f"<details{'' if others else ' open'}><summary>{len(passed)} passed</summary>"
                         f"{_rows(passed)}</details>")
        parts += [f"<figure><figcaption>{e(r.target)}</figcaption>{svg}</figure>" for r in area.records
                  if r.check == "chaos.experiment"
                  and (svg := chaos_timeline(r.evidence.get("timeline") or [], r.evidence.get("budget_s")))]
        parts += [f"<figure><figcaption>load[{e(str(r.evidence['distribution'].get('scenario')))}]: latency by "
                  f"percentile</figcaption>{svg}</figure>" for r in area.records
                  if isinstance(r.evidence.get("distribution"), dict)
                  and (svg := latency_percentiles(r.evidence["distribution"]))]
        parts.append("</section>")
    change_since = trend.trend(to_json(report), report.previous) if report.previous is not None else None
    if change_since:
        parts.append("<section id=trend><h2>Since the previous report</h2><ul>" + "".join(
            f"<li>{e(t)}</li>" for t in trend.lines(change_since)) + "</ul></section>")
    if decision.waived:
        parts.append("<section id=waivers><h2>Waivers</h2><ul>" + "".join(
            f"<li>{e(r.explain())} — {e(_waiver(r))}</li>" for r in decision.waived) + "</ul></section>")
    parts.append("<section id=evidence><h2>Evidence files</h2><table><tr><th>file</th><th>kind</th><th>records</th>"
                 "<th>sha256</th></tr>" + "".join(
                     f"<tr><td>{e(str(s.path))}</td><td>{e(s.kind)}</td><td>{s.records}</td><td><code>{e(s.sha256)}"
                     "</code></td></tr>" for s in evidence.sources) + "</table></section></body></html>")
    return "".join(parts)


COUNTED = (Verdict.PASS, Verdict.FAIL, Verdict.BLOCKED, Verdict.TIMED_OUT, Verdict.WAIVED, Verdict.FLAKY,
           Verdict.NO_DATA)


def _summary(decision: Decision) -> str:
    e = html.escape
    head = "".join(f"<th>{e(v.value)}</th>" for v in COUNTED)
    rows = "".join(f"<tr><td><a href='#{e(name)}'>{e(TITLES[name])}</a></td>"
                   + "".join(f"<td>{area.count(v) or ''}</td>" for v in COUNTED) + "</tr>"
                   for name, area in decision.areas.items())
    return f"<table class=summary><tr><th>area</th>{head}</tr>{rows}</table>"


def _rows(records: Sequence[CheckRecord]) -> str:
    e = html.escape
    return ("<table><tr><th>verdict</th><th>severity</th><th>target</th><th>check</th><th>finding</th><th>when</th>"
            "<th>where</th></tr>" + "".join(
                f"<tr class={e(r.verdict.value)}><td>{e(r.verdict.value)}</td><td>{e(r.severity.value)}</td>"
                f"<td>{e(r.target)}</td><td>{e(r.check)}</td><td>{e(r.explain())}</td><td>{e(_iso(r.at) or '')}"
                f"</td><td>{e(_where(r))}</td></tr>" for r in records) + "</table>")


def _where(r: CheckRecord) -> str:
    """Which environment and which run (host-TIME-pid: a CI job's machine, a Kubernetes Job's pod) it came from."""
    return " · ".join(x for x in (r.environment, r.run) if x)


RENDERERS: dict[str, Callable[[Report], str]] = {
    "json": lambda report: json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n",
    "md": to_markdown, "html": to_html}


def render_all(report: Report, redact: Callable[[str], str],
               formats: Sequence[str] = ("html", "md", "json")) -> dict[str, str]:
    return {fmt: redact(RENDERERS[fmt](report)) for fmt in formats}
