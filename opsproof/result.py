"""The typed result every probe returns.

A result reads like a finding: ``redis[cache]: used_memory is 93% of maxmemory, expected ≤ 90%``.
``ok`` is ``True`` (pass), ``False`` (fail) or ``None`` (no verdict: the check does not apply or there is not
enough data to judge, with the reason in ``observed``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from opsproof.util.errors import BadAnswer, typed_reason
from opsproof.util.errors import reason as reason  # re-exported: the one "reason of an exception"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"critical": 4, "high": 3, "medium": 2, "low": 1}[self.value]


class Verdict(StrEnum):
    """A check's verdict, as every record carries it (a ``StrEnum``: the JSON holds the same strings)."""

    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no-data"
    FLAKY = "flaky"  # passed only after failing
    WAIVED = "waived"  # failed, under an unexpired waiver
    BLOCKED = "blocked"  # failed because a target it depends on is down (the root cause fails on its own)
    TIMED_OUT = "timed-out"  # unfinished when the run's time budget was spent

    @property
    def counts_as_failure(self) -> bool:
        return self in (Verdict.FAIL, Verdict.BLOCKED, Verdict.TIMED_OUT)

    @classmethod
    def of(cls, ok: bool | None) -> Verdict:
        """A probe's own verdict from its ``ok``: pass, fail or no-data."""
        return _OF_OK[ok]


_OF_OK = {True: Verdict.PASS, False: Verdict.FAIL, None: Verdict.NO_DATA}


@dataclass(frozen=True)
class Result:
    """What a probe saw. ``observed``/``expected`` are short human phrases; ``evidence`` is raw data."""

    target: str  # "redis[cache]"
    check: str  # "redis.memory"
    ok: bool | None
    observed: str
    expected: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    attempts: int = 1
    error: str | None = None  # set when the target could not be reached or answered wrongly

    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.ok)

    def explain(self) -> str:
        """One line, like a finding in an audit report."""
        if self.ok is None:
            return f"{self.target}: {self.check}: no verdict — {self.observed}"
        if self.ok:
            return f"{self.target}: {self.observed} (expected {self.expected})"
        return f"{self.target}: {self.observed}, expected {self.expected}"

    def to_record(self) -> dict[str, Any]:
        # field by field, not asdict(): its deep copy of the evidence would be thrown away for the JSON one
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["evidence"] = json.loads(json.dumps(dict(self.evidence), default=str))
        record["verdict"] = self.verdict
        return record

    def redacted(self, redact: Callable[[str], str]) -> Result:
        text = json.dumps(dict(self.evidence), default=str)
        clean = redact(text)
        return replace(
            self,
            observed=redact(self.observed),
            expected=redact(self.expected),
            error=None if self.error is None else redact(self.error),
            evidence=json.loads(clean) if clean is not text else self.evidence,
        )


# httpx's timeout classes → (what did not happen, the phase in httpx's timeout dict)
HTTPX_TIMEOUTS = {"ConnectTimeout": ("no connection", "connect"), "ReadTimeout": ("no answer", "read"),
                  "WriteTimeout": ("request not sent", "write"), "PoolTimeout": ("no free connection", "pool")}


def timed_out(exc: BaseException) -> str | None:
    """``"no answer within 5 s (read timeout)"`` for a client's timeout (httpx, redis, psycopg), else None."""
    name, text = type(exc).__name__, str(exc).lower()
    if name in HTTPX_TIMEOUTS and type(exc).__module__.startswith("httpx"):
        what, phase = HTTPX_TIMEOUTS[name]
        try:
            seconds = exc.request.extensions.get("timeout", {}).get(phase)  # type: ignore[attr-defined]
        except RuntimeError:  # raised outside a request
            seconds = None
        return f"{what} within {seconds:g} s ({phase} timeout)" if seconds else f"{what} in time ({phase} timeout)"
    if name == "TimeoutError" and type(exc).__module__.startswith("redis"):  # "Timeout reading from socket"
        return "no connection in time (connect timeout)" if "connect" in text else "no answer in time (read timeout)"
    if "timeout expired" in text and type(exc).__module__.startswith("psycopg"):  # connect_timeout
        return "no connection in time (connect timeout)"
    if isinstance(exc, TimeoutError) and "handshake" in text:  # ssl: "The handshake operation timed out"
        return "no TLS handshake in time (handshake timeout)"
    return None


def unreachable(target: str, check: str, expected: str, exc: BaseException, duration_s: float) -> Result:
    """A failed result from the exception a probe raised, never a traceback: a client's timeout says what did not
    happen in time, a bad answer says what the server answered, a malformed one that it was unexpected; anything
    else means the target was not reached."""
    return Result(target=target, check=check, ok=False, observed=_finding(exc), expected=expected,
                  duration_s=duration_s, error=typed_reason(exc))


def _finding(exc: BaseException) -> str:
    if isinstance(exc, BadAnswer):
        return str(exc)
    if isinstance(exc, KeyError | IndexError | TypeError):  # an answer without the shape its API promises
        return f"unexpected answer ({typed_reason(exc)})"
    return timed_out(exc) or f"unreachable ({typed_reason(exc)})"
