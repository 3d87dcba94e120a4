"""The state of one experiment run: its timeline, the faults its backends injected, whether its method is running,
the connections its faults hold, Redis pause ends — one :class:`ChaosRun` per run, nothing module-wide; and the
caches a run hands to the next (client pools, contexts, sandbox backend objects: see :func:`begin`).

Chaos Toolkit calls every activity with the configuration only, and one run at a time per process (it installs
signal handlers), so the run an activity belongs to is the *current* one: :func:`begin` (the opsproof control,
before the experiment) starts a new one, :func:`current` is the one the calls of the run share. Outside any
experiment (a test calling a fault directly, ``opsproof chaos recover``), the first call begins one.

What a run cannot let go of when it ends — a service process a rollback restarted, whose ``Popen`` handle must be
reaped, or a process a rollback started — is handed over to :data:`_LEFT` and reaped when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Injected:
    """A fault a target backend injected in this run (what its part of the audit looks at)."""

    backend: str
    target: str
    fault: str
    options: dict[str, Any]
    at: float
    inventory: str = ""  # the inventory's source: an audit looks at the faults on its own inventory only
    rolled_back: bool = False


@dataclass
class ChaosRun:
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    marks: list[dict[str, Any]] = field(default_factory=list)  # the timeline (opsproof.chaos.timeline)
    injected: list[Injected] = field(default_factory=list)  # faults of the target backends
    in_method: threading.Event = field(default_factory=threading.Event)  # the method runs (not hypothesis/rollbacks)
    contexts: dict[Any, Any] = field(default_factory=dict)  # configuration → Context (opsproof.chaos.context)
    sandboxes: dict[Any, Any] = field(default_factory=dict)  # sandbox folder → its process backend object
    connections: list[Any] = field(default_factory=list)  # the run's shared probes.Connections (at most one)
    held: dict[str, list[Any]] = field(default_factory=dict)  # postgres target → connections a fault holds
    redis_clients: dict[Any, Any] = field(default_factory=dict)  # (target, timeout) → redis client
    pause_ends: dict[str, float] = field(default_factory=dict)  # redis target → when the pause it set ends
    backends: dict[Any, Any] = field(default_factory=dict)  # (name, context) → the run's target backend objects
    children: list[Any] = field(default_factory=list)  # processes a rollback started (Popen), reaped at exit

    def note(self, backend: str, target: str, fault: str, options: dict[str, Any], inventory: str = "") -> Injected:
        entry = Injected(backend, target, fault, dict(options), time.time(), inventory)
        with self.lock:
            self.injected.append(entry)
        return entry

    def rolled_back(self, target: str, fault: str | None = None) -> None:
        with self.lock:
            for entry in self.injected:
                if entry.target == target and fault in (None, entry.fault):
                    entry.rolled_back = True

    def faults_on(self, backend: str) -> list[Injected]:
        with self.lock:
            return [e for e in self.injected if e.backend == backend]

    def close(self) -> None:
        """Close the clients the run opened (and connections a fault of it still held: its rollbacks have run);
        processes it restarted are reaped at exit."""
        for conns in self.held.values():
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.close()
        self.held.clear()
        for conns in self.connections:
            with contextlib.suppress(Exception):
                conns.close()
        self.connections.clear()
        for client in self.redis_clients.values():
            with contextlib.suppress(Exception):
                client.close()
        self.redis_clients.clear()
        for backend in self.backends.values():
            with contextlib.suppress(Exception):
                getattr(backend, "close", lambda: None)()
        self.backends.clear()
        _LEFT.extend(self.sandboxes.values())
        _LEFT.extend(self.children)


_LEFT: list[Any] = []  # process backends of finished runs: their restarted services are reaped at exit
_state: dict[str, ChaosRun] = {}  # "current" → the run in progress (Chaos Toolkit: one per process at a time)
_guard = threading.Lock()


def current() -> ChaosRun:
    """The run in progress; the first call outside any experiment begins one."""
    with _guard:
        run = _state.get("current")
        if run is None:
            run = _state["current"] = ChaosRun()
        return run


def begin() -> ChaosRun:
    """A new run: the previous one's faults and timeline are forgotten (its journal is not) and what it still held
    is closed. Its caches carry over — they hold nothing of a run: the client pools (a new HTTP client costs ~50 ms
    for its TLS context, a redis-py client ~20 ms), the contexts (the inventory, re-read when its file changes) and
    the sandbox backend objects (the Popen handles of services a rollback restarted). Re-made for every run, they
    doubled the harness overhead of bench/bench_chaos.py (68 ms median against 31 ms)."""
    with _guard:
        previous = _state.pop("current", None)
        run = _state["current"] = ChaosRun()
    if previous is not None:
        run.connections, previous.connections = previous.connections, []
        run.redis_clients, previous.redis_clients = previous.redis_clients, {}
        run.contexts, previous.contexts = previous.contexts, {}
        run.sandboxes, previous.sandboxes = previous.sandboxes, {}
        previous.close()
    return run


@atexit.register
def _at_exit() -> None:
    with _guard:
        run = _state.pop("current", None)
    if run is not None:
        run.close()
    for left in _LEFT:
        with contextlib.suppress(Exception):
            left.poll() if hasattr(left, "poll") else left.sup.reap()
