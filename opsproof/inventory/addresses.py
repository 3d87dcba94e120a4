"""Where the targets are: DSNs and URLs parsed at load by the clients' own parsers (psycopg's conninfo, redis-py's
URL parsing, httpx.URL), CA bundles that must exist, and the passwords these values hold.

A malformed address is a configuration error, found by ``opsproof validate``; reported at run time it would read
as an outage (``unreachable (…)``) and block the target's other checks. No message shows a password.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator

from opsproof.redact import MASK, Redactor

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_PG_FIX = "Fix: write it like postgresql://user:${PGPASSWORD}@host:5432/db or host=db port=5432 dbname=app"


def url_secrets(url: str) -> set[str]:
    """The password of a URL or DSN (``scheme://user:pass@host``, ``password=...``)."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            found |= {parts.password, unquote(parts.password)}
    except ValueError:
        pass
    for m in re.finditer(r"password\s*=\s*('([^']*)'|\S+)", url):
        found.add(m.group(2) if m.group(2) is not None else m.group(1))
    return {s for s in found if s}


_QUERY = re.compile(r"^(?P<base>(?:/|[A-Za-z][A-Za-z0-9+.-]*://)[^?\s]*\?)(?P<query>\S*)")


def masked(value: str) -> str:
    """``value`` as a repr may show it: the password of a URL or DSN masked, and the values of the query of a URL
    or a path (``/health?token=…`` → ``/health?token=***``), which may be tokens."""
    def query(m: re.Match[str]) -> str:
        pairs = [f"{key}={MASK}" if sep else MASK for key, sep, _ in (p.partition("=") for p in m["query"].split("&"))]
        return m["base"] + "&".join(pairs)

    return _QUERY.sub(query, Redactor(url_secrets(value))(value))


def _clean(value: str, problem: object) -> str:
    """A client's message about ``value``, on one line and without the value's password."""
    return Redactor(url_secrets(value))(" ".join(str(problem).split()))


def _port(port: str | int | None, fix: str) -> None:
    if port is not None and not (str(port).isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"port {port!r} is not a port number (1-65535). {fix}")


def check_dsn(value: str) -> str:
    """A libpq connection string or URI, as psycopg reads it; the values libpq only reads at connect are checked
    too (port, sslmode, connect_timeout)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    if "://" in value and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("a URL DSN must start with postgresql://")
    try:
        params = conninfo_to_dict(value)
    except psycopg.Error as e:
        raise ValueError(f"not a PostgreSQL connection string ({_clean(value, e)}). {_PG_FIX}") from None
    for port in str(params.get("port", "")).split(","):
        _port(port or None, _PG_FIX)
    mode = params.get("sslmode")
    if mode is not None and mode not in SSLMODES:
        raise ValueError(f"sslmode {mode!r} is not one of {', '.join(SSLMODES)}. Fix: write e.g. sslmode=require")
    timeout = params.get("connect_timeout")
    if timeout is not None and not str(timeout).isdigit():
        raise ValueError(f"connect_timeout {timeout!r} is not a whole number of seconds. "
                         "Fix: leave it out (the entry's connect_timeout_s applies) or write e.g. 5")
    return value


def check_redis_url(value: str) -> str:
    """A Redis URL as redis-py reads it, with a host (no silent localhost) and a numeric database."""
    from redis.connection import parse_url

    fix = "Fix: write it like redis://:${REDIS_PASSWORD}@host:6379/0"
    try:
        params = parse_url(value)  # type: ignore[no-untyped-call]
    except ValueError as e:
        raise ValueError(f"not a Redis URL ({_clean(value, e)}). {fix}") from None
    if "path" in params:  # unix://
        return value
    if not params.get("host"):
        raise ValueError(f"no host (redis-py would connect to localhost). {fix}")
    _port(params.get("port"), fix)
    database = unquote(urlsplit(value).path).strip("/")
    if database and not database.isdigit():
        raise ValueError(f"database {database!r} is not a number (redis-py would ignore it). {fix}")
    return value


def check_http_url(value: str) -> str:
    """An http(s) URL as httpx reads it, with a host and a port in range."""
    import httpx

    fix = "Fix: write it like https://api.example.com:8443/v1"
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as e:
        raise ValueError(f"not a URL ({_clean(value, e)}). {fix}") from None
    if not url.host:
        raise ValueError(f"no host. {fix}")
    _port(url.port, fix)
    return value


def check_ca_file(value: bool | str | None) -> bool | str | None:
    """A CA bundle's path must name a file (relative paths: from where opsproof runs, as the clients read it)."""
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            state = "is not a file" if path.exists() else "does not exist"
            raise ValueError(f"the CA bundle {value} {state}. Fix: write the path of a PEM file of CA certificates, "
                             "or true for the system's")
    return value


Dsn = Annotated[str, AfterValidator(check_dsn)]
RedisUrl = Annotated[str, AfterValidator(check_redis_url)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
CaFile = Annotated[str, AfterValidator(check_ca_file)]
Verify = Annotated[bool | str, AfterValidator(check_ca_file)]
