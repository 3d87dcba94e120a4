"""opsproof's Locust plugin, loaded beside the locustfile (``locust -f LOCUSTFILE,THIS_FILE``).

Every response time goes into an HdrHistogram per request name (µs, exact — Locust's own percentiles are rounded
to two significant digits). On a worker (``--processes N``, or master/workers on many machines) the tallies since
the last report ride along in Locust's own worker report (``report_to_master``) and are merged on the master
(``worker_report``); the master — or the single local process — writes everything to ``$OPSPROOF_LOAD_RECORD``
when Locust quits, with each process' CPU use (average over the run, and Locust's own samples).

Beside them: per-second figures (``series``), the open model's schedule (requests due, late, never sent — each
request's latency counted from when it was due, carried in its request context), and the ``abort_on_fail``
thresholds, judged once a second on the master (or the local process) on everything measured so far; the first
clear breach after its grace period quits the run and is recorded (with workers, the master sees their figures
every 3 s, Locust's report interval, so an abort comes up to 3 s later than a local one).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from opsproof.load import abort, arrivals, users
from opsproof.load.histogram import Tally, merge, micros, total
from opsproof.load.series import Series

RECORD_ENV = "OPSPROOF_LOAD_RECORD"
MAX_ENV = "OPSPROOF_LOAD_MAX_REQUESTS"  # the run's hard bound on requests: the master (or local process) quits there
RAW_ENV = "OPSPROOF_LOAD_RAW"  # a folder: every sample also written there, RUN-PID.tsv per process (tests, bench)
_LIMIT = int(os.environ.get(MAX_ENV) or 0)  # read once: os.environ costs ≈ 1 µs a look, per request that counts
_RAW = os.environ.get(RAW_ENV)

_tallies: dict[str, Tally] = {}  # this process's, since its last report
_merged: dict[str, Tally] = {}  # the master's (or the local process'): everything reported so far
_clock: dict[str, float] = {}
_cpu: dict[str, Any] = {"samples": [], "start": 0.0}
_workers: dict[str, dict[str, float]] = {}
_raw: list[str] = []  # "name\tµs" lines not yet written
_bound: dict[str, Any] = {"env": None, "count": 0, "hit": False}
_series = Series()  # this process's since its last report (a worker), or everything (master, local)
_schedules: dict[str, dict[str, int]] = {}  # the open model: each worker's schedule, as last reported
_aborted: dict[str, Any] = {}


def _on_init(environment: Environment, **_: Any) -> None:
    _bound["env"] = environment  # Locust fires init once its runner exists
    _bound["counts"] = environment.runner is not None and not isinstance(environment.runner, WorkerRunner)


def _count(n: int) -> None:
    """Count requests toward the bound (local process: each one; master: each worker report's) and quit once."""
    _bound["count"] += n
    env = _bound["env"]
    if _LIMIT and not _bound["hit"] and _bound["count"] >= _LIMIT and env is not None and env.runner is not None:
        _bound["hit"] = True
        gevent.spawn(env.runner.quit)


def _flush_raw() -> None:
    folder = _RAW
    if folder and _raw:
        run = os.path.basename(os.environ.get(RECORD_ENV, "run")).removesuffix(".raw.json")
        with open(os.path.join(folder, f"{run}-{os.getpid()}.tsv"), "a") as f:
            f.writelines(_raw)
        _raw.clear()


def _on_request(name: str, response_time: float, exception: BaseException | None = None,
                context: dict[str, Any] | None = None, start_time: float | None = None, **_: Any) -> None:
    tally = _tallies.get(name)
    if tally is None:  # not setdefault(name, Tally()): a histogram is 10 MB of counters to allocate
        tally = _tallies[name] = Tally()
    ended = (start_time if start_time is not None else time.time() - response_time / 1000) + response_time / 1000
    due = context.get(arrivals.INTENDED) if context else None
    if due is not None:  # the open model: latency from when the request was due, not from when it left
        response_time = max((ended - due) * 1000, response_time)
    us, failed = micros(response_time), exception is not None
    tally.record_us(us, failed)
    _series.record(ended, us, failed)
    if _bound.get("counts"):  # a local run's own process (a master counts its workers' reports)
        _count(1)
    if _RAW:
        _raw.append(f"{name}\t{us}\n")


def _on_usage(cpu_usage: float, **_: Any) -> None:
    _cpu["samples"].append(cpu_usage)


def _cpu_seconds() -> float:
    times = os.times()  # this process only, not its children
    return times.user + times.system


def _on_start(environment: Environment | None = None, **_: Any) -> None:
    _clock.setdefault("start", time.time())
    _clock["mono"] = time.monotonic()
    _cpu["start"] = _cpu_seconds()
    rules = abort.decode(os.environ.get(abort.ENV))
    if rules and environment is not None and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_watch, environment, rules)


def _schedule() -> dict[str, int] | None:
    """The open model's schedule of the whole run so far: this process's, or the sum of the workers'."""
    here = users.SCHEDULE.get("s")
    parts = [here.report()] if here is not None else []
    parts += list(_schedules.values())
    if not parts:
        return None
    return {k: sum(p[k] for p in parts) for k in ("due", "late", "unsent")}


def _generating_cpu() -> float:
    """The CPU (%) of the busiest process generating load now: the workers' as reported, or this one's latest."""
    if _workers:
        return max(max(w["avg"], w["max_sample"]) for w in _workers.values())
    return _cpu["samples"][-1] if _cpu["samples"] else 0.0


def _watch(environment: Environment, rules: list[abort.Rule]) -> None:
    """Judge the abort_on_fail thresholds once a second; on the first clear breach, record it and quit."""
    while not _aborted and environment.runner is not None:
        gevent.sleep(abort.CHECK_EVERY_S)
        tallies: dict[str | None, Tally] = {n: t for n, t in (_merged or _tallies).items()}  # local: own; master
        if any(r.name is None for r in rules):
            tallies[None] = total(t for n, t in tallies.items() if n is not None)
        cpu = _generating_cpu()
        schedule = _schedule()
        elapsed = time.time() - _clock["start"]
        found = abort.first_breach(rules, tallies, elapsed, cpu,
                                   None if schedule is None else (schedule["due"], schedule["late"],
                                                                  schedule["unsent"]))
        if found is not None:
            _aborted.update(abort.record(*found, elapsed))
            environment.runner.quit()
            return


def _on_stopping(**_: Any) -> None:
    here = users.SCHEDULE.get("s")
    if here is not None and here.stopped is None:  # from now on users are stopped: no slot is theirs to send
        here.stopped = time.time()


def _on_stop(**_: Any) -> None:
    _clock["stop"] = time.time()
    _on_stopping()
    _cpu["avg"] = _average_cpu()


def _average_cpu() -> float:
    if "mono" not in _clock:
        return 0.0
    wall = time.monotonic() - _clock["mono"]
    return 100 * (_cpu_seconds() - _cpu["start"]) / wall if wall > 0 else 0.0


def _usage() -> dict[str, float]:
    return {"avg": round(_cpu.get("avg", _average_cpu()), 1), "max_sample": max(_cpu["samples"], default=0.0)}


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    here = users.SCHEDULE.get("s")
    if here is not None:
        for due in here.late_at:
            _series.late(due)
        here.late_at.clear()
    data["opsproof"] = {"tallies": {name: t.encode() for name, t in _tallies.items()}, "cpu": _usage(),
                        "series": _series.encode(), "schedule": here.report() if here is not None else None}
    _tallies.clear()
    _series.clear()
    _flush_raw()


def _add(tallies: dict[str, Tally]) -> None:
    for name, tally in tallies.items():
        if name in _merged:
            _merged[name].add(tally)
        else:
            _merged[name] = tally


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    part = data.get("opsproof")
    if not part:
        return
    reported = merge([part["tallies"]])
    _add(reported)
    _count(sum(t.requests for t in reported.values()))
    _workers[client_id] = part["cpu"]
    _series.merge(part.get("series") or {})
    if part.get("schedule"):
        _schedules[client_id] = part["schedule"]


def _on_quitting(environment: Environment, **_: Any) -> None:
    _flush_raw()
    path = os.environ.get(RECORD_ENV)
    if not path or isinstance(environment.runner, WorkerRunner):
        return
    _add(_tallies)  # the local runner's own
    _tallies.clear()
    stop = _clock.get("stop", time.time())
    here = users.SCHEDULE.get("s")
    if here is not None:
        for due in here.late_at:
            _series.late(due)
    start = _clock.get("start", stop)
    record = {
        "runner": "master" if isinstance(environment.runner, MasterRunner) else "local",
        "started": _clock.get("start"), "stopped": stop, "elapsed_s": stop - _clock.get("start", stop),
        "names": {name: tally.encode() for name, tally in sorted(_merged.items())},
        "cpu": {"this": _usage(), "workers": _workers},
        "stopped_by": "abort_on_fail" if _aborted else "max_requests" if _bound["hit"] else "duration",
        "aborted": _aborted or None, "schedule": _schedule(), "series": _series.rows(start, stop),
        "locust_cpu_warning": bool(getattr(environment.runner, "cpu_warning_emitted", False)
                                   or getattr(environment.runner, "worker_cpu_warning_emitted", False)),
    }
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


# registered by hand: Locust's EventHook.add_listener is untyped (and as a decorator it would untype the hook)
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.request.add_listener(_on_request)  # type: ignore[no-untyped-call]
events.usage_monitor.add_listener(_on_usage)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_start)  # type: ignore[no-untyped-call]
events.test_stopping.add_listener(_on_stopping)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_stop)  # type: ignore[no-untyped-call]
events.report_to_master.add_listener(_on_report_to_master)  # type: ignore[no-untyped-call]
events.worker_report.add_listener(_on_worker_report)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
