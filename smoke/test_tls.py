"""TLS endpoints — `openssl s_client` and `openssl x509 -enddate` from the certificate runbooks."""

import pytest

from opsproof import verify
from opsproof.probes import tls
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(tls.expiry)
def test_certificate_not_expiring(result: Result) -> None:
    """`openssl x509 -noout -enddate` — the certificate is valid for at least `min_days` more days."""
    verify(result)


@pytest.mark.check(tls.hostname)
def test_certificate_trusted_for_hostname(result: Result) -> None:
    """`curl -v https://HOST` — the chain is trusted and the certificate matches the server name."""
    verify(result)
