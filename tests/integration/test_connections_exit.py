"""Clients closed at interpreter exit (the chaos context closes its shared clients in an atexit handler): by then no
new thread may start, and the parallel close raised "cannot schedule new futures after interpreter shutdown" —
the clients stayed open and the run printed "Exception ignored in atexit callback"."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import atexit
from opsproof.probes import Connections
conns = Connections()
conns.http(True), conns.http(False)  # two clients: the close that uses threads
atexit.register(conns.close)
atexit.register(print, "closing")  # runs first (atexit is last-in, first-out)
"""


def test_clients_close_at_interpreter_exit_without_an_error() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == "closing"
    assert done.stderr == "", f"closing the clients at exit printed: {done.stderr}"
