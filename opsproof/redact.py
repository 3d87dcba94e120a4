"""Masking of secrets in every output: terminal, JUnit XML, recorded results, reports."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"
# user and password stop at a quote, so a URL inside a JSON string never swallows the closing quote
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s\"]*:)(?P<pw>[^@\s/\"]+)(?P<post>@)")
# No word boundary before the key, so PGPASSWORD=…, api_token=…, client_secret: … are masked too. The key may be
# quoted (JSON: "password": "…"), then only a quoted value is masked and its quotes are kept: JSON stays JSON.
# An unquoted value stops at a quote or a backslash escape (password=… inside a JSON string).
_KV_PASSWORD = re.compile(
    r"(?P<pre>(?:password|passwd|pwd|token|secret)(?P<q>[\"']?)[ \t]*[=:][ \t]*)"
    r"(?P<pw>'[^'\"\\\n]*'|\"(?:[^\"\\]|\\.)*\"|(?:[^\s\"'\\]|\\.)+)",
    re.IGNORECASE,
)


def _mask_pair(m: re.Match[str]) -> str:
    pw = m["pw"]
    quote = pw[0] if pw[0] in "'\"" else ""
    if m["q"] and not quote:
        return m[0]  # "token": 42 or "secret": {...} in JSON: masking would break the document
    return f"{m['pre']}{quote}{MASK}{quote}"


_SECRET_KEY = re.compile(r"(?:password|passwd|pwd|token|secret)$", re.IGNORECASE)
# Every key word above contains one of these (lower case): a text without any of them, without "://" and "@", and
# without JSON escapes that could spell one, has nothing to mask (most results of a healthy run).
_KEY_WORDS = ("passw", "pwd", "token", "secret")  # "passw": password, passwd (not "passed")
# A JSON escape of a non-ASCII character (json.dumps writes "≤" as \u2264, so most records have some) cannot
# spell a key word, "://", "@" or an ASCII secret, and a non-ASCII secret is listed in its escaped form too:
# only the other backslashes (\" \\ \n, an escaped ASCII letter) can hide something.
_NON_ASCII_ESCAPE = re.compile(r"\\u(?:00[89a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]|[1-9a-fA-F][0-9a-fA-F]{2})[0-9a-fA-F]")


class Redactor:
    """Replaces known secret values, URL passwords and ``password=…`` pairs with ``***``.

    Secrets shorter than 3 characters are ignored: masking every "a" or "1" would make output unreadable.
    A secret is also masked in its JSON-escaped form (a password with ``"`` or ``\\`` in a JSON fragment).
    A text that is a JSON object or array is redacted value by value and serialized again, so it stays JSON
    (``Result.redacted`` and the record file parse it back).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found = {s for s in secrets if len(s) >= 3}
        found |= {json.dumps(s, ensure_ascii=ascii)[1:-1] for s in found for ascii in (True, False)}
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if not self._may_hide_secrets(text):
            return text
        if text.startswith(("{", "[")):
            try:
                return json.dumps(self._json(json.loads(text)), ensure_ascii=text.isascii())
            except (ValueError, RecursionError):
                pass  # not JSON after all
        return self._text(text)

    def _may_hide_secrets(self, text: str) -> bool:
        """False only when no rule can match: the fast path for the thousands of clean records of a run."""
        if any(secret in text for secret in self.secrets) or ("://" in text and "@" in text):
            return True
        if "\\" in text and "\\" in _NON_ASCII_ESCAPE.sub("", text):
            return True
        lower = text.lower()
        return any(word in lower for word in _KEY_WORDS)

    def _text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _URL_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)
        return _KV_PASSWORD.sub(_mask_pair, text)

    def _json(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {self._text(k): self._json(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._json(v) for v in value]
        if value is not None and _SECRET_KEY.search(key):  # "password": "…", "api_token": 42
            return MASK
        return self._text(value) if isinstance(value, str) else value

    def extend(self, more: Iterable[str]) -> Redactor:
        return Redactor([*self.secrets, *more])


# The loggers of the clients opsproof drives, children included (httpcore.connection, psycopg.pool): httpx logs every
# request's URL at INFO (userinfo, ?token=…), the others may quote a DSN, a command or a request at DEBUG; Chaos
# Toolkit's loggers (plain `chaos run`'s chaostoolkit.log) quote activities and their results.
CLIENT_LOGGERS = frozenset({"httpx", "httpcore", "psycopg", "redis", "urllib3", "kubernetes", "chaostoolkit",
                            "chaoslib"})


class _MaskingFactory:
    """A log record factory that masks the records of :data:`CLIENT_LOGGERS` as they are made. Masking at the
    source is what covers them all: a filter on a logger misses its children's records, a handler's filter only
    guards that handler — pytest adds its own (log_cli, --log-file, caplog, the report sections)."""

    def __init__(self, base: Callable[..., logging.LogRecord]) -> None:
        self.base = base
        self.redact = Redactor()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        if record.name.partition(".")[0] not in CLIENT_LOGGERS:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when a handler formats the record
            return record
        masked = self.redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return record


_factory: _MaskingFactory | None = None
_factory_lock = threading.Lock()


def mask_client_logs(secrets: Iterable[str] = ()) -> None:
    """From now on, this process's client logs are masked: URL passwords, ``password=``/``token=`` pairs, and
    ``secrets`` (those of every inventory this process loaded). Idempotent; the secrets accumulate."""
    global _factory
    with _factory_lock:
        if _factory is None:
            _factory = _MaskingFactory(logging.getLogRecordFactory())
            logging.setLogRecordFactory(_factory)
        new = [s for s in secrets if s not in _factory.redact.secrets]
        if new:
            _factory.redact = _factory.redact.extend(new)
