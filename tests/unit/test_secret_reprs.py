"""Secret-free by construction: the repr of a target, of an inventory entry and of the inventory — what pytest shows
for a parameter (``--setup-show``, ``-l``), what Allure writes as a test's parameters — and the clients' log records,
whatever logger (httpcore.connection, psycopg.pool …) and whatever handler they reach."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from _pytest._io.saferepr import saferepr
from allure_commons.utils import represent

from opsproof.inventory import KINDS, Inventory, loads
from opsproof.probes import Target
from opsproof.redact import mask_client_logs

PW, TOKEN = "Pw_c4n4ry", "Tk_c4n"  # short: pytest's 42-character saferepr keeps a repr's last 20 characters
INVENTORY = f"""
environment: canary
http:
  web: {{url: "https://u:{PW}@web.example:8443", health: "/health?token={TOKEN}", ready: "/ready?k={TOKEN}",
         headers: {{Authorization: "Bearer {TOKEN}", X-Custom: "{TOKEN}"}}}}
postgres:
  main:
    dsn: "postgresql://app:{PW}@db:5432/app?sslmode=require"
    count_dsn: "host=db dbname=app user=backup password={PW}"
    replicas: {{r1: {{dsn: "postgresql://app:{PW}@db2/app"}}}}
redis:
  cache: {{url: "redis://:{PW}@cache:6379/0"}}
prometheus:
  main: {{url: "http://u:{PW}@prom:9090", headers: {{Authorization: "Bearer {TOKEN}"}}}}
alertmanager:
  main: {{url: "http://am:9093/?token={TOKEN}", headers: {{X-Token: "{TOKEN}"}}}}
backups:
  db: {{postgres: main, directory: /var/backups, dsn: "postgresql://b:{PW}@db/app",
        scratch: {{dsn: "postgresql://s:{PW}@scratch/postgres"}}}}
"""


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return loads(INVENTORY)


def targets(inventory: Inventory) -> Iterator[Target[Any]]:
    for kind in KINDS:
        for name, cfg in inventory.targets(kind).items():
            yield Target(kind, name, cfg)


def test_the_canaries_are_in_the_configuration(inventory: Inventory) -> None:
    """What the probes are given is the real thing: the reprs below hide what is there."""
    dumped = json.dumps(inventory.model_dump(mode="json"))
    assert (dumped.count(PW), dumped.count(TOKEN)) == (8, 7)


def test_a_target_shows_its_id_only(inventory: Inventory) -> None:
    for target in targets(inventory):
        assert repr(target) == f"Target({target.id})"


@pytest.mark.parametrize("show", [repr, str, saferepr, lambda v: saferepr(v, maxsize=42), represent],
                         ids=["repr", "str", "saferepr (-l)", "saferepr 42 (--setup-show)", "allure parameter"])
def test_no_repr_shows_a_secret(inventory: Inventory, show: Any) -> None:
    shown = [show(t) for t in targets(inventory)] + [show(t.config) for t in targets(inventory)] + [show(inventory)]
    assert [s for s in shown if PW in s or TOKEN in s] == []


def test_an_entry_repr_keeps_what_is_not_secret(inventory: Inventory) -> None:
    text = repr(inventory.postgres["main"])
    assert "dsn='postgresql://app:***@db:5432/app?sslmode=***'" in text
    assert "count_dsn='host=db dbname=app user=backup password=***'" in text
    assert "headers={'Authorization': '***', 'X-Custom': '***'}" in repr(inventory.http["web"])
    assert "health='/health?token=***'" in repr(inventory.http["web"])


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.parametrize("logger", ["httpx", "httpcore.connection", "httpcore.http11", "psycopg", "psycopg.pool",
                                    "redis.connection"])
def test_client_logs_are_masked_for_every_handler(logger: str, caplog: pytest.LogCaptureFixture) -> None:
    """A child logger's record, seen by a handler on the root (pytest's log_cli and --log-file) and by caplog (the
    report sections): masked before either sees it, the exception text included."""
    mask_client_logs({"known-secret-42"})
    kept = _Kept()
    logging.getLogger().addHandler(kept)
    try:
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger=logger):
            log = logging.getLogger(logger)
            log.info('HTTP Request: GET %s "HTTP/1.1 200 OK"', f"http://u:{PW}@h/health?token={TOKEN}")
            log.debug("headers %s", {"Authorization": "Bearer known-secret-42"})
            try:
                raise ValueError(f"connect postgresql://app:{PW}@db/app")
            except ValueError:
                log.exception("failed")
    finally:
        logging.getLogger().removeHandler(kept)
    seen = "\n".join(kept.lines) + caplog.text
    assert [c for c in (PW, TOKEN, "known-secret-42") if c in seen] == []
    assert "http://u:***@h/health?token=***" in seen
    assert "ValueError: connect postgresql://app:***@db/app" in seen


def test_other_loggers_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    mask_client_logs()
    with caplog.at_level(logging.INFO):
        logging.getLogger("myapp").info("token=%s", "shown-as-is")
    assert caplog.records[-1].getMessage() == "token=shown-as-is"
