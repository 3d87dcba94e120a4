"""Baselines for maintenance windows: capture every check's observation before, compare after.

``opsproof baseline capture --label pre-maint`` runs every configured probe (read-only) and stores what each
observed as JSON. After the window, :func:`compare` says which checks flipped from pass to fail and which values
moved beyond their tolerance (error ratio, p95, Redis memory, replication lag, row counts of listed tables).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opsproof.inventory import KINDS, Inventory
from opsproof.probes import ALL, Connections, Target, run
from opsproof.redact import Redactor

DEFAULT_DIR = Path("reports") / "baselines"
# the canary checks compare the window since a deploy with the window before it: against a maintenance baseline
# they say nothing more than the error-ratio and p95 comparisons below, so a baseline leaves them out
NOT_IN_BASELINES = frozenset({"slo.canary_errors", "slo.canary_latency"})


@dataclass(frozen=True)
class Metric:
    """A number worth comparing: which check it comes from, how to read it, and how much it may move."""

    name: str
    check: str
    read: Callable[[Mapping[str, Any]], dict[str, float]]  # evidence -> {metric key: value}
    worse: str  # "higher" or "lower"
    tolerance: float  # absolute, in the metric's unit
    unit: str = ""


def _window(key: str) -> Callable[[Mapping[str, Any]], dict[str, float]]:
    def read(evidence: Mapping[str, Any]) -> dict[str, float]:
        window = evidence.get("window") or {}
        if key == "error_ratio":
            return {"": window["errors"] / window["requests"]} if window.get("requests") else {}
        return {"": float(window[key])} if window.get(key) is not None else {}

    return read


METRICS: tuple[Metric, ...] = (
    Metric("error ratio", "slo.error_ratio", _window("error_ratio"), "higher", 0.005),
    Metric("p95 latency", "slo.latency_p95", _window("p95_ms"), "higher", 50.0, " ms"),
    Metric("Redis memory", "redis.memory", lambda e: {"": float(e["ratio"])} if "ratio" in e else {}, "higher", 0.10),
    Metric("replication lag", "postgres.replica_lag",
           lambda e: {name: float(v["lag_s"]) for name, v in e.items()
                      if isinstance(v, dict) and v.get("lag_s") is not None}, "higher", 5.0, " s"),
    Metric("backup age", "backups.recent", lambda e: {"": float(e["age_h"])} if "age_h" in e else {}, "higher",
           24.0, " h"),
    Metric("row count", "postgres.tables",
           lambda e: {name: float(n) for name, n in (e.get("rows") or {}).items() if n is not None}, "lower", 0.0),
)


def capture(inventory: Inventory, label: str, concurrency: int = 16) -> dict[str, Any]:
    """Run every configured probe once and return the baseline document (secrets masked)."""
    redact = Redactor(inventory.secrets)
    jobs = [(spec, Target(kind, name, cfg)) for kind in KINDS for name, cfg in inventory.targets(kind).items()
            for spec in ALL if spec.kind == kind and spec.applies(cfg) and spec.check not in NOT_IN_BASELINES]
    with Connections() as conns, ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs)))) as pool:
        results = list(pool.map(lambda job: run(job[0], job[1], conns).redacted(redact), jobs))
    return {
        "label": label,
        "environment": inventory.environment,
        "captured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "results": {f"{r.check}@{r.target}": r.to_record() for r in results},
    }


def save(document: Mapping[str, Any], directory: Path = DEFAULT_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{document['label']}.json"
    path.write_text(json.dumps(document, indent=2, default=str, ensure_ascii=False) + "\n")
    return path


def load(label_or_path: str, directory: Path = DEFAULT_DIR) -> dict[str, Any]:
    path = Path(label_or_path)
    if not path.suffix:
        path = directory / f"{label_or_path}.json"
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
    kind: str  # "flipped" | "moved" | "recovered" | "within"
    before: str
    after: str
    ok: bool
    detail: str = ""

    def explain(self) -> str:
        return f"{self.key}: {self.before} → {self.after}" + (f" ({self.detail})" if self.detail else "")


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[Change]:
    """Flipped verdicts and values moved beyond tolerance, plus what stayed within it (for the report)."""
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
    for metric in METRICS:
        for key, old in sorted(before.items()):
            if old["check"] != metric.check or key not in after:
                continue
            was, now = metric.read(old["evidence"]), metric.read(after[key]["evidence"])
            for sub, value in was.items():
                if sub not in now:
                    continue
                delta = now[sub] - value
                bad = delta > metric.tolerance if metric.worse == "higher" else -delta > metric.tolerance
                name = f"{metric.name}@{old['target']}" + (f":{sub}" if sub else "")
                changes.append(Change(
                    name, "moved" if bad else "within", _fmt(value, metric), _fmt(now[sub], metric), not bad,
                    f"{'+' if delta >= 0 else ''}{_fmt(delta, metric)}, tolerance "
                    f"{'+' if metric.worse == 'higher' else '-'}{_fmt(metric.tolerance, metric)}"))
    return changes


def _fmt(value: float, metric: Metric) -> str:
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
             f"{len([c for c in rows if c.kind == 'recovered'])} recovered"]
    for kind, mark in (("flipped", "FLIPPED "), ("moved", "MOVED   "), ("recovered", "RECOVERED"),
                       ("within", "ok      ")):
        lines += [f"  {mark} {c.explain()}" for c in rows if c.kind == kind]
    return "\n".join(lines)


def to_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    return [asdict(c) for c in changes]
