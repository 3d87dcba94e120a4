"""The inventory entries, one model per kind of target (http, tls, postgres, redis, …)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from opsproof.alert_severity import DEFAULT_SEVERITY_MAP, to_severity
from opsproof.inventory.addresses import CaFile, Dsn, HttpUrl, RedisUrl, Verify, url_secrets
from opsproof.inventory.backups import Backups as Backups  # re-exported: the backups entry
from opsproof.inventory.backups import Scratch as Scratch
from opsproof.inventory.base import Duration as Duration  # re-exported
from opsproof.inventory.base import Retry as Retry
from opsproof.inventory.base import _Entry as _Entry  # re-exported
from opsproof.inventory.base import _Model, parse_instant
from opsproof.inventory.base import human_duration as human_duration
from opsproof.inventory.celery import CeleryApp
from opsproof.inventory.k8s_config import HpaBehavior, KubernetesConfig
from opsproof.inventory.k8s_kinds import KubernetesKinds, Quantity
from opsproof.inventory.logs import Logs as Logs  # re-exported: the logs entry
from opsproof.inventory.queries import PgQuery, PromQuery, QueryName, Unit, _Query, bind, duration_unit
from opsproof.inventory.redis_checks import RedisClients, RedisLatency, RedisPersistence, Sentinel
from opsproof.inventory.rules import AlertRule
from opsproof.inventory.wal import WalArchiving
from opsproof.redact import Redactor
from opsproof.result import Severity
from opsproof.util.durations import parse_duration as parse_duration  # the one duration grammar


class HttpService(_Entry):
    """An HTTP service: `curl -f $URL/health`."""

    url: HttpUrl = Field(pattern=r"^https?://[^\s/]+", description="https://api.example.com")
    health: str = Field("/health", pattern=r"^/", description="/health")
    ready: str | None = Field("/ready", pattern=r"^/", description="/ready")
    expect_status: int = Field(200, ge=100, le=599)
    expect_json: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    latency_budget_ms: float = Field(1000, gt=0)
    timeout_s: float = Field(5, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: Verify = True  # or a path to a CA bundle
    max_answer_bytes: int = Field(1 << 20, ge=1024, le=1 << 30)  # a larger answer fails: "answer larger than 1 MiB"


class TlsEndpoint(_Entry):
    """A TLS endpoint: `openssl s_client -connect HOST:PORT | openssl x509 -noout -enddate`."""

    host: str = Field(min_length=1)
    port: int = Field(443, ge=1, le=65535)
    server_name: str | None = None  # the name the certificate must match; defaults to host
    min_days: int = Field(14, ge=0)
    ca_file: CaFile | None = None  # trust this CA bundle instead of the system store
    timeout_s: float = Field(5, gt=0, le=300)


class TcpPort(_Entry):
    """A port that must accept connections: `nc -z HOST PORT` (a service the runbook gives only a port for)."""

    host: str = Field(min_length=1, description="jaeger")
    port: int = Field(ge=1, le=65535, description="14268")
    timeout_s: float = Field(5, gt=0, le=300)


class Replica(_Model):
    dsn: Dsn = Field(min_length=1)
    max_lag_s: float = Field(30, ge=0)


class Postgres(_Entry):
    """A PostgreSQL server: `pg_isready`, `SELECT count(*) FROM pg_stat_activity`, …"""

    dsn: Dsn = Field(min_length=1, description="postgresql://user:${PGPASSWORD}@host:5432/db")
    max_connection_ratio: float = Field(0.8, gt=0, le=1)
    max_query_s: float = Field(300, gt=0)
    min_cache_hit_ratio: float = Field(0.9, ge=0, le=1)
    rls_tables: list[str] = Field(default_factory=list)
    count_tables: list[str] = Field(default_factory=list)  # row counts captured in baselines
    # a role that bypasses row-level security (BYPASSRLS, as a backup role has), for the row counts only: counted
    # as `dsn`'s role, a table under RLS shows what its policies let that role see — then the count is no data
    count_dsn: Dsn | None = Field(None, min_length=1, description="postgresql://backup_ro:${PGPASSWORD}@db:5432/app")
    extensions: list[str] = Field(default_factory=list)
    replicas: dict[str, Replica] = Field(default_factory=dict)
    connect_timeout_s: float = Field(5, gt=0, le=300)
    # each check's total deadline, connection and queries included (default: connect_timeout_s); a session that
    # gives no answer by then has its socket shut: "no answer within N s"
    timeout_s: float | None = Field(None, gt=0, le=300)
    queries: dict[QueryName, PgQuery] = Field(default_factory=dict)  # read-only SQL assertions (postgres.query)
    archiving: WalArchiving | None = None  # pg_stat_archiver against the RPO (postgres.wal_archiving)

    @model_validator(mode="after")
    def _deadline(self) -> Postgres:
        if self.timeout_s is None:
            object.__setattr__(self, "timeout_s", self.connect_timeout_s)  # frozen: set once, while validating
        bind(self, dict(self.queries))
        return self


class Redis(_Entry):
    """A Redis server: `redis-cli ping`, `redis-cli info memory`, `redis-cli llen QUEUE`."""

    url: RedisUrl = Field(pattern=r"^(redis|rediss|unix)://", description="redis://:${REDIS_PASSWORD}@host:6379/0")
    max_memory_ratio: float = Field(0.9, gt=0, le=1)
    eviction_policy: str | None = None
    min_hit_rate: float | None = Field(None, ge=0, le=1)
    min_lookups: int = Field(100, ge=0)  # below this many keyspace lookups the hit rate is "no data"
    queues: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)  # list name -> ceiling for LLEN
    timeout_s: float = Field(5, gt=0, le=300)
    clients: RedisClients | None = None  # opsproof.inventory.redis_checks: info clients, PING round trips,
    latency: RedisLatency | None = None  # config get save/appendonly/appendfsync + info persistence, Sentinel
    persistence: RedisPersistence | None = None
    sentinel: Sentinel | None = None
    celery: dict[QueryName, CeleryApp] = Field(default_factory=dict)  # Celery apps on this broker (celery.*)

    @model_validator(mode="after")
    def _bind(self) -> Redis:
        bind(self, dict(self.celery))
        return self


def _instant(v: str) -> str:
    try:
        parse_instant(v, 0.0)
    except ValueError:
        raise ValueError("not a time: write 2026-11-27T10:00:00Z or -15m") from None
    return v


# when the change landed: ISO 8601 (2026-11-27T10:00:00Z) or relative (-15m); usually "${DEPLOYED_AT}"
def _iso(v: Any) -> Any:
    """YAML reads an unquoted 2026-11-27T10:00:00Z as a datetime: the ISO text it was."""
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).isoformat()
    return v


Instant = Annotated[str, BeforeValidator(_iso), AfterValidator(_instant),
                    Field(pattern=r"^(-\d+(\.\d+)?[smh]|\d{4}-\d\d-\d\dT.+)$", description="-15m")]


class IgnoredAlert(_Model):
    """One accepted noisy alert (``ignore_alerts:``): not judged by the alert checks, but listed in their
    observation and evidence. ``alertname`` and each of ``labels`` are matched exactly, or as a glob (``Noisy*``);
    every label given must match. Past ``until`` (a date, inclusive) the ignore no longer applies."""

    alertname: str = Field(min_length=1, description="NoisyAlert")
    labels: dict[str, str] = Field(default_factory=dict, description="{instance: db-3:9187}")
    reason: str = Field(min_length=1, description="flaps on backup nights, ticket OPS-123")
    until: dt.date | None = Field(None, description="2027-01-31")


class Prometheus(_Entry):
    """A Prometheus server: `curl $PROM/api/v1/targets`, `/api/v1/rules`, `/api/v1/alerts`."""

    url: HttpUrl = Field(pattern=r"^https?://[^\s/]+", description="http://prometheus:9090")
    jobs_up: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    # the alert rules' own severity labels → opsproof's, over the default (warning/error → high, info → low, page →
    # critical); declared before the threshold so that `no_alerts_at_or_above: warning` can use it
    severity_map: dict[str, Severity] = Field(default_factory=dict)
    no_alerts_at_or_above: Severity | None = Severity.CRITICAL
    ignore_alerts: list[IgnoredAlert] = Field(default_factory=list)
    # the deploy "no new alert since the deploy" is judged from; without it, the earliest deployed_at of the slo
    # entries read from this Prometheus (see deploy_time)
    deployed_at: Instant | None = None
    timeout_s: float = Field(5, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)
    # /api/v1/targets is ~1.5 KiB per active target: 16 MiB holds a fleet of ~10,000; raise it for a larger one
    max_answer_bytes: int = Field(16 << 20, ge=1024, le=1 << 30)
    queries: dict[QueryName, PromQuery] = Field(default_factory=dict)  # named PromQL thresholds (prometheus.query)
    alert_rules: dict[QueryName, AlertRule] = Field(default_factory=dict)  # rules with their content (rule_content)
    # how long the TSDB keeps samples at least (storage.tsdb.retention.time, from /api/v1/status/flags)
    min_retention: Duration | None = Field(None, description="30d")

    _slo_deploys: tuple[tuple[str, str], ...] = PrivateAttr(default=())  # (slo entry, deployed_at), when bound

    def deploy_time(self, now: float) -> tuple[float, str] | None:
        """(Unix time of the deploy, where it is written) — this entry's ``deployed_at``, else the earliest of its
        slo entries'; None when neither says."""
        written = [("deployed_at", self.deployed_at)] if self.deployed_at else [
            (f"slo.{name}.deployed_at", at) for name, at in self._slo_deploys]
        return min(((parse_instant(at, now), key) for key, at in written), default=None)

    @model_validator(mode="after")
    def _bind(self) -> Prometheus:
        bind(self, dict(self.queries))
        bind(self, dict(self.alert_rules))
        return self

    @field_validator("severity_map", mode="before")
    @classmethod
    def _lower_keys(cls, v: Any) -> Any:
        return {str(k).lower(): val for k, val in v.items()} if isinstance(v, dict) else v

    @field_validator("no_alerts_at_or_above", mode="before")
    @classmethod
    def _mapped_threshold(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None or isinstance(v, Severity):
            return v
        level = to_severity(v, info.data.get("severity_map"))
        if level is None:
            raise ValueError(f"unknown severity {v!r}: write one of {', '.join(DEFAULT_SEVERITY_MAP)} "
                             "or add it to severity_map")
        return level


class Alertmanager(_Entry):
    """An Alertmanager: `amtool config show`, `/api/v2/status`, `/api/v2/receivers`."""

    url: HttpUrl = Field(pattern=r"^https?://[^\s/]+", description="http://alertmanager:9093")
    receivers: list[str] = Field(default_factory=list)
    timeout_s: float = Field(5, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)
    max_answer_bytes: int = Field(4 << 20, ge=1024, le=1 << 30)  # /api/v2/status carries the whole configuration


class Deployment(_Model):
    min_ready: int | None = Field(None, ge=0)  # default: the deployment's desired replicas
    max_restarts: int = Field(0, ge=0)  # container restarts since the rollout
    pending_grace_s: float = Field(120, ge=0)  # a pod may be Pending this long


class Hpa(_Model):
    min_replicas: int = Field(ge=0)  # the configuration the runbook states, e.g. 3–10
    max_replicas: int = Field(ge=1)
    allow_at_max: bool = False  # pinned at max is a finding unless allowed
    cpu_utilization: int | None = Field(None, ge=1, le=1000)  # spec.metrics resource cpu averageUtilization, e.g. 70
    memory_utilization: int | None = Field(None, ge=1, le=1000)  # … memory averageUtilization, e.g. 80
    pods_metrics: dict[str, Quantity] = Field(default_factory=dict)  # Pods metric: averageValue, {rps: "100"}
    behavior: HpaBehavior | None = None  # spec.behavior: scale-up/scale-down windows and policies

    @model_validator(mode="after")
    def _possible(self) -> Hpa:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}: no number "
                             "of replicas satisfies both. Fix: swap them, or correct the one that is wrong")
        return self


class Kubernetes(_Entry, KubernetesKinds, KubernetesConfig):  # beyond deployments: KubernetesKinds, …Config
    """A namespace: `kubectl rollout status`, `kubectl get pods`, `kubectl get hpa`, `kubectl get certificate`."""

    namespace: str = Field(min_length=1)
    context: str | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False
    deployments: dict[str, Deployment] = Field(default_factory=dict)
    hpa: dict[str, Hpa] = Field(default_factory=dict)
    certificates: list[str] = Field(default_factory=list)
    certificate_min_days: int = Field(14, ge=0)
    jobs: list[str] = Field(default_factory=list)
    ingresses: list[str] = Field(default_factory=list)
    max_warning_events: int = Field(0, ge=0)  # Warning events since the rollout
    timeout_s: float = Field(10, gt=0, le=300)


class Slo(_Entry):
    """A service level read from Prometheus over a window (e.g. since the rollout)."""

    prometheus: str = Field(min_length=1, description="the name of a prometheus entry, e.g. main")
    selector: str = Field('job="app"', description='job="api"')  # PromQL label matchers, without braces
    requests_metric: str = "http_requests_total"  # counter with a status-code label (see status_label)
    status_label: str = Field("status", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", description="code")  # its HTTP status
    duration_metric: str = "http_request_duration_seconds"  # histogram (…_bucket)
    duration_unit: Unit | None = None  # its unit; default from its name: …_ms / …_milliseconds, else seconds
    max_error_ratio: float = Field(0.01, ge=0, le=1)  # 5xx / all
    max_p95_ms: float = Field(500, gt=0)
    min_requests: int = Field(100, ge=0)  # fewer requests in the window is "no data", never a pass
    no_data: Literal["fail", "skip"] = "fail"
    max_regression: float = Field(1.5, ge=1)  # p95 after / before tolerated by the canary comparison
    significance: float = Field(0.01, gt=0, lt=1)  # p-value below which more errors after the deploy is a finding
    # The SLO window runs from the deploy to now; the canary compares it with the same length of time before it.
    deployed_at: Instant = "-10m"

    _source: Prometheus | None = PrivateAttr(default=None)

    @property
    def source(self) -> Prometheus:
        """The Prometheus entry this SLO is read from (resolved when the inventory is validated)."""
        if self._source is None:
            raise ValueError(f"slo entry not bound to a prometheus entry ({self.prometheus!r})")
        return self._source

    @property
    def timeout_s(self) -> float:
        """The deadline of each of its checks: that of the Prometheus it is read from."""
        return self.source.timeout_s

    @property
    def seconds_per_unit(self) -> float:
        """Seconds in one unit of the latency histogram's values and bucket bounds (``le``)."""
        return 0.001 if duration_unit(self.duration_metric, self.duration_unit) == "milliseconds" else 1.0

    def window(self, now: float) -> tuple[float, float]:
        """(start, end) of the window since the deploy, as Unix times."""
        return parse_instant(self.deployed_at, now), now



Kind = Literal["http", "tls", "postgres", "redis", "prometheus", "alertmanager", "kubernetes", "slo", "backups",
               "logs", "tcp"]
KINDS: tuple[Kind, ...] = ("http", "tls", "postgres", "redis", "prometheus", "alertmanager", "kubernetes", "slo",
                           "backups", "logs", "tcp")


def address_of(entry: _Entry | _Query) -> str:
    """Where an entry is reached, secrets masked (it is shown in findings): its URL or DSN, ``host:port``, its
    Kubernetes namespace, its SLO's Prometheus, its backup directory; a named query: its entry's."""
    if isinstance(entry, _Query):
        return address_of(entry.entry)
    if isinstance(entry, HttpService | Redis | Prometheus | Alertmanager | Postgres):
        where = entry.dsn if isinstance(entry, Postgres) else entry.url
        return Redactor(url_secrets(where))(where)
    if isinstance(entry, TlsEndpoint | TcpPort):
        return f"{entry.host}:{entry.port}"
    if isinstance(entry, Kubernetes):
        return f"namespace {entry.namespace}" + (f", context {entry.context}" if entry.context else "")
    if isinstance(entry, Slo):
        return f"prometheus {entry.prometheus}" + (f" at {address_of(entry._source)}" if entry._source else "")
    if isinstance(entry, Backups):
        if entry.directory is None and entry.s3 is not None:
            return entry.s3.where
        if entry.directory is None and entry.supabase is not None and not entry.fresh:
            return f"Supabase project {entry.supabase.project_ref} at {entry.supabase.api_url}"
        return entry.directory or f"a fresh backup of {entry.postgres or entry.redis}"
    if isinstance(entry, Logs):
        return entry.path
    return ""
