"""The detection budget of an alert, from the live configuration (see :mod:`opsproof.chaos.alerts`), and the
clients and readers it needs: the Prometheus and Alertmanager APIs, durations, scrape health."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import yaml

from opsproof.chaos.context import ChaosError, Context, connections, fail
from opsproof.probes import Target
from opsproof.probes.prometheus import api as prometheus_api
from opsproof.util import durations
from opsproof.util.errors import BadAnswer

POLL_S = 0.1
TIMEOUT_S = 3.0
_JOB = re.compile(r"\bjob\s*=\s*\"([^\"]+)\"")
_WORD = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PROMQL = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
           "offset", "le", "inf", "nan"}


def duration_s(text: str | float | int | None, default: float = 0.0) -> float:
    """Prometheus durations: ``1s``, ``900ms``, ``1m30s``, ``5m``; numbers are seconds."""
    if text is None or text == "":
        return default
    if isinstance(text, int | float):
        return float(text)
    return durations.seconds(text)


def _iso_of(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Budget:
    alert: str
    scrape_s: float
    evaluation_s: float
    for_s: float
    group_wait_s: float
    jobs: tuple[str, ...]
    notes: tuple[str, ...] = ()
    allowance_s: float = 0.0  # declared by the experiment: how long the symptom takes to become measurable
    # measured: the slowest scrape of the rule's jobs after the fault. A sample is stamped with its scrape's start
    # but is seen by rules only once the scrape ends (postgres_exporter 0.11 answers 1.0 s late with pg_up 0).
    scrape_duration_s: float = 0.0

    @property
    def total_s(self) -> float:
        return round(self.scrape_s + self.scrape_duration_s + self.evaluation_s + self.for_s + self.group_wait_s
                     + self.allowance_s, 3)

    def explain(self) -> str:
        took = f" + scrape duration {self.scrape_duration_s:g}" if self.scrape_duration_s else ""
        allowance = f" + allowance {self.allowance_s:g}" if self.allowance_s else ""
        return (f"scrape {self.scrape_s:g}{took} + evaluation {self.evaluation_s:g} + for {self.for_s:g} "
                f"+ group_wait {self.group_wait_s:g}{allowance}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_s": self.total_s}


@dataclass
class Apis:
    """The Prometheus and Alertmanager of the inventory, reached with their own timeouts and headers."""

    ctx: Context
    prometheus: str | None = None
    alertmanager: str | None = None

    def __post_init__(self) -> None:
        self.prom_target = self.ctx.target("prometheus", self.prometheus)
        self.am_target = self.ctx.target("alertmanager", self.alertmanager)
        self.prom_id, self.prom = self.prom_target.id, self.prom_target.config
        self.am_id, self.am = self.am_target.id, self.am_target.config

    def __enter__(self) -> Apis:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # the client is shared by the process

    def _get(self, target: Target[Any], path: str, params: Mapping[str, Any]) -> Any:
        """The smoke checks' own API call (:func:`opsproof.probes.prometheus.api`), its errors as failures."""
        try:
            return prometheus_api(target, connections(), path, params)
        except httpx.HTTPError as e:
            raise fail(target.id, f"unreachable ({type(e).__name__}: {self.ctx.redact(str(e))})",
                       f"an answer to GET {path}") from None
        except BadAnswer as e:
            raise fail(target.id, self.ctx.redact(str(e)), f"a JSON answer to GET {path}") from None

    def prom_get(self, path: str, **params: Any) -> Any:
        return self._get(self.prom_target, path, params)

    def am_get(self, path: str, **params: Any) -> Any:
        return self._get(self.am_target, path, params)

    def active(self, name: str, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Alertmanager's active (not silenced, not inhibited) alerts called ``name`` with ``labels``."""
        matchers = [f'alertname="{name}"', *(f'{k}="{v}"' for k, v in (labels or {}).items())]
        alerts: list[dict[str, Any]] = self.am_get("/api/v2/alerts", active="true", silenced="false",
                                                   inhibited="false", filter=matchers)
        return alerts


def _rule_jobs(apis: Apis, query: str) -> list[str]:
    named = _JOB.findall(query)
    if named:
        return sorted(set(named))
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", query)
    words = {w for w in _WORD.findall(bare) if w.lower() not in _PROMQL and not re.search(rf"\b{w}\s*\(", bare)}
    jobs: set[str] = set()
    for word in words:
        for metric in {word, re.sub(r"_(bucket|sum|count)$", "", word)}:
            for entry in apis.prom_get("/api/v1/targets/metadata", metric=metric, limit=50):
                jobs.add(str(entry.get("target", {}).get("job", "")))
    return sorted(j for j in jobs if j)


def detection_budget(apis: Apis, alert: str, allowance_s: float = 0.0) -> Budget:
    """The budget of ``alert`` from the live Prometheus and Alertmanager configurations."""
    config = yaml.safe_load(apis.prom_get("/api/v1/status/config")["yaml"]) or {}
    glob = config.get("global", {})
    default_scrape = duration_s(glob.get("scrape_interval"), 60.0)
    scrape = {str(j["job_name"]): duration_s(j.get("scrape_interval"), default_scrape)
              for j in config.get("scrape_configs", [])}
    notes: list[str] = []
    found = [(g, r) for g in apis.prom_get("/api/v1/rules", type="alert")["groups"] for r in g["rules"]
             if r.get("name") == alert]
    if found:
        group, rule = found[0]
        evaluation = float(group.get("interval") or duration_s(glob.get("evaluation_interval"), 60.0))
        for_s = float(rule.get("duration", 0))
        jobs = _rule_jobs(apis, str(rule.get("query", "")))
    else:
        evaluation, for_s, jobs = duration_s(glob.get("evaluation_interval"), 60.0), 0.0, []
        notes.append(f"rule {alert} is not loaded in Prometheus")
    known = [j for j in jobs if j in scrape]
    if not known:
        known = list(scrape)
        notes.append("jobs of the rule unknown: the longest scrape interval of all jobs")
    am_config = yaml.safe_load(apis.am_get("/api/v2/status")["config"]["original"]) or {}
    group_wait = duration_s(am_config.get("route", {}).get("group_wait"), 30.0)
    return Budget(alert, max((scrape[j] for j in known), default=default_scrape), evaluation, for_s, group_wait,
                  tuple(known), tuple(notes), float(allowance_s))


def scrape_health(apis: Apis, jobs: tuple[str, ...], start: float, end: float) -> dict[str, dict[str, Any]]:
    """What Prometheus saw of each job's scrapes between ``start`` and ``end`` (epoch s): how many failed
    (``up == 0``) and the slowest. A late alert is most often a blind Prometheus, not a slow rule."""
    window = max(1, math.ceil(end - start))  # the whole span: rounding down dropped its first part
    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        selector = f'{{job="{job}"}}'
        queries = {"scrapes": f"count_over_time(up{selector}[{window}s])",
                   "failed": f"count_over_time(up{selector}[{window}s]) - sum_over_time(up{selector}[{window}s])",
                   "slowest_s": f"max_over_time(scrape_duration_seconds{selector}[{window}s])"}
        facts: dict[str, Any] = {}
        for key, query in queries.items():
            try:
                result = apis.prom_get("/api/v1/query", query=query, time=end)["result"]
            except ChaosError:
                continue
            values = [float(r["value"][1]) for r in result]
            facts[key] = round(max(values), 3) if key == "slowest_s" and values else int(sum(values))
        out[job] = facts
    return out


def _blind_spots(health: Mapping[str, Mapping[str, Any]]) -> str:
    spots = [f"job {job}: {f['failed']} of {f.get('scrapes', '?')} scrapes failed (slowest "
             f"{f.get('slowest_s', '?')} s)" for job, f in health.items() if f.get("failed")]
    return f"; {'; '.join(spots)}" if spots else ""
