"""SIGINT and SIGTERM during a chaos run: the current experiment is rolled back, then the run's caller ends too.

Chaos Toolkit turns Ctrl-C into KeyboardInterrupt and SIGTERM into InterruptExecution, plays the rollbacks and
returns its journal as if the run had merely been interrupted — so ``pytest chaos`` went on to the next experiment.
:func:`watch` (called by the opsproof control when an experiment starts) notes which signal arrived and does what
Chaos Toolkit does; the runner then raises :class:`Interrupted`, a KeyboardInterrupt, so pytest's own interrupt
path ends the session (exit 2) and ``opsproof chaos run`` exits 130.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A chaos run ended by a signal, after its rollbacks; ``outcome`` is what the run proved until then."""

    def __init__(self, signum: int, outcome: object = None) -> None:
        super().__init__(f"{signal.Signals(signum).name} during a chaos run: rolled back, stopping")
        self.signum = signum
        self.outcome = outcome


def _on_int(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _on_term(signum: int, frame: FrameType | None) -> None:
    from chaoslib.exceptions import InterruptExecution

    _received.append(signum)
    raise InterruptExecution("SIGTERM signal received")


def watch() -> None:
    """In the main thread, inside Chaos Toolkit's run: note SIGINT (unless ignored) and SIGTERM from now on."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job that ignores Ctrl-C still does
        signal.signal(signal.SIGINT, _on_int)
    signal.signal(signal.SIGTERM, _on_term)  # Chaos Toolkit restores the one before the run when it ends


def received() -> int | None:
    """The first signal since :func:`watch`, or None."""
    return _received[0] if _received else None
