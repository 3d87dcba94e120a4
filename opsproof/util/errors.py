"""The reason of an exception, in one line, for a finding (never a traceback)."""

from __future__ import annotations


def reason(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's error can run to many lines), or its type's name."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def typed_reason(exc: BaseException) -> str:
    """``Type: first line`` — or the type's name alone when the message is empty."""
    first = reason(exc)
    return first if first == type(exc).__name__ else f"{type(exc).__name__}: {first}"


class BadAnswer(Exception):
    """A server answered, but not with what its API promises (an HTTP error, no JSON, an error envelope): the
    message is the finding, e.g. ``answered badly: HTTP 500 from /api/v1/targets``. It was reached."""
