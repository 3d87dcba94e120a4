"""The cheaper reporting of check tests (opsproof/lean.py) changes nothing a user reads: a check's prints still land
in its report, capture fixtures still work, and the terminal shows the same progress, failures and summary."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import REPO, run_suite

PRINTING_SUITE = '''
import os

import pytest

from opsproof import verify
from opsproof.probes import http


@pytest.mark.check(http.health)
def test_prints(result):
    print(f"note from the check of {result.target}")
    verify(result)


@pytest.mark.check(http.health)
def test_with_capfd(result, capfd):
    os.write(1, b"fd-level\\n")
    assert capfd.readouterr().out == "fd-level\\n"
'''


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        data = b'{"status":"degraded"}' if self.path.startswith("/bad/") else b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def inventory(tmp_path: Path, server: str, good: int, bad: int) -> Path:
    lines = ["environment: staging", "http:"]
    lines += [f'  ok{i:03d}: {{url: "{server}/ok", expect_json: {{status: ok}}, ready: null}}' for i in range(good)]
    lines += [f'  bad{i}: {{url: "{server}/bad", expect_json: {{status: ok}}, ready: null}}' for i in range(bad)]
    path = tmp_path / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_check_that_prints_shows_it_in_its_failure_only(server: str, tmp_path: Path) -> None:
    suite = tmp_path / "test_printing.py"
    suite.write_text(PRINTING_SUITE)
    inv = inventory(tmp_path, server, good=1, bad=1)
    run = run_suite(inv, tmp_path / "out", "-c", str(REPO / "pyproject.toml"), suite=str(suite))
    assert run.code == 1, run.output
    assert "note from the check of http[bad0]" in run.output  # in the failure's "Captured stdout call"
    assert "Captured stdout call" in run.output
    assert "note from the check of http[ok000]" not in run.output  # a passing check's output stays captured
    assert "fd-level" not in run.output  # capfd got pytest's own fd-level capture
    assert run.failed == {"http.health@http[bad0]"}


def test_the_terminal_reads_the_same_with_and_without_it(server: str, tmp_path: Path) -> None:
    inv = inventory(tmp_path, server, good=150, bad=2)

    def output(*args: str) -> str:
        run = run_suite(inv, tmp_path / "out", *args, suite="smoke/test_http.py")
        assert run.code == 1
        return re.sub(r" in \d+\.\d+s", " in Xs", run.output)

    lean, plain = output(), output("-p", "no:opsproof-lean")
    assert lean == plain
    assert lean.count(".") >= 300
    assert "FAILED smoke/test_http.py::test_health[http[bad1]]" in lean
