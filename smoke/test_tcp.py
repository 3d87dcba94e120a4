"""Bare TCP ports — `nc -z HOST PORT` for the services a runbook gives only a port for."""

import pytest

from opsproof import verify
from opsproof.probes import tcp
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(tcp.connect)
def test_port_accepts_connections(result: Result) -> None:
    """`nc -z jaeger 14268` — the port accepts a TCP connection within `timeout_s`."""
    verify(result)
