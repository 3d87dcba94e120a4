"""The inventory: one YAML file describes one environment; every suite is driven by it.

The inventory describes, it does not act: nothing here talks to a target. ``load()`` validates the whole
file before any test is collected and raises a single :class:`InventoryError` naming the file, the line,
the key and the fix — never a traceback. ``${VAR}`` (or ``${VAR:-default}``) is replaced from the
environment; the values of secrets (passwords in URLs and DSNs, interpolated variables whose name looks
secret, headers such as Authorization) are collected so that every output can mask them.
"""

from opsproof.inventory.addresses import url_secrets
from opsproof.inventory.base import (
    INTERPOLATION,
    NAME,
    SECRET_HEADER,
    SECRET_VAR,
    EntryProblem,
    InventoryError,
    Path_,
    _Model,
    parse_instant,
)
from opsproof.inventory.entries import (
    KINDS,
    Alertmanager,
    Backups,
    Deployment,
    Duration,
    Hpa,
    HttpService,
    IgnoredAlert,
    Instant,
    Kind,
    Kubernetes,
    Logs,
    Postgres,
    Prometheus,
    Redis,
    Replica,
    Retry,
    Scratch,
    Slo,
    TlsEndpoint,
    _Entry,
    address_of,
    human_duration,
)
from opsproof.inventory.k8s_config import HpaBehavior, ScalingPolicy, ScalingRules, VolumeClaim
from opsproof.inventory.k8s_kinds import BarePod, BlueGreen, CronJob, Resources, ScaledObject, Workload, quantity
from opsproof.inventory.loader import (
    _LOADER,
    FIXES,
    MAX_DEPTH,
    RENAMED,
    _collect_secrets,
    _describe,
    _field_description,
    _format_loc,
    _interpolate,
    _known_keys,
    _line,
    _line_map,
    _model_at,
    _parse,
    _shown,
    _substitute,
    load,
    loads,
)
from opsproof.inventory.model import Edge, Inventory, Tolerances, _no_cycle, find_cycle, needs
from opsproof.inventory.queries import PgQuery, PromQuery
from opsproof.util.documents import scalar_key as _scalar_key
from opsproof.util.durations import parse_duration

__all__ = [
    "FIXES",
    "INTERPOLATION",
    "KINDS",
    "MAX_DEPTH",
    "NAME",
    "RENAMED",
    "SECRET_HEADER",
    "SECRET_VAR",
    "_LOADER",
    "Alertmanager",
    "Backups",
    "Deployment",
    "Duration",
    "Edge",
    "EntryProblem",
    "Hpa",
    "HttpService",
    "IgnoredAlert",
    "Instant",
    "Inventory",
    "InventoryError",
    "Kind",
    "Kubernetes",
    "Logs",
    "Path_",
    "PgQuery",
    "Postgres",
    "PromQuery",
    "Prometheus",
    "Redis",
    "Replica",
    "Retry",
    "Scratch",
    "Slo",
    "TlsEndpoint",
    "Tolerances",
    "_Entry",
    "_Model",
    "_collect_secrets",
    "_describe",
    "_field_description",
    "_format_loc",
    "_interpolate",
    "_known_keys",
    "_line",
    "_line_map",
    "_model_at",
    "_no_cycle",
    "_parse",
    "_scalar_key",
    "_shown",
    "_substitute",
    "address_of",
    "find_cycle",
    "human_duration",
    "load",
    "loads",
    "needs",
    "parse_duration",
    "parse_instant",
    "url_secrets",
]

__all__ += ["BarePod", "BlueGreen", "CronJob", "Resources", "ScaledObject", "Workload", "quantity"]
__all__ += ["HpaBehavior", "ScalingPolicy", "ScalingRules", "VolumeClaim"]
