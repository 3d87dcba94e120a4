"""Baselines for maintenance windows: capture every check's observation before, compare after.

``opsproof baseline capture --label pre-maint`` runs every configured probe (read-only) and stores what each
observed as JSON. After the window, :func:`compare` says which checks flipped from pass to fail and which values
moved beyond their tolerance (error ratio, p95, Redis memory, replication lag, row counts of listed tables). Values
are judged at the resolution of their data: p95 by the histogram's bucket counts, error ratios by an exact test.
A value the baseline has and the run lacks (or the reverse) is *no data* — a finding, never a pass.
Tolerances come from the inventory's ``tolerances:`` (defaults in :class:`opsproof.inventory.Tolerances`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opsproof import output
from opsproof.inventory import KINDS, Inventory, Tolerances
from opsproof.probes import ALL, Connections, Target, prepare, run
from opsproof.redact import Redactor
from opsproof.stats import compare_error_rates, compare_tails, judging_bound

# the canary checks compare the window since a deploy with the window before it: against a maintenance baseline
# they say nothing more than the error-ratio and p95 comparisons below, so a baseline leaves them out
NOT_IN_BASELINES = frozenset({"slo.canary_errors", "slo.canary_latency"})


Reading = dict[str, float | str]  # {sub-key: value}; a str: the metric applies but has no value, and why


@dataclass(frozen=True)
class Metric:
    """A number worth comparing: which check it comes from, how to read it, and how much it may move.

    ``read(record)`` returns {sub-key: value}; a string instead of a number says why the run measured
    nothing (a window with too few requests, a row count hidden by row-level security): a comparison with
    nothing on one side is *no data*, never a pass. {} means the metric does not apply to this target."""

    name: str
    check: str
    read: Callable[[Mapping[str, Any]], Reading]
    worse: str  # "higher" or "lower"
    tolerance: Callable[[Tolerances], float]  # absolute, in the metric's unit
    unit: str = ""


def _error_ratio(record: Mapping[str, Any]) -> Reading:
    window = record["evidence"].get("window")
    if not window or record["verdict"] == "no-data" or not window.get("requests"):
        return {"": record["observed"]}
    return {"": window["errors"] / window["requests"]}


def _field(key: str) -> Callable[[Mapping[str, Any]], Reading]:
    return lambda record: {"": float(record["evidence"][key])} if key in record["evidence"] else {}


def _lags(record: Mapping[str, Any]) -> Reading:
    return {name: record["observed"] if v.get("lag_s") is None else float(v["lag_s"])
            for name, v in record["evidence"].items() if isinstance(v, dict) and "lag_s" in v}


def _rows(record: Mapping[str, Any]) -> Reading:
    hidden = record["evidence"].get("hidden_by_rls") or {}
    return {name: hidden.get(name, f"{name}: not counted ({record['observed']})") if n is None else float(n)
            for name, n in (record["evidence"].get("rows") or {}).items()}


METRICS: tuple[Metric, ...] = (
    Metric("error ratio", "slo.error_ratio", _error_ratio, "higher", lambda t: t.error_ratio),
    Metric("Redis memory", "redis.memory", _field("ratio"), "higher", lambda t: t.redis_memory),
    Metric("replication lag", "postgres.replica_lag", _lags, "higher", lambda t: t.replication_lag_s, " s"),
    Metric("backup age", "backups.recent", _field("age_h"), "higher", lambda t: t.backup_age_h, " h"),
    Metric("row count", "postgres.tables", _rows, "lower", lambda t: float(t.rows_lost)),
)
LATENCY = "p95 latency"  # judged at the histogram's resolution, from the bucket counts of both windows (_latency)


def capture(inventory: Inventory, label: str, concurrency: int = 16) -> dict[str, Any]:
    """Run every configured probe once and return the baseline document (secrets masked)."""
    redact = Redactor(inventory.secrets)
    jobs = [(spec, Target(kind, name, cfg)) for kind in KINDS for name, cfg in inventory.targets(kind).items()
            for spec in ALL if spec.kind == kind and spec.applies(cfg) and spec.check not in NOT_IN_BASELINES]
    prepare(spec.kind for spec, _ in jobs)
    with Connections() as conns, ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs)))) as pool:
        results = list(pool.map(lambda job: run(job[0], job[1], conns).redacted(redact), jobs))
    return {
        "label": label,
        "environment": inventory.environment,
        "captured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "results": {f"{r.check}@{r.target}": r.to_record() for r in results},
    }


def save(document: Mapping[str, Any], out: Path) -> Path:
    """Write a baseline as ``OUT/baselines/LABEL.json`` (see :mod:`opsproof.output`)."""
    path = output.baseline(out, str(document["label"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str, ensure_ascii=False) + "\n")
    return path


def load(label_or_path: str, out: Path, cwd: Path | None = None) -> dict[str, Any]:
    """A baseline by label (``OUT/baselines/LABEL.json``) or by path (``….json``, relative to ``cwd``)."""
    path = output.resolve(label_or_path, cwd) if Path(label_or_path).suffix else output.baseline(out, label_or_path)
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except OSError as e:
        raise FileNotFoundError(f"baseline {label_or_path!r}: cannot read {path} ({e.strerror}). "
                                "Fix: capture it first with `opsproof baseline capture --label …`.") from None
    return document


@dataclass(frozen=True)
class Change:
    """One difference between the baseline and now."""

    key: str  # "redis.memory@redis[cache]" or "row count@postgres[main]:public.items"
    kind: str  # "flipped" | "moved" | "no-data" | "recovered" | "within"
    before: str
    after: str
    ok: bool
    detail: str = ""

    def explain(self) -> str:
        return f"{self.key}: {self.before} → {self.after}" + (f" ({self.detail})" if self.detail else "")


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any],
            tolerances: Tolerances | None = None) -> list[Change]:
    """Flipped verdicts, values moved beyond tolerance and values missing on one side (no data), plus what
    stayed within tolerance (for the report)."""
    tol = tolerances or Tolerances()
    before, after = baseline["results"], current["results"]
    changes: list[Change] = []
    for key, old in sorted(before.items()):
        new = after.get(key)
        if new is None:
            changes.append(Change(key, "flipped", old["verdict"], "missing", False, "the check no longer runs"))
        elif old["verdict"] == "pass" and new["verdict"] != "pass":
            changes.append(Change(key, "flipped", "pass", new["verdict"], False, new["observed"]))
        elif old["verdict"] != "pass" and new["verdict"] == "pass":
            changes.append(Change(key, "recovered", old["verdict"], "pass", True, old["observed"]))
    for key, old in sorted(before.items()):
        if key not in after:
            continue
        if old["check"] == "slo.latency_p95":
            changes.append(_latency(old, after[key], tol))
        for metric in (m for m in METRICS if m.check == old["check"]):
            changes += _moved(metric, old, after[key], tol)
    return changes


def _moved(metric: Metric, old: Mapping[str, Any], new: Mapping[str, Any], tol: Tolerances) -> list[Change]:
    was, now = metric.read(old), metric.read(new)
    tolerance = metric.tolerance(tol)
    changes = []
    for sub in sorted(set(was) | set(now)):
        name = f"{metric.name}@{old['target']}" + (f":{sub}" if sub else "")
        value, current = was.get(sub, "not measured"), now.get(sub, "not measured")
        if isinstance(value, str) or isinstance(current, str):
            sides = [(side, why) for side, why in (("before", value), ("now", current)) if isinstance(why, str)]
            if len(sides) == 2 and value == current:
                sides = [("before and now", str(value))]
            changes.append(Change(name, "no-data", _fmt(value, metric), _fmt(current, metric), False,
                                  "nothing to compare: " + "; ".join(f"{side}: {why}" for side, why in sides)))
            continue
        delta = current - value
        bad = delta > tolerance if metric.worse == "higher" else -delta > tolerance
        detail = (f"{'+' if delta >= 0 else ''}{_fmt(delta, metric)}, tolerance "
                  f"{'+' if metric.worse == 'higher' else '-'}{_fmt(tolerance, metric)}")
        if bad and metric.check == "slo.error_ratio":  # beyond the tolerance, and not by chance
            w0, w1 = old["evidence"]["window"], new["evidence"]["window"]
            test = compare_error_rates(w0["errors"], w0["requests"], w1["errors"], w1["requests"])
            bad = test.p_value < tol.significance
            detail += f"; exact conditional binomial test, one-sided p = {test.p_value:.2g}"
        changes.append(Change(name, "moved" if bad else "within", _fmt(value, metric), _fmt(current, metric),
                              not bad, detail))
    return changes


def _buckets(record: Mapping[str, Any]) -> dict[float, int] | None:
    buckets = record["evidence"].get("buckets")
    if record["verdict"] == "no-data" or not buckets:
        return None
    return {float(le): int(n) for le, n in buckets.items()}


def _latency(old: Mapping[str, Any], new: Mapping[str, Any], tol: Tolerances) -> Change:
    """p95 after the window not above the baseline's, at the histogram's resolution: with B the first bucket bound
    ≥ ``p95_factor`` × p95 before (one both windows have), a regression is significantly more than 5 % of the
    requests after slower than B, and significantly more than before (``stats.compare_tails``). Two interpolated
    p95s a bucket apart are not a finding by themselves; beyond the top bucket the histogram cannot tell."""
    name = f"{LATENCY}@{old['target']}"
    was, now = _buckets(old), _buckets(new)
    p95 = [r["evidence"].get("window", {}).get("p95_ms") for r in (old, new)]
    shown_before, shown_after = (f"p95 {p:.1f} ms" if p is not None else "no data" for p in p95)
    if was is None or now is None or p95[0] is None:
        missing = old if was is None or p95[0] is None else new
        return Change(name, "no-data", shown_before, shown_after, False,
                      "nothing to compare: " + ("the baseline" if missing is old else "now") +
                      " has no latency histogram — " + missing["observed"])
    threshold_s = tol.p95_factor * p95[0] / 1000
    bound = judging_bound(was, now, threshold_s)
    if bound is None:
        return Change(name, "no-data", shown_before, shown_after, False,
                      f"no verdict: no bucket bound ≥ {threshold_s * 1000:.4g} ms ({tol.p95_factor:g} × p95 before) "
                      "in both windows: this histogram cannot tell")
    tails = compare_tails(was, now, bound)
    bad = tails.regressed(tol.significance)
    return Change(name, "moved" if bad else "within", shown_before, shown_after, not bad,
                  f"judged at bucket resolution against {tol.p95_factor:g} × p95 before: {tails.explain()}; "
                  f"a regression needs p < {tol.significance:g} on both")


def _fmt(value: float | str, metric: Metric) -> str:
    if isinstance(value, str):
        return "no data"
    if metric.unit:
        return f"{value:.1f}{metric.unit}"
    if metric.name == "row count":
        return f"{value:.0f}"
    return f"{value:.2%}" if abs(value) < 10 else f"{value:g}"


def render(changes: Iterable[Change], label: str) -> str:
    """The before/after diff an operator reads at the end of the window."""
    rows = list(changes)
    bad = [c for c in rows if not c.ok]
    lines = [f"opsproof: post-maintenance diff against baseline {label!r}: "
             f"{len([c for c in bad if c.kind == 'flipped'])} flipped, "
             f"{len([c for c in bad if c.kind == 'moved'])} moved beyond tolerance, "
             f"{len([c for c in bad if c.kind == 'no-data'])} without data, "
             f"{len([c for c in rows if c.kind == 'recovered'])} recovered"]
    for kind, mark in (("flipped", "FLIPPED "), ("moved", "MOVED   "), ("no-data", "NO DATA "),
                       ("recovered", "RECOVERED"), ("within", "ok      ")):
        lines += [f"  {mark} {c.explain()}" for c in rows if c.kind == kind]
    return "\n".join(lines)


def to_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    return [asdict(c) for c in changes]
