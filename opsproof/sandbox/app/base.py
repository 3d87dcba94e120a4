"""What every part of the sandbox app shares: its name, its logger, and text that never carries a secret."""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

log = logging.getLogger("opsproof.sandbox.app")

APP_NAME = "opsproof-sandbox-app"


def first_line(exc: BaseException) -> str:
    """A short one-line description of an exception, for health output and logs."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class Redactor:
    """Removes configured secrets (passwords, whole DSNs) from text before it leaves the app."""

    def __init__(self, pg_dsn: str, redis_url: str) -> None:
        secrets = {pg_dsn, redis_url, urlsplit(redis_url).password or ""}
        with contextlib.suppress(psycopg.Error):
            secrets.add(str(conninfo_to_dict(pg_dsn).get("password") or ""))
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def pg_target(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, without credentials, for the startup log."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable dsn>"
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def redis_target(url: str) -> str:
    """``host:port/path`` of a Redis URL, without credentials, for the startup log."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
