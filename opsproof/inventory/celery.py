"""Celery apps whose broker is a Redis entry (``redis.<name>.celery.<app>``), each app its checks
(``celery.ping``, ``celery.queues``, ``celery.depth``): its workers answer `celery inspect ping`, every queue the
runbook names is consumed by a worker (`celery inspect active_queues`), and each listed queue's depth, sampled
over a window, stays under its ceiling. The broker is the entry's ``url`` (its database index included)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from opsproof.inventory.queries import _Query
from opsproof.util.durations import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class CeleryApp(_Query):
    """A Celery app on this Redis broker. ``workers``: the node names that must answer ping (``celery@worker-1``;
    a ``*`` matches any text); else at least ``min_workers`` must. ``queues``: each consumed by ≥ 1 worker.
    ``depth``: queue → ceiling of its length, its LLEN sampled ``samples`` times over ``window``; the queue fails
    when it ends the window above its ceiling, or went above it in a window it grew over (a backlog building)."""

    workers: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, description="[celery@worker-1]")
    min_workers: int = Field(1, ge=0)
    queues: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, description="[celery, emails]")
    depth: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict, description="{celery: 100}")
    window: Annotated[Seconds, Field(gt=0, le=600)] = Field(10.0, description="10s")
    samples: int = Field(5, ge=2, le=120)
    reply_timeout: Annotated[Seconds, Field(gt=0, le=60)] = Field(
        2.0, description="2s (how long `inspect` waits for the workers' replies)")

    @model_validator(mode="after")
    def _possible(self) -> CeleryApp:
        if self.workers and self.min_workers > len(self.workers):
            raise ValueError(f"min_workers {self.min_workers} is above the {len(self.workers)} workers listed. "
                             "Fix: list every worker, or drop min_workers (the listed workers must all answer)")
        return self

    @property
    def timeout_s(self) -> float:
        """Each check's deadline: the entry's (connecting), the replies' wait, and the depth's window."""
        return float(self.entry.timeout_s) + self.reply_timeout + self.window

    @property
    def url(self) -> str:
        """The broker: the Redis entry's URL."""
        return str(self.entry.url)
