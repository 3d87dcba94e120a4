"""Collect: every record of one environment from output folders (``reports/``) or files, as :class:`CheckRecord`.

What each suite leaves (opsproof.output):

- ``runs/RUN.jsonl`` — every pytest run's records (smoke, post-deploy, post-maintenance, …), one file per run;
  ``results.jsonl`` — the latest run's (read only when its run has no file under ``runs/``);
- ``drills/*.json`` — each DR drill: its phases and measured RTO/RPO against the targets;
- ``chaos/*.json`` — each chaos experiment: status, detections against their budgets, recovery, audit;
- ``load/*.json`` — each load run: its thresholds' verdicts;
- ``baseline-diff-LABEL.json`` — each post-maintenance diff against its baseline (:mod:`opsproof.report.maintenance`).

Runs of several machines (xdist workers, one CI job per region, a Kubernetes Job per cluster) merge: a record is
kept once per (run, test, check, target), and keeps where it ran. Nothing here contacts a target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsproof.report import maintenance
from opsproof.report.records import CheckRecord, RecordError, Verdict, read_jsonl
from opsproof.result import Severity


@dataclass(frozen=True)
class Source:
    """An evidence file the report read, with its digest (the change record lists them)."""

    path: Path
    kind: str  # run | drill | chaos | load | maintenance
    sha256: str
    records: int


@dataclass
class Evidence:
    records: list[CheckRecord] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files of another environment or before --since, and why
    diffs: list[maintenance.Diff] = field(default_factory=list)  # the post-maintenance diffs read


def collect(paths: Sequence[Path], environment: str | None = None, since: float | None = None) -> Evidence:
    """The records under ``paths`` (folders are searched as output roots), of ``environment`` if given, recorded at
    or after ``since`` (Unix time). A file that cannot be read raises :class:`RecordError` naming it."""
    evidence = Evidence()
    seen: set[tuple[str | None, str, str, str]] = set()
    for kind, path in _files(paths):
        diff = maintenance.read(path) if kind == "maintenance" else None
        if kind == "maintenance" and diff is None:
            evidence.skipped.append(f"{path}: a post-maintenance diff written before diffs were versioned (no "
                                    "environment, no time): run checks/post_maintenance again to report it")
            continue
        if diff is not None and not _wanted(diff.environment, diff.at, environment, since):
            evidence.skipped.append(f"{path}: a post-maintenance diff of another environment or before --since")
            continue
        records = maintenance.records(diff) if diff is not None else list(_read(kind, path))
        kept = [r for r in records if _wanted(r.environment, r.at, environment, since)]
        if records and not kept:
            evidence.skipped.append(f"{path}: {len(records)} record(s) of another environment or before --since")
            continue
        fresh = [r for r in kept if (r.run, r.test, r.check, r.target) not in seen]
        seen.update((r.run, r.test, r.check, r.target) for r in fresh)
        if not fresh and kept:
            continue  # the same run twice (results.jsonl beside its runs/ file)
        evidence.records.extend(fresh)
        if diff is not None:
            evidence.diffs.append(diff)
        evidence.sources.append(Source(path, kind, hashlib.sha256(path.read_bytes()).hexdigest(), len(fresh)))
    return evidence


def _wanted(stamped: str | None, at: float | None, environment: str | None, since: float | None) -> bool:
    """Evidence of ``environment`` (or of none named), recorded at or after ``since`` (or at no known time)."""
    return (environment is None or stamped in (None, environment)) and (since is None or at is None or at >= since)


def _files(paths: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    for path in paths:
        if path.is_dir():
            yield from (("run", p) for p in sorted((path / "runs").glob("*.jsonl")))
            if (path / "results.jsonl").is_file():
                yield "run", path / "results.jsonl"
            for kind, folder in (("drill", "drills"), ("chaos", "chaos"), ("load", "load")):
                yield from ((kind, p) for p in sorted((path / folder).glob("*.json")))
            yield from (("maintenance", p) for p in sorted(path.glob("baseline-diff-*.json")))
        elif path.suffix == ".jsonl":
            yield "run", path
        elif path.is_file():
            yield _kind_of(path), path
        else:
            raise RecordError(f"{path}: no such file or folder")


def _kind_of(path: Path) -> str:
    doc = _document(path)
    if doc.get("kind") == maintenance.KIND:
        return "maintenance"
    for kind, key in (("drill", "drill"), ("chaos", "experiment"), ("load", "scenario")):
        if key in doc:
            return kind
    raise RecordError(f"{path}: not an opsproof evidence file (no 'drill', 'experiment' or 'scenario' key, "
                      "nor kind: baseline-diff)")


def _document(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RecordError(f"{path}: a JSON object was expected, found {type(doc).__name__}")
    return doc


def _read(kind: str, path: Path) -> Iterable[CheckRecord]:
    if kind == "run":
        return read_jsonl(path)
    doc = _document(path)
    try:
        return {"drill": _drill, "chaos": _chaos, "load": _load}[kind](doc, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"{path}: a {kind} document without the expected shape ({type(exc).__name__}: {exc})") \
            from None


def _verdict(text: object) -> Verdict:
    return Verdict.NO_DATA if text in ("no-verdict", None) else Verdict(str(text))


# as checks/dr_drill marks its phases' tests
DRILL_SEVERITY = {"found": Severity.CRITICAL, "integrity": Severity.CRITICAL, "provision": Severity.HIGH,
                  "restore": Severity.CRITICAL, "verify": Severity.CRITICAL, "rpo": Severity.HIGH, "rto": Severity.HIGH,
                  "teardown": Severity.MEDIUM}


def _drill(doc: dict[str, Any], path: Path) -> list[CheckRecord]:
    """One record per phase; the RTO and RPO phases carry the measured figures and the targets."""
    at = _time(doc.get("started"))
    return [CheckRecord(check=f"drill.{p['phase']}", target=str(doc["drill"]), suite="dr-drill",
                        severity=DRILL_SEVERITY.get(p["phase"], Severity.HIGH),
                        verdict=_verdict(p["verdict"]), observed=str(p["observed"]), expected=str(p["expected"]),
                        evidence={**p.get("evidence", {}), **({"target_s": doc[p["phase"]].get("target_s")}
                                                             if p["phase"] in ("rto", "rpo") else {})},
                        duration_s=float(p.get("duration_s") or 0.0), test=str(path), run=f"drill:{path.name}", at=at,
                        environment=doc.get("environment"))
            for p in doc["phases"]]


def _chaos(doc: dict[str, Any], path: Path) -> list[CheckRecord]:
    """One record for the experiment, and one per alert detection against its budget."""
    title, at = str(doc["experiment"]), _time(doc.get("written_at"))
    failures = [str(f) for f in doc.get("failures", [])]
    ok = bool(doc["ok"])
    records = [CheckRecord(
        check="chaos.experiment", target=f"chaos[{title}]", suite="chaos", severity=Severity.HIGH,
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        observed=f"{doc.get('status')}, rolled back ({doc.get('rollbacks_run', 0)} rollback(s))" if ok
        else "; ".join(failures) or str(doc.get("status")),
        expected="the experiment completes, its steady state holds, rollbacks leave nothing behind",
        evidence={**{k: doc.get(k) for k in ("timeline", "recovery", "audit", "duration_s", "status")},
                  "budget_s": next((d.get("budget_s") for d in doc.get("detections", [])), None)},
        duration_s=float(doc.get("duration_s") or 0.0), test=str(path), run=f"chaos:{path.name}", at=at,
        environment=doc.get("environment"))]
    for d in doc.get("detections", []):
        detected, budget = d.get("detected_s"), d.get("budget_s")
        verdict = Verdict.NO_DATA if detected is None and budget is None else (
            Verdict.PASS if detected is not None and (budget is None or detected <= budget) else Verdict.FAIL)
        records.append(CheckRecord(
            check="chaos.detection", target=f"alert[{d.get('alert')}]", suite="chaos", severity=Severity.HIGH,
            verdict=verdict, observed="did not fire" if detected is None else f"fired after {detected:g} s",
            expected=f"fires within {budget:g} s" if budget is not None else "fires",
            evidence=dict(d), test=str(path), run=f"chaos:{path.name}", at=at, environment=doc.get("environment")))
    return records


def _load(doc: dict[str, Any], path: Path) -> list[CheckRecord]:
    """One record per threshold verdict."""
    scenario, at = str(doc["scenario"]), doc.get("started")
    distribution = {"scenario": scenario, "total": doc.get("total", {}).get("us", {}),
                    **{n: t.get("us", {}) for n, t in doc.get("names", {}).items()}}
    records = [CheckRecord(
        check=f"load.{_metric(str(v['threshold']))}", target=_subject(str(v["subject"])), suite="load",
        severity=Severity.HIGH, verdict=_verdict(v["verdict"]), observed=_finding(v)[0], expected=_finding(v)[1],
        evidence={"value": v.get("value"), "requests": v.get("requests"),
                                                "scenario": scenario},
        test=str(path), run=f"load:{path.name}", at=float(at) if at is not None else None,
        environment=doc.get("environment"))
        for v in doc["verdicts"]]
    if records:  # the run's latency distribution, charted once per run
        records[0] = dataclasses.replace(records[0], evidence={**records[0].evidence, "distribution": distribution})
    return records


def _finding(verdict: dict[str, Any]) -> tuple[str, str]:
    """A threshold's message (``load[x]: p(95) 241 ms over 18,422 requests, expected < 200 ms``) as observed and
    expected, without the subject the record names already."""
    text = str(verdict["message"]).removeprefix(f"{verdict['subject']}: ")
    observed, _, expected = text.rpartition(", expected ")
    return (observed, expected) if observed else (text, str(verdict["threshold"]))


def _metric(threshold: str) -> str:
    """``p(95) < 300ms`` → ``p(95)``: one check per metric of a scenario or request name."""
    return threshold.split()[0] if threshold.split() else threshold


def _subject(subject: str) -> str:
    return subject if subject.startswith("load[") else f"load[{subject}]"


def _time(iso: object) -> float | None:
    import datetime as dt

    if not isinstance(iso, str):
        return None
    try:
        return dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
