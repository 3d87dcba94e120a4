"""TLS endpoints: `openssl s_client -connect HOST:PORT -servername NAME | openssl x509 -noout -enddate`."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

from opsproof.inventory import TlsEndpoint
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import bound
from opsproof.probes.resolver import resolve
from opsproof.result import Severity


def _server_name(cfg: TlsEndpoint) -> str:
    return cfg.server_name or cfg.host


def _handshake(cfg: TlsEndpoint, context: ssl.SSLContext) -> bytes:
    """The server's certificate; the connect and the handshake (which ssl bounds in total) within the deadline."""
    [(*_, address), *_] = resolve(cfg.host, cfg.port)  # the lookup, within the deadline
    with socket.create_connection(address[:2], timeout=bound(cfg.timeout_s, "connect")) as sock:
        sock.settimeout(bound(cfg.timeout_s, "tls"))
        with context.wrap_socket(sock, server_hostname=_server_name(cfg)) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


@probe(
    "tls.expiry",
    "tls",
    Severity.HIGH,
    "openssl s_client -connect $HOST:$PORT | openssl x509 -noout -enddate",
    expected=lambda cfg: f"≥ {cfg.min_days} days",
)
def expiry(target: Target[TlsEndpoint], conns: Connections) -> Outcome:
    """The served certificate does not expire within ``min_days``."""
    from cryptography import x509

    cfg = target.config
    context = conns.ssl_context(check=False)  # read the certificate even if it is already invalid
    cert = x509.load_der_x509_certificate(_handshake(cfg, context))
    not_after = cert.not_valid_after_utc
    days = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    return Outcome(days >= cfg.min_days, f"certificate expires in {days:.1f} days ({not_after:%Y-%m-%d %H:%M} UTC)",
                   {"not_after": not_after.isoformat(), "subject": cert.subject.rfc4514_string(),
                    "issuer": cert.issuer.rfc4514_string(), "days_left": round(days, 2)})


@probe(
    "tls.hostname",
    "tls",
    Severity.CRITICAL,
    "curl -v https://$HOST:$PORT (certificate verify ok, hostname matches)",
    expected=lambda cfg: f"a trusted chain valid for {_server_name(cfg)}",
    root=True,
)
def hostname(target: Target[TlsEndpoint], conns: Connections) -> Outcome:
    """The certificate chains to a trusted CA and is valid for the server name clients use."""
    cfg = target.config
    context = conns.ssl_context(cfg.ca_file or True)
    try:
        _handshake(cfg, context)
    except ssl.SSLCertVerificationError as e:
        return Outcome(False, f"verification failed: {e.verify_message or e.reason}",
                       {"server_name": _server_name(cfg), "verify_code": e.verify_code})
    return Outcome(True, f"chain verified, valid for {_server_name(cfg)}", {"server_name": _server_name(cfg)})
