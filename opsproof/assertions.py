"""The assertion helper suites use: it hides its own frames and prints the finding, not a traceback."""

from __future__ import annotations

import pytest

from opsproof.result import Result


def verify(result: Result) -> None:
    """Pass, fail with the finding (``target: observed, expected …``), or skip when there is no verdict."""
    __tracebackhide__ = True
    if result.ok is None:
        pytest.skip(result.explain())
    if not result.ok:
        pytest.fail(result.explain(), pytrace=False)
