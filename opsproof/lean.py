"""Cheaper pytest bookkeeping for probe checks, which matters once thousands of them run in one process.

While the probe threads run, every system call of pytest's main thread gives the GIL away, and taking it back
from 32 busy threads costs far more than the call. Per check, pytest makes about 20 of them just to report
(measured on 9,100 checks: 109,200 ``dup2`` and 54,600 ``fstat`` from fd-level output capture, 18,300 terminal
writes, ≈ 40 % of the main thread's time). Two of them are not needed for a check:

- **capture**: a check test (``@pytest.mark.check``) runs Python code only (``verify(result)``; the probe ran in a
  pool thread before), so its output is captured at the Python level, ``sys.stdout``/``sys.stderr`` swapped for
  buffers, as ``--capture=sys`` does — what it prints still lands in the report's "Captured stdout" sections. A
  check test that asks for a capture fixture (``capfd``, ``capsys`` …) gets pytest's capture unchanged;
  ``-s`` turns all of this off;
- **terminal**: the progress letters are written at a line end or every :data:`INTERVAL` seconds instead of one
  write and a flush per test (``PYTHONUNBUFFERED`` makes each a system call). Only during the test loop, only
  while output is captured (with ``-s`` a test's prints go to the same terminal, in order), and the failures,
  the summary and everything after the loop are written as before.

Both use pytest internals that have been stable for years (``CaptureManager.item_capture``, the terminal
reporter's writer); if a pytest lacks them, nothing is changed. ``-p no:opsproof-lean`` turns both off.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TextIO

import pytest

INTERVAL = 0.1  # seconds the terminal's progress may lag at most (behind the next test that reports)
CAPTURE_FIXTURES = frozenset({"capsys", "capsysbinary", "capfd", "capfdbinary", "capteesys"})


class Lean:
    """The plugin object (registered by :mod:`opsproof.plugin` as ``opsproof-lean``)."""

    def __init__(self, config: pytest.Config, is_check: Callable[[pytest.Item], bool]) -> None:
        self.config = config
        self.is_check = is_check
        self.capturing = False

    def pytest_configure(self, config: pytest.Config) -> None:
        """Called once registered (``-p no:opsproof-lean`` blocks it: pytest's reporting as it is)."""
        is_check = self.is_check
        capman = config.pluginmanager.get_plugin("capturemanager")
        self.capturing = capman is not None and capman.is_globally_capturing()
        pytest_capture = getattr(capman, "item_capture", None)
        if self.capturing and callable(pytest_capture):

            def item_capture(when: str, item: pytest.Item) -> AbstractContextManager[None]:
                if is_check(item) and not CAPTURE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
                    return python_capture(when, item)
                return pytest_capture(when, item)  # type: ignore[no-any-return]

            setattr(capman, "item_capture", item_capture)  # noqa: B010 (the instance's, for this run only)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(reporter, "_tw", None)
        file = getattr(writer, "_file", None)
        if not self.capturing or file is None or not any(self.is_check(i) for i in session.items):
            return (yield)
        gathered = Gathered(file)
        writer._file = gathered  # type: ignore[union-attr]
        try:
            return (yield)
        finally:
            writer._file = file  # type: ignore[union-attr]
            gathered.drain()


@contextmanager
def python_capture(when: str, item: pytest.Item) -> Iterator[None]:
    """One phase of a check test with its Python-level output captured into the report's sections."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        item.add_report_section(when, "stdout", out.getvalue())
        item.add_report_section(when, "stderr", err.getvalue())


class Gathered:
    """A terminal file that writes what it was given at a line end or :data:`INTERVAL` after its last write."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.parts: list[str] = []
        self.last = time.monotonic()

    def write(self, text: str) -> int:
        self.parts.append(text)
        if "\n" in text or time.monotonic() - self.last >= INTERVAL:
            self.drain()
        return len(text)

    def flush(self) -> None:
        if self.parts and time.monotonic() - self.last >= INTERVAL:
            self.drain()

    def drain(self) -> None:
        parts, self.parts = self.parts, []
        try:
            self.file.write("".join(parts))
        except UnicodeEncodeError:  # as pytest's writer does, but per part: a line end stays a line end
            for part in parts:
                try:
                    self.file.write(part)
                except UnicodeEncodeError:
                    self.file.write(part.encode("unicode-escape").decode("ascii"))
        self.file.flush()
        self.last = time.monotonic()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding …: the terminal's own
        return getattr(self.file, name)
