"""The post-maintenance diff as a typed record: what moved since the baseline captured before the window.

``pytest checks/post_maintenance --baseline LABEL`` compares the environment with the baseline
(:mod:`opsproof.baseline`) and writes ``OUT/baseline-diff-LABEL.json`` with :func:`document`: versioned
(``schema: 1``, ``kind: baseline-diff``), stamped with the environment, the run, the commit and both times, one
entry per line of the diff (``key``, ``kind``: flipped | moved | no-data | recovered | within, ``before``, ``after``,
``ok``, ``detail`` — the tolerance it was judged against). The report reads it back with :func:`read`, validated (a
file it cannot use is a :class:`RecordError` naming the file and the key), and turns each line into a
``baseline.diff`` check of the post-maintenance area: a check that flipped or a value that moved beyond its
tolerance fails, a value with nothing to compare is no-data (a no-go where the policy requires the area), what stayed
within tolerance or recovered passes. Nothing here runs a probe.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsproof.report.records import CheckRecord, RecordError, Verdict
from opsproof.result import Severity

SCHEMA = 1
KIND = "baseline-diff"
KINDS = ("flipped", "moved", "no-data", "recovered", "within")
CHECK = "baseline.diff"


@dataclass(frozen=True)
class Line:
    """One line of the diff: ``redis.memory@redis[cache]: 41.00% → 63.00% (+22.00%, tolerance +10.00%)``."""

    key: str
    kind: str
    before: str
    after: str
    ok: bool
    detail: str = ""

    @property
    def verdict(self) -> Verdict:
        if self.kind == "no-data":
            return Verdict.NO_DATA
        return Verdict.PASS if self.ok else Verdict.FAIL

    def explain(self) -> str:
        return f"{self.key}: {self.before} → {self.after}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Diff:
    """A post-maintenance diff as the report reads it."""

    label: str
    environment: str | None
    baseline_at: float | None  # when the baseline was captured
    at: float | None  # when the environment was compared with it
    run: str | None
    commit: str | None
    lines: tuple[Line, ...]
    path: str = ""

    def regressed(self) -> list[Line]:
        """What got worse: checks that flipped and values beyond their tolerance."""
        return [line for line in self.lines if line.kind in ("flipped", "moved") and not line.ok]

    def no_data(self) -> list[Line]:
        return [line for line in self.lines if line.kind == "no-data"]


def document(changes: Iterable[Mapping[str, Any]], label: str, environment: str | None, baseline_captured_at: object,
             run: str | None, commit: str | None, now: float | None = None) -> dict[str, Any]:
    """The file the post-maintenance run writes (``changes``: :func:`opsproof.baseline.to_json`'s entries)."""
    at = dt.datetime.now(dt.UTC) if now is None else dt.datetime.fromtimestamp(now, dt.UTC)
    return {"schema": SCHEMA, "kind": KIND, "label": label, "environment": environment,
            "baseline_captured_at": baseline_captured_at, "compared_at": at.isoformat(timespec="seconds"),
            "run": run, "commit": commit,
            "changes": [{k: c.get(k, "") for k in ("key", "kind", "before", "after", "ok", "detail")}
                        for c in changes]}


def read(path: Path) -> Diff | None:
    """The diff of a file, validated; None for a file written before diffs were versioned (a bare list)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot be read as JSON ({exc})") from None
    if isinstance(doc, list):
        return None
    return parse(doc, str(path))


def parse(doc: object, where: str) -> Diff:
    if not isinstance(doc, dict):
        raise RecordError(f"{where}: a post-maintenance diff is a JSON object, found {type(doc).__name__}")
    if doc.get("kind") != KIND:
        raise RecordError(f"{where}: key 'kind': {doc.get('kind')!r}, expected {KIND!r}")
    if doc.get("schema") != SCHEMA:
        raise RecordError(f"{where}: schema {doc.get('schema')!r} is not one this opsproof reads (it reads schema "
                          f"{SCHEMA}): report with the opsproof version that wrote it")
    label = doc.get("label")
    if not isinstance(label, str):
        raise RecordError(f"{where}: key 'label': {'missing' if 'label' not in doc else 'not text'}")
    changes = doc.get("changes")
    if not isinstance(changes, list):
        raise RecordError(f"{where}: key 'changes': {'missing' if 'changes' not in doc else 'not a list'}")
    lines = []
    for i, change in enumerate(changes):
        at = f"{where}: changes[{i}]"
        if not isinstance(change, dict):
            raise RecordError(f"{at}: a JSON object was expected, found {type(change).__name__}")
        for key in ("key", "before", "after"):
            if not isinstance(change.get(key), str):
                raise RecordError(f"{at}: key {key!r}: {'missing' if key not in change else 'not text'}")
        if change.get("kind") not in KINDS:
            raise RecordError(f"{at}: key 'kind': {change.get('kind')!r} is not one of {', '.join(KINDS)}")
        if not isinstance(change.get("ok"), bool):
            raise RecordError(f"{at}: key 'ok': {'missing' if 'ok' not in change else 'not true or false'}")
        lines.append(Line(change["key"], change["kind"], change["before"], change["after"], change["ok"],
                          str(change.get("detail") or "")))
    return Diff(label, _text(doc.get("environment")), _time(doc.get("baseline_captured_at")),
                _time(doc.get("compared_at")), _text(doc.get("run")), _text(doc.get("commit")), tuple(lines), where)


def records(diff: Diff) -> list[CheckRecord]:
    """One ``baseline.diff`` check per line of the diff, in the post-maintenance area."""
    expected = {"flipped": "still passing, as before the window", "recovered": "passing (it failed before)",
                "no-data": "a value on both sides to compare"}
    return [CheckRecord(
        check=CHECK, target=line.key, suite="post-maintenance", severity=Severity.HIGH, verdict=line.verdict,
        observed=f"{line.before} → {line.after}" + (f" ({line.detail})" if line.detail else ""),
        expected=expected.get(line.kind, f"within tolerance of the baseline {diff.label!r}"),
        evidence={"label": diff.label, "kind": line.kind, "before": line.before, "after": line.after,
                  "detail": line.detail},
        test=diff.path, environment=diff.environment, run=diff.run or f"diff:{Path(diff.path).name}", at=diff.at,
        commit=diff.commit) for line in diff.lines]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


# --- in the report ----------------------------------------------------------------------------------------------

def latest(diffs: Iterable[Diff]) -> list[Diff]:
    """The newest diff of each environment (several regions' diffs merge into one report, each kept)."""
    newest: dict[str | None, Diff] = {}
    for diff in diffs:
        kept = newest.get(diff.environment)
        if kept is None or (diff.at or 0.0) >= (kept.at or 0.0):
            newest[diff.environment] = diff
    return sorted(newest.values(), key=lambda d: d.environment or "")


def counts(diff: Diff) -> str:
    bad = [line for line in diff.lines if not line.ok]
    return (f"{sum(1 for c in bad if c.kind == 'flipped')} flipped, "
            f"{sum(1 for c in bad if c.kind == 'moved')} moved beyond tolerance, "
            f"{sum(1 for c in bad if c.kind == 'no-data')} without data, "
            f"{sum(1 for c in diff.lines if c.kind == 'recovered')} recovered, "
            f"{sum(1 for c in diff.lines if c.kind == 'within')} within tolerance")


def heading(diff: Diff) -> str:
    times = ", ".join(f"{what} {_iso(at)}" for what, at in (("captured", diff.baseline_at), ("compared", diff.at))
                      if at is not None)
    where = f" on {diff.environment}" if diff.environment else ""
    return f"against baseline {diff.label!r}{where}" + (f" ({times})" if times else "") + f": {counts(diff)}"


def to_json(diff: Diff) -> dict[str, Any]:
    return {"label": diff.label, "environment": diff.environment, "baseline_captured_at": _iso(diff.baseline_at),
            "compared_at": _iso(diff.at), "run": diff.run, "file": diff.path, "summary": counts(diff),
            "regressed": [line.key for line in diff.regressed()], "no_data": [line.key for line in diff.no_data()],
            "lines": [{"key": c.key, "kind": c.kind, "before": c.before, "after": c.after, "ok": c.ok,
                       "detail": c.detail} for c in diff.lines]}


ORDER = {"flipped": 0, "moved": 1, "no-data": 2, "recovered": 3, "within": 4}


def to_html(diff: Diff) -> str:
    """The diff as a table: what moved, from → to, against which tolerance; regressions first."""
    import html

    e = html.escape
    rows = "".join(f"<tr class={e(c.verdict.value)}><td>{e(c.kind)}</td><td>{e(c.key)}</td><td>{e(c.before)}</td>"
                   f"<td>{e(c.after)}</td><td>{e(c.detail)}</td></tr>"
                   for c in sorted(diff.lines, key=lambda c: (ORDER[c.kind], c.key)))
    flipped = [c.key for c in diff.lines if c.kind == "flipped"]
    regressed = (f"<p><b>Checks that regressed:</b> {e(', '.join(flipped))}</p>" if flipped else
                 "<p>No check regressed since the baseline.</p>")
    return (f"<div class=diff><h3>Diff {e(heading(diff))}</h3>{regressed}<table><tr><th>change</th><th>what</th>"
            f"<th>before</th><th>after</th><th>against tolerance</th></tr>{rows}</table></div>")


def to_markdown(diff: Diff, limit: int = 20) -> list[str]:
    lines = [f"**Post-maintenance diff** {heading(diff).replace('|', '/')}"]
    found = [*diff.regressed(), *diff.no_data()]
    lines += [f"- {c.kind}: {c.explain()}".replace("|", "\\|") for c in found[:limit]]
    if len(found) > limit:
        lines.append(f"- … and {len(found) - limit} more (readiness.json lists every one)")
    return lines


def _iso(at: float | None) -> str | None:
    return None if at is None else dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
