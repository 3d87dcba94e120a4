"""The simulated release: version, injected error rate and latency, set through ``/admin/release``."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    version: str = "v1"
    error_rate: float = 0.0
    latency_ms: int = 0


class ReleaseControl:
    """The current simulated release and the per-process seeded dice for error injection."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._release = Release()

    @property
    def current(self) -> Release:
        with self._lock:
            return self._release

    def deploy(self, release: Release) -> None:
        with self._lock:
            self._release = release

    def roll(self) -> tuple[Release, bool]:
        """The current release, and whether this request should fail."""
        with self._lock:
            return self._release, self._rng.random() < self._release.error_rate
