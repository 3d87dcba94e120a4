"""tcp.connect on real sockets: a listening port passes; a closed port fails at once naming host:port and the error;
a host that drops the handshake (a listener whose accept queue is full: Linux drops the SYNs) fails within
timeout_s, saying so. The suite run reads MagicSaaS' two bare ports (runbook l. 37-38) from an inventory."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import run_suite

from opsproof.inventory import TcpPort
from opsproof.probes import Connections, Target, tcp
from opsproof.result import Result

pytestmark = pytest.mark.integration


def check(port: int, timeout_s: float = 2) -> Result:
    with Connections() as conns:
        return tcp.connect(Target("tcp", "jaeger", TcpPort(host="127.0.0.1", port=port, timeout_s=timeout_s)), conns)


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once it is closed


def test_open_closed_and_silent_ports(listening: socket.socket) -> None:
    port = listening.getsockname()[1]
    ok = check(port)
    assert ok.ok is True
    assert ok.explain().startswith(f"tcp[jaeger]: 127.0.0.1:{port} accepted a connection (127.0.0.1:{port})")
    shut = closed_port()
    refused = check(shut)
    assert refused.ok is False
    assert refused.explain() == (f"tcp[jaeger]: 127.0.0.1:{shut} unreachable (ConnectionRefusedError: [Errno 111] "
                                 f"Connection refused), expected 127.0.0.1:{shut} accepts a TCP connection within 2 s")


def test_a_dropped_handshake_fails_within_the_timeout() -> None:
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)  # never accepted: once its queue is full, the kernel drops further SYNs
        port = full.getsockname()[1]
        queued = []
        try:
            for _ in range(4):  # fill the accept queue (backlog 0 still queues one or two)
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                queued.append(c)
            result = check(port, timeout_s=0.5)
        finally:
            for c in queued:
                c.close()
    assert result.ok is False  # the deadline ended it, not the kernel's SYN retries (~2 min)
    assert result.explain() == (f"tcp[jaeger]: 127.0.0.1:{port}: no TCP handshake within 0.5 s, expected "
                                f"127.0.0.1:{port} accepts a TCP connection within 0.5 s")


def test_suite_magicsaas_ports(listening: socket.socket, tmp_path: Path) -> None:
    port, shut = listening.getsockname()[1], closed_port()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"""environment: t
tcp:
  jaeger: {{host: 127.0.0.1, port: {port}}}
  inngest: {{host: 127.0.0.1, port: {shut}, timeout_s: 1}}
""")
    run = run_suite(inventory, tmp_path / "out", suite="smoke/test_tcp.py")
    assert run.code == 1, run.output
    assert run.failed == {"tcp.connect@tcp[inngest]"}, run.output
    assert f"tcp[inngest]: 127.0.0.1:{shut} unreachable (ConnectionRefusedError" in run.output
