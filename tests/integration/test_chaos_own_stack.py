"""Chaos on a stack opsproof did not start: a service run by hand, an inventory naming it, a fault done by a plain
Chaos Toolkit `process` action. The fault's time is when that action ended (the opsproof control marks it), so the
recovery is measured from the fault, not from the probe that looked: before, a 3 s outage "recovered in 0.0 s"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVER = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status": "ok"}'
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    s = http.server.HTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
""")

EXPERIMENT = """version: 1.0.0
title: Own stack, a process fault
description: A service of the user's is stopped by a plain process action and comes back on its own after 1 s.
configuration:
  opsproof_inventory: {{type: env, key: OPSPROOF_INVENTORY, default: ""}}
  opsproof_out: {{type: env, key: OPSPROOF_OUT, default: ""}}
runtime:
  rollbacks: {{strategy: always}}
controls:
  - name: opsproof
    provider: {{type: python, module: opsproof.chaos.control}}
method:
  - type: action
    name: freeze-web
    provider: {{type: process, path: sh, arguments: "-c 'kill -STOP {pid}; (sleep 1; kill -CONT {pid}) &'"}}
    pauses: {{after: {pause}}}
  - type: probe
    name: web-recovers
    provider: {{type: python, module: opsproof.chaos.alerts, func: recovers_within, arguments: {{seconds: 20,
      target: web}}}}
rollbacks:
  - type: action
    name: thaw-web
    provider: {{type: process, path: kill, arguments: "-CONT {pid}"}}
"""
PAUSE_S = 2


@pytest.fixture
def web() -> Iterator[tuple[int, int]]:
    """(pid, port) of an HTTP service started by hand, as a user's would be."""
    with subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            yield proc.pid, int(proc.stdout.readline())
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()


def test_a_process_action_is_the_fault_the_recovery_counts_from(web: tuple[int, int], tmp_path: Path) -> None:
    pid, port = web
    inventory = tmp_path / "own.yaml"
    inventory.write_text(f"environment: own-stack\nhttp:\n  web: {{url: 'http://127.0.0.1:{port}', timeout_s: 2}}\n")
    experiment = tmp_path / "freeze.yaml"
    experiment.write_text(EXPERIMENT.format(pid=pid, pause=PAUSE_S))
    done = subprocess.run([sys.executable, "-m", "opsproof.cli", "chaos", "run", "--inventory", str(inventory),
                           str(experiment), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    [evidence] = (tmp_path / "out" / "chaos").iterdir()
    doc = json.loads(evidence.read_text())
    [fault] = [m for m in doc["timeline"] if m["event"] == "fault_injected"]
    assert fault["fault"] == "freeze-web (a process action)"
    # the probe ran only after the action's pause: measured from the fault, the recovery took at least that long
    assert doc["recovery"]["recovery_s"] >= PAUSE_S, doc["recovery"]
    assert doc["ok"], doc["failures"]
