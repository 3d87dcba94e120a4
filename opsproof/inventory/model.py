"""One environment: the entries of every kind, tolerances, and the dependencies between entries (acyclic)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from opsproof.inventory.base import NAME, EntryProblem, Path_, _Model
from opsproof.inventory.chaos_targets import ChaosTargets
from opsproof.inventory.entries import (
    KINDS,
    Alertmanager,
    Backups,
    HttpService,
    Kind,
    Kubernetes,
    Logs,
    Postgres,
    Prometheus,
    Redis,
    Slo,
    TcpPort,
    TlsEndpoint,
)
from opsproof.inventory.load import LoadScenario
from opsproof.util.durations import parse_duration as parse_duration  # the one duration grammar


class Tolerances(_Model):
    """How far a value may move between a maintenance baseline and after the window (``tolerances:``)."""

    error_ratio: float = Field(0.005, ge=0, le=1)  # absolute, and the increase must also be significant
    p95_factor: float = Field(1.5, ge=1)  # p95 after ≤ factor × p95 before, judged at bucket resolution
    significance: float = Field(0.01, gt=0, lt=1)  # p-value under which an increase is not chance
    redis_memory: float = Field(0.10, ge=0, le=1)  # absolute share of maxmemory
    replication_lag_s: float = Field(5.0, ge=0)
    backup_age_h: float = Field(24.0, ge=0)
    rows_lost: int = Field(0, ge=0)  # rows a counted table may lose


class Inventory(_Model):
    """One environment."""

    environment: str = Field(pattern=NAME)
    production: bool = False
    http: dict[str, HttpService] = Field(default_factory=dict)
    tls: dict[str, TlsEndpoint] = Field(default_factory=dict)
    postgres: dict[str, Postgres] = Field(default_factory=dict)
    redis: dict[str, Redis] = Field(default_factory=dict)
    prometheus: dict[str, Prometheus] = Field(default_factory=dict)
    alertmanager: dict[str, Alertmanager] = Field(default_factory=dict)
    kubernetes: dict[str, Kubernetes] = Field(default_factory=dict)
    slo: dict[str, Slo] = Field(default_factory=dict)
    backups: dict[str, Backups] = Field(default_factory=dict)
    logs: dict[str, Logs] = Field(default_factory=dict)  # error lines in log files over a window
    tcp: dict[str, TcpPort] = Field(default_factory=dict)  # ports that must accept a connection
    tolerances: Tolerances = Field(default_factory=Tolerances)
    load: dict[str, LoadScenario] = Field(default_factory=dict)  # Locust scenarios (not targets: no checks)
    chaos: ChaosTargets = Field(default_factory=ChaosTargets)  # containers and processes faults act on

    _source: str = PrivateAttr(default="<inventory>")
    _secrets: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("http", "tls", "postgres", "redis", "prometheus", "alertmanager", "kubernetes", "slo", "backups",
                     "logs", "load", "tcp")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.match(NAME, name):
                raise ValueError(f"entry name {name!r} must be letters, digits, '_', '.', '-' (≤ 63)")
        return v

    @model_validator(mode="after")
    def _references(self) -> Inventory:
        for kind in KINDS:
            for name, entry in self.targets(kind).items():
                for i, ref in enumerate(entry.depends_on):
                    dep_kind, _, dep_name = ref.partition(".")
                    if dep_kind not in KINDS or dep_name not in getattr(self, dep_kind):
                        raise EntryProblem((kind, name, "depends_on", i), f"{ref!r} is not an entry of this "
                                           "inventory. Fix: name an existing entry as kind.name, e.g. postgres.main")
            if kind == "backups":
                for name, backup in self.backups.items():
                    ref = backup.datastore
                    if ref is not None and ref[1] not in self.targets(ref[0]):  # type: ignore[arg-type]
                        raise ValueError(f"backups.{name}.{ref[0]}: no {ref[0]} entry named {ref[1]!r}")
            if kind == "slo":
                for name, slo in self.slo.items():
                    if slo.prometheus not in self.prometheus:
                        raise ValueError(f"slo.{name}.prometheus: no prometheus entry named {slo.prometheus!r}")
                    slo._source = self.prometheus[slo.prometheus]
                for pname, prom in self.prometheus.items():
                    prom._slo_deploys = tuple((n, s.deployed_at) for n, s in self.slo.items() if s.prometheus == pname)
        for name, scenario in self.load.items():
            if scenario.service not in self.http:
                known = ", ".join(self.http) or "(none: add an http entry)"
                raise EntryProblem(("load", name, "service"), f"{scenario.service!r} is not an http entry of this "
                                   f"inventory. Fix: name one of: {known}")
        _no_cycle(self)
        return self

    @property
    def source(self) -> str:
        return self._source

    @property
    def secrets(self) -> frozenset[str]:
        return self._secrets

    def targets(self, kind: Kind) -> dict[str, Any]:
        entries: dict[str, Any] = getattr(self, kind)
        return entries

    def count(self) -> int:
        return sum(len(self.targets(k)) for k in KINDS)


# --- dependencies ----------------------------------------------------------------------------------------

Edge = tuple[str, str, Path_]  # (kind.name, kind.name it needs up first, the key that says so)


def needs(inv: Inventory) -> dict[str, list[Edge]]:
    """Every entry's dependencies: its ``depends_on``, and for an SLO the Prometheus it is read from."""
    graph: dict[str, list[Edge]] = {}
    for kind in KINDS:
        for name, entry in inv.targets(kind).items():
            node = f"{kind}.{name}"
            graph[node] = [(node, ref, (kind, name, "depends_on", i)) for i, ref in enumerate(entry.depends_on)]
            if kind == "slo":
                graph[node].append((node, f"prometheus.{entry.prometheus}", (kind, name, "prometheus")))
    return graph


def find_cycle(graph: Mapping[str, Sequence[Edge]]) -> list[Edge] | None:
    """A cycle of ``graph`` as its edges, starting at the entry that comes first in it; None when it has none.
    (Depth-first, without recursion: an inventory may have thousands of entries.)"""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        trail: list[Edge] = []  # the edges of the current path
        on_path = {start: 0}  # entry -> where its outgoing edges start in trail
        stack = [(start, iter(graph[start]))]
        while stack:
            node, edges = stack[-1]
            edge = next(edges, None)
            if edge is None:
                stack.pop()
                done.add(node)
                del on_path[node]
                if trail:
                    trail.pop()
                continue
            if edge[1] in on_path:
                cycle = [*trail[on_path[edge[1]]:], edge]
                order = {node: i for i, node in enumerate(graph)}
                first = min(range(len(cycle)), key=lambda i: order[cycle[i][0]])
                return cycle[first:] + cycle[:first]
            if edge[1] not in done and edge[1] in graph:
                trail.append(edge)
                on_path[edge[1]] = len(trail)
                stack.append((edge[1], iter(graph[edge[1]])))
    return None


def _no_cycle(inv: Inventory) -> None:
    cycle = find_cycle(needs(inv))
    if cycle is None:
        return
    node, ref, key = cycle[0]
    if len(cycle) == 1:
        raise EntryProblem(key, f"{node} depends on itself. Fix: remove {ref} from its depends_on (an entry's own "
                                "checks are already blocked by its reachability check)")
    spelled = " → ".join([node, *(f"{to} (its prometheus:)" if k[-1] == "prometheus" else to for _, to, k in cycle)])
    raise EntryProblem(key, f"depends_on goes round in a cycle: {spelled}. Fix: remove the item that is not a "
                            "real need — following depends_on must never lead back to where it started (with all "
                            "of them down, each would be blocked by the next and none would fail)")


# --- loading -------------------------------------------------------------------------------------------
