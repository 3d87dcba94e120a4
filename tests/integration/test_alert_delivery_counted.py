"""`alert_delivered` on a stack whose receiver opsproof cannot read: Alertmanager's own count of notifications, on
Alertmanagers started by hand (not the sandbox's) — one whose webhook answers, one whose webhook is down."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import subprocess
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import http_server, respond

from opsproof.chaos import alerts, control, timeline
from opsproof.chaos.context import ChaosError
from opsproof.util.poll import wait_until

pytestmark = pytest.mark.integration
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        respond(self, 200, b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start an Alertmanager of one's own whose only receiver is a webhook at the URL given; its URL."""
    with contextlib.ExitStack() as stack:

        def start(webhook: str) -> str:
            port = free_port()
            folder = tmp_path / f"am-{port}"
            folder.mkdir()
            (folder / "alertmanager.yml").write_text(yaml.safe_dump({
                "route": {"receiver": "team", "group_by": ["alertname"], "group_wait": "1s",
                          "group_interval": "1s", "repeat_interval": "1h"},
                "receivers": [{"name": "team", "webhook_configs": [{"url": webhook, "send_resolved": True}]}]}))
            proc = stack.enter_context(subprocess.Popen(
                [ALERTMANAGER, f"--config.file={folder / 'alertmanager.yml'}", f"--storage.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
                stderr=subprocess.DEVNULL))
            stack.callback(proc.wait, 10)
            stack.callback(proc.terminate)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _ready(url), 20, "Alertmanager not ready")
            return url

        yield start


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def configuration(tmp_path: Path, am_url: str) -> dict[str, Any]:
    inventory = tmp_path / "stack.yaml"
    inventory.write_text(yaml.safe_dump({"environment": "own-stack", "alertmanager": {"main": {"url": am_url}},
                                         "prometheus": {"main": {"url": "http://127.0.0.1:9"}}}))
    return {"opsproof_inventory": str(inventory)}


def fire(am_url: str, name: str) -> None:
    now = dt.datetime.now(dt.UTC).isoformat()
    httpx.post(f"{am_url}/api/v2/alerts", json=[{"labels": {"alertname": name}, "startsAt": now}],
               timeout=5).raise_for_status()


@pytest.fixture
def receiver() -> Iterator[str]:
    with http_server(Receiver) as url:
        yield f"{url}/hook"


@pytest.fixture(autouse=True)
def fresh_timeline() -> Iterator[None]:
    timeline.reset()
    yield
    timeline.reset()
    control.after_method_control({})


def test_delivered_counts_a_notification_that_did_not_fail(alertmanager: Callable[[str], str], receiver: str,
                                                           tmp_path: Path) -> None:
    am = alertmanager(receiver)
    cfg = configuration(tmp_path, am)
    control.before_method_control({}, configuration=cfg)  # the count before the fault
    fire(am, "BackendDown")
    found = alerts.alert_delivered("BackendDown", within=20, configuration=cfg)
    assert found["source"] == "Alertmanager's notification counters (per integration, not per alert)"
    assert (found["receivers"], found["integrations"]) == (["team"], ["webhook"])
    assert found["sent"]["webhook"] >= 1
    assert found["failed"] == {"webhook": 0}


def test_a_receiver_that_fails_every_notification_is_no_delivery(alertmanager: Callable[[str], str],
                                                                 tmp_path: Path) -> None:
    am = alertmanager(f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    cfg = configuration(tmp_path, am)
    control.before_method_control({}, configuration=cfg)
    fire(am, "BackendDown")
    with pytest.raises(ChaosError) as caught:
        alerts.alert_delivered("BackendDown", within=6, configuration=cfg)
    message = str(caught.value)
    assert message.startswith("alertmanager[main]: every request to notify through webhook since the "
                              "fault failed (webhook: "), message
    assert message.endswith("_requests_failed_total), expected a delivery of BackendDown"), message


def test_without_a_count_from_before_the_fault_there_is_no_verdict(alertmanager: Callable[[str], str],
                                                                   receiver: str, tmp_path: Path) -> None:
    am = alertmanager(receiver)
    cfg = configuration(tmp_path, am)
    fire(am, "BackendDown")  # the method never started: nothing was counted before
    with pytest.raises(ChaosError, match=r"no count of Alertmanager's notifications from before the fault"):
        alerts.alert_delivered("BackendDown", within=2, configuration=cfg)
