"""One module per resource kind. ``ALL`` lists every declared probe."""

import importlib
from collections.abc import Iterable

from opsproof.probes import (
    alertmanager,
    backups,
    celery,
    http,
    kubernetes,
    logs,
    objects,
    pg_archive,
    postgres,
    prometheus,
    promql,
    redis,
    redis_health,
    rule_content,
    sentinel,
    slo,
    sql,
    supabase,
    tcp,
    tls,
)
from opsproof.probes.base import ProbeSpec, Target, run
from opsproof.probes.connections import Connections

ALL: tuple[ProbeSpec, ...] = tuple(
    value
    for module in (http, tls, postgres, sql, pg_archive, redis, prometheus, promql, alertmanager, slo, kubernetes,
                   backups, redis_health, sentinel, rule_content, celery, objects, supabase, logs, tcp)
    for value in vars(module).values()
    if isinstance(value, ProbeSpec)
)

# Modules a kind's probes need imported while only the main thread runs, before any probe thread starts:
# `kubernetes` imports `requests`, whose import makes urllib3 warn that PySocks is missing, a warning requests then
# silences with a filter of its own. Imported first in a probe thread, a pytest warnings context the main thread
# enters meanwhile can put `error` back in front of that filter, and the client import fails (flakily, under
# filterwarnings = error). Imported only for a run with such checks: `requests` costs ~80 ms.
MAIN_THREAD_IMPORTS: dict[str, tuple[str, ...]] = {"kubernetes": ("requests",)}


def prepare(kinds: Iterable[str]) -> None:
    """Import, in the calling (main) thread, what the probes of ``kinds`` must not import first on a probe thread."""
    for kind in set(kinds):
        for module in MAIN_THREAD_IMPORTS.get(kind, ()):
            importlib.import_module(module)


__all__ = ["ALL", "MAIN_THREAD_IMPORTS", "Connections", "ProbeSpec", "Target", "prepare", "run"]
