"""Celery on a Redis broker: `celery -A app inspect ping`, `celery -A app inspect active_queues`, and
`redis-cli llen QUEUE` sampled over a window.

The control commands are Celery's own (``app.control.inspect(timeout=…)``), sent on the broker of the Redis entry:
first the broker itself is reached with the entry's bounded client (so a broker that is down or silent fails as
``redis.ping`` does, within the entry's ``timeout_s``), then each Celery call runs on a worker thread joined
within what is left of the check's deadline — a broker that stops answering mid-call never holds the check.
Celery is imported only here, when such a check runs: without it they fail and say how to install it.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from opsproof.inventory.celery import CeleryApp
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Finding, current, within
from opsproof.result import Severity

NOT_INSTALLED = "celery is not installed (pip install celery[redis])"
_IMPORT = threading.Lock()
T = TypeVar("T")


def _broker(target: Target[CeleryApp], conns: Connections) -> Any:
    """The entry's Redis client, the broker reached (PING) within the entry's own ``timeout_s``."""
    entry = target.entry
    client = conns.redis(entry.id, entry.config.url, entry.config.timeout_s)
    with within(entry.config.timeout_s) as deadline:
        try:
            client.ping()
        except Exception as exc:
            if deadline.ended_check() and not isinstance(exc, Finding):
                raise Finding(deadline.describe(), deadline.evidence()) from None
            raise
    return client


def _left(fallback: float) -> float:
    deadline = current()
    left = deadline.left() if deadline is not None else None
    return fallback if left is None else max(0.0, left)


def _bounded(call: Callable[[], T], seconds: float, what: str) -> T:
    """``call()`` on a daemon thread, waited for at most ``seconds``: Celery's calls have no deadline of ours."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the check's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"opsproof-celery-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Finding(f"no answer from the broker within {seconds:.1f} s ({what})", {"waiting_for": what})
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _inspect(target: Target[CeleryApp], conns: Connections, command: str,
             destination: list[str] | None = None) -> dict[str, Any] | None:
    """``celery inspect COMMAND``'s replies by worker (None: no worker replied), the broker reached first."""
    cfg = target.config
    _broker(target, conns)
    timeout = float(target.entry.config.timeout_s)
    return _bounded(lambda: control(cfg.url, command, cfg.reply_timeout, timeout, destination),
                    _left(cfg.reply_timeout + 2 * timeout), f"inspect {command}")


def control(url: str, command: str, reply_timeout: float, timeout: float,
            destination: list[str] | None = None) -> dict[str, Any] | None:
    """Celery's own ``app.control.inspect(timeout=reply_timeout).COMMAND()`` on the broker ``url``, its connection
    bounded by ``timeout`` and never retried (a seam: tests without a broker replace it). With ``destination``
    (worker names) only those are asked, and the wait ends as soon as each has replied."""
    with _IMPORT:  # celery's package replaces itself while imported: on two threads at once, one gets half of it
        try:
            import kombu.transport.redis  # noqa: F401  # the transport too, before any thread connects
            from celery import Celery
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] in ("celery", "kombu", "redis"):
                raise Finding(NOT_INSTALLED) from None
            raise
        app = Celery("opsproof", broker=url, set_as_current=False)
        app.conf.update(broker_connection_timeout=timeout, broker_connection_retry=False,
                        broker_connection_max_retries=0, broker_connection_retry_on_startup=False,
                        broker_transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                                  "max_retries": 0},
                        result_backend=None, worker_hijack_root_logger=False)
        inspector = app.control.inspect(timeout=reply_timeout, destination=destination,
                                        limit=len(destination) if destination else None)
    try:
        replies: dict[str, Any] | None = getattr(inspector, command)()
        return replies
    finally:
        app.close()


def ping_expected(cfg: CeleryApp) -> str:
    if cfg.workers:
        return f"workers answer ping: {', '.join(cfg.workers)}"
    return f"≥ {cfg.min_workers} worker{'s' if cfg.min_workers != 1 else ''} answer ping"


@probe("celery.ping", "redis", Severity.CRITICAL, "celery -A $APP inspect ping --timeout 2",
       applies=lambda cfg: isinstance(cfg, CeleryApp), expected=ping_expected, each=("celery", lambda cfg: cfg.celery))
def ping(target: Target[CeleryApp], conns: Connections) -> Outcome:
    """The app's workers answer ``inspect ping`` on its broker: the listed ones all, else at least ``min_workers``."""
    cfg = target.config
    exact = cfg.workers if cfg.workers and not any(set("*?[") & set(w) for w in cfg.workers) else None
    replies = _inspect(target, conns, "ping", exact) or {}  # named workers: done once each has answered
    answered = sorted(replies)
    evidence = {"answered": answered, "reply_timeout_s": cfg.reply_timeout}
    heard = f"{len(answered)} answered: {', '.join(answered)}" if answered else \
        f"no worker answered within {cfg.reply_timeout:g} s"
    if cfg.workers:
        missing = [w for w in cfg.workers if not fnmatch.filter(answered, w)]
        evidence["missing"] = missing
        if missing:
            return Outcome(False, f"no answer from {', '.join(missing)} ({heard})", evidence)
    if len(answered) < cfg.min_workers:
        return Outcome(False, heard, evidence)
    return Outcome(True, heard, evidence)


@probe("celery.queues", "redis", Severity.HIGH, "celery -A $APP inspect active_queues  # each queue has a consumer",
       applies=lambda cfg: isinstance(cfg, CeleryApp) and bool(cfg.queues),
       expected=lambda cfg: f"each consumed by ≥ 1 worker: {', '.join(cfg.queues)}",
       each=("celery", lambda cfg: cfg.celery))
def queues(target: Target[CeleryApp], conns: Connections) -> Outcome:
    """Every queue the runbook names is consumed by at least one worker (``inspect active_queues``)."""
    cfg = target.config
    replies = _inspect(target, conns, "active_queues") or {}
    consumers: dict[str, list[str]] = {}
    for worker, declared in sorted(replies.items()):
        for queue in declared or []:
            consumers.setdefault(str(queue.get("name")), []).append(worker)
    evidence = {"consumers": consumers, "workers": sorted(replies)}
    unconsumed = [q for q in cfg.queues if q not in consumers]
    consumed = "; ".join(f"{q} by {', '.join(consumers[q])}" for q in cfg.queues if q in consumers)
    if unconsumed:
        who = f"{len(replies)} worker(s) answered" if replies else \
            f"no worker answered within {cfg.reply_timeout:g} s"
        return Outcome(False, f"no worker consumes {', '.join(unconsumed)} ({who}"
                              + (f"; consumed: {consumed}" if consumed else "") + ")", evidence)
    return Outcome(True, consumed, evidence)


@probe("celery.depth", "redis", Severity.HIGH, "redis-cli llen $QUEUE  # sampled over a window, not once",
       applies=lambda cfg: isinstance(cfg, CeleryApp) and bool(cfg.depth),
       expected=lambda cfg: ", ".join(f"{q} ≤ {c}" for q, c in cfg.depth.items())
       + f" over {cfg.window:g} s (not above it at the end, nor above it while rising)",
       each=("celery", lambda cfg: cfg.celery))
def depth(target: Target[CeleryApp], conns: Connections) -> Outcome:
    """Each listed queue's length, sampled ``samples`` times over ``window``: it fails when it ends the window above
    its ceiling, or went above it in a window it grew over (last sample above the first) — a backlog building, not
    a burst that is draining."""
    cfg = target.config
    client = _broker(target, conns)
    series: dict[str, list[int]] = {q: [] for q in cfg.depth}
    start = time.monotonic()
    for i in range(cfg.samples):
        due = start + cfg.window * i / (cfg.samples - 1)
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # a sampling schedule, not a poll: each sample is judged
        for queue in cfg.depth:
            series[queue].append(int(client.llen(queue)))
    spent = time.monotonic() - start
    rows, bad = [], []
    for queue, ceiling in cfg.depth.items():
        values = series[queue]
        first, last, top = values[0], values[-1], max(values)
        trend = "rising" if last > first else "falling" if last < first else "flat"
        text = f"{queue} {' → '.join(map(str, values))} (max {top}, {trend})"
        rows.append(text)
        if last > ceiling or (top > ceiling and last > first):
            bad.append(f"{text}, ceiling {ceiling}")
    evidence = {"samples": series, "ceilings": dict(cfg.depth), "window_s": round(spent, 3)}
    over = f" over {spent:.1f} s"  # the window as sampled
    return Outcome(not bad, ("; ".join(bad) if bad else "; ".join(rows)) + over, evidence)
