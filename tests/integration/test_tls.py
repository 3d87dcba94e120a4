"""TLS checks against real TLS servers with certificates from a test CA (trustme)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from support import run_suite


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def serve(cert: trustme.LeafCert) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture
def expiring(ca: trustme.CA) -> Iterator[int]:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    yield from serve(ca.issue_cert("api.example.test", not_after=not_after))


@pytest.fixture
def healthy(ca: trustme.CA) -> Iterator[int]:
    yield from serve(ca.issue_cert("api.example.test"))


def write_inventory(tmp_path: Path, ca: trustme.CA, entries: dict[str, tuple[int, str]]) -> Path:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    lines = ["environment: tls-test", "tls:"]
    for name, (port, server_name) in entries.items():
        lines.append(f"  {name}: {{host: 127.0.0.1, port: {port}, server_name: {server_name}, min_days: 14,"
                     f" ca_file: '{ca_file}', timeout_s: 3}}")
    path = tmp_path / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_certificate_expiring_in_three_days(tmp_path: Path, ca: trustme.CA, expiring: int, healthy: int) -> None:
    inventory = write_inventory(tmp_path, ca, {"soon": (expiring, "api.example.test"),
                                               "fine": (healthy, "api.example.test")})
    run = run_suite(inventory, tmp_path)
    assert run.failed == {"tls.expiry@tls[soon]"}, run.output
    [record] = [r for r in run.records if r["target"] == "tls[soon]" and r["check"] == "tls.expiry"]
    assert record["observed"].startswith("certificate expires in 2.9") or record["observed"].startswith(
        "certificate expires in 3.0")
    assert record["expected"] == "≥ 14 days"
    assert "tls[soon]: certificate expires in " in run.output
    assert "expected ≥ 14 days" in run.output


def test_hostname_mismatch_and_untrusted_chain(tmp_path: Path, ca: trustme.CA, healthy: int) -> None:
    other_ca = trustme.CA()
    other_ca_file = tmp_path / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(other_ca_file))
    inventory = write_inventory(tmp_path, ca, {"wrong-name": (healthy, "www.other.test"),
                                               "right": (healthy, "api.example.test")})
    text = inventory.read_text() + (f"  untrusted: {{host: 127.0.0.1, port: {healthy}, server_name: api.example.test,"
                                    f" ca_file: '{other_ca_file}', timeout_s: 3}}\n")
    inventory.write_text(text)
    run = run_suite(inventory, tmp_path)
    assert run.failed == {"tls.hostname@tls[wrong-name]", "tls.hostname@tls[untrusted]"}, run.output
    by_target = {r["target"]: r for r in run.records if r["check"] == "tls.hostname"}
    assert "Hostname mismatch" in by_target["tls[wrong-name]"]["observed"]
    assert by_target["tls[wrong-name]"]["expected"] == "a trusted chain valid for www.other.test"
    assert "unable to get local issuer certificate" in by_target["tls[untrusted]"]["observed"]
