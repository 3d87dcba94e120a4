"""A Chaos Toolkit action that only waits, so the bench knows exactly which waits an experiment was told to do."""

from __future__ import annotations

import time


def wait(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
