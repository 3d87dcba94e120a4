"""The Locust user of a generated locustfile: one FastHttpUser class whose weighted tasks are the scenario's
requests. Imported by Locust only (``import locust`` monkey-patches the process with gevent)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from locust import FastHttpUser, constant


def _task(request: Mapping[str, Any], headers: Mapping[str, str]) -> Callable[[FastHttpUser], None]:
    kwargs: dict[str, Any] = {"name": request["name"], "headers": {**headers, **request["headers"]}}
    body = request["body"]
    if isinstance(body, dict | list):
        kwargs["json"] = body
    elif body is not None:
        kwargs["data"] = body
    method, path = request["method"], request["path"]

    def run(user: FastHttpUser) -> None:
        user.client.request(method, path, **kwargs)

    run.__name__ = f"request_{request['name']}"
    return run


def user_class(spec: Mapping[str, Any]) -> type[FastHttpUser]:
    """The user class for one scenario ``spec`` (as ``runner.spec`` writes it)."""
    tasks = {_task(r, spec["headers"]): r["weight"] for r in spec["requests"] if r["weight"] > 0}
    attrs = {"tasks": tasks, "wait_time": constant(spec["think_time"]), "host": spec["host"],
             "network_timeout": spec["timeout_s"], "connection_timeout": spec["timeout_s"],
             "__module__": __name__}
    return type(f"Scenario_{spec['scenario']}".replace("-", "_").replace(".", "_"), (FastHttpUser,), attrs)
