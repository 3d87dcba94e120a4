"""pytest plugin used by bench_http.py to split one pytest run into phases (``-p bench_phases``).

It records wall-clock marks (time.time, comparable with the spawn time the bench passes in BENCH_T0) and
writes them as JSON to $BENCH_PHASES_OUT when the process exits. It is only loaded for the breakdown runs,
never for the timed ones.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections.abc import Generator
from pathlib import Path

import pytest

MARKS: dict[str, float] = {"spawn": float(os.environ.get("BENCH_T0", "nan")), "plugin_imported": time.time()}


def _mark(name: str) -> None:
    MARKS.setdefault(name, time.time())


@atexit.register
def _dump() -> None:
    _mark("exit")
    out = os.environ.get("BENCH_PHASES_OUT")
    if out:
        Path(out).write_text(json.dumps(MARKS), encoding="utf-8")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _mark("configure_start")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _mark("sessionstart")  # pytest's own "in X.XXs" counts from here


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    _mark("collection_start")
    try:
        return (yield)
    finally:
        _mark("collection_end")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    _mark("runtestloop_start")
    try:
        return (yield)
    finally:
        _mark("runtestloop_end")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    _mark("sessionfinish_start")
    try:
        yield
    finally:
        _mark("sessionfinish_end")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _mark("unconfigure_start")

