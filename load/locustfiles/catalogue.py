"""An example of a locustfile of your own, for the sandbox app (``locustfile: load/locustfiles/catalogue.py``).

opsproof gives Locust ``--host`` (the scenario's ``service:``) and loads its plugin beside this file; thresholds
refer to the request names given here (``request_thresholds: {item: ["p(99) < 500ms"]}``)."""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task


class CatalogueUser(FastHttpUser):
    wait_time = between(0.01, 0.05)

    @task(4)
    def item(self) -> None:
        self.client.get(f"/items/{random.randint(1, 200)}", name="item")

    @task(1)
    def listing(self) -> None:
        self.client.get("/items", name="list")
