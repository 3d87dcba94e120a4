"""The Locust user of a generated locustfile: one FastHttpUser class whose weighted tasks are the scenario's
requests. Imported by Locust only (``import locust`` monkey-patches the process with gevent).

Closed model (the default, as in Locust): each user makes its requests one after another, ``think_time`` apart.
Open model (``arrival_rate``): the process's users share one ``arrivals.Schedule``; a free user takes the next
slot, sleeps until it is due, and sends a request chosen by weight, its due time in the request's context."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent
from locust import FastHttpUser, constant, task

from opsproof.load import arrivals

SCHEDULE: dict[str, arrivals.Schedule] = {}  # this process's, once an open-model user started
_users_here: dict[str, int] = {"n": 0}


def _kwargs(request: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"name": request["name"], "headers": {**headers, **request["headers"]}}
    body = request["body"]
    if isinstance(body, dict | list):
        kwargs["json"] = body
    elif body is not None:
        kwargs["data"] = body
    return kwargs


def _task(request: Mapping[str, Any], headers: Mapping[str, str]) -> Callable[[FastHttpUser], None]:
    kwargs = _kwargs(request, headers)
    method, path = request["method"], request["path"]

    def run(user: FastHttpUser) -> None:
        user.client.request(method, path, **kwargs)

    run.__name__ = f"request_{request['name']}"
    return run


def _attrs(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"host": spec["host"], "network_timeout": spec["timeout_s"], "connection_timeout": spec["timeout_s"],
            "__module__": __name__}


def user_class(spec: Mapping[str, Any]) -> type[FastHttpUser]:
    """The user class for one scenario ``spec`` (as ``runner.spec`` writes it)."""
    name = f"Scenario_{spec['scenario']}".replace("-", "_").replace(".", "_")
    if spec.get("arrival_rate"):
        return _open_class(name, spec)
    tasks = {_task(r, spec["headers"]): r["weight"] for r in spec["requests"] if r["weight"] > 0}
    attrs = {"tasks": tasks, "wait_time": constant(spec["think_time"]), **_attrs(spec)}
    return type(name, (FastHttpUser,), attrs)


def _open_class(name: str, spec: Mapping[str, Any]) -> type[FastHttpUser]:
    chosen = [r for r in spec["requests"] if r["weight"] > 0]
    calls = [(r["method"], r["path"], _kwargs(r, spec["headers"])) for r in chosen]
    weights = [r["weight"] for r in chosen]
    rate, users = float(spec["arrival_rate"]), int(spec["users"])

    def on_start(user: FastHttpUser) -> None:
        _users_here["n"] += 1
        share = arrivals.share(rate, _users_here["n"], users)
        if "s" in SCHEDULE:
            SCHEDULE["s"].set_rate(share)
        else:
            SCHEDULE["s"] = arrivals.Schedule(share)

    def on_stop(user: FastHttpUser) -> None:
        _users_here["n"] = max(_users_here["n"] - 1, 0)

    @task
    def send(user: FastHttpUser) -> None:
        due = SCHEDULE["s"].take()
        wait = due - time.time()
        if wait > 0:
            gevent.sleep(wait)
        method, path, kwargs = random.choices(calls, weights)[0]
        user.client.request(method, path, context={arrivals.INTENDED: due}, **kwargs)

    attrs = {"tasks": [send], "wait_time": constant(0), "on_start": on_start, "on_stop": on_stop, **_attrs(spec)}
    return type(name, (FastHttpUser,), attrs)
