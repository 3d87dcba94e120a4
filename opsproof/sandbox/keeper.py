"""Keeps one service process running: restarts it when it exits — the sandbox's ``Restart=always`` (systemd).

Run: ``python -m opsproof.sandbox.keeper --pidfile F --hold-file H --events E --delay S -- ARGV…``

* the child's pid is in ``F`` while it runs;
* a child that exits is restarted after ``S`` seconds (systemd's ``RestartSec``), unless ``H`` exists: then the
  keeper waits, with the service down, until ``H`` is removed (how a test makes "the remediation never comes");
* every exit and start is appended to ``E`` as a JSON line (``{"event": "exited"|"started", "at": …}``), so a
  chaos timeline can say when the supervisor remediated;
* SIGTERM or SIGINT stops the child (SIGTERM, then SIGKILL after 10 s) and then the keeper;
* the child gets a parent-death signal: it never outlives its keeper.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from opsproof.util.process import die_with_parent, write_atomic  # stdlib only: it runs in the app container too

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class Keeper:
    def __init__(self, argv: list[str], pidfile: Path, hold_file: Path, events: Path, delay: float) -> None:
        self.argv = argv
        self.pidfile = pidfile
        self.hold_file = hold_file
        self.events = events
        self.delay = delay
        self.child: subprocess.Popen[bytes] | None = None

    def _event(self, event: str, **detail: object) -> None:
        with self.events.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"event": event, "at": time.time(), **detail}) + "\n")

    def start(self) -> None:
        def preexec() -> None:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS | {signal.SIGCHLD})
            die_with_parent(signal.SIGTERM)

        self.child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, preexec_fn=preexec)
        write_atomic(self.pidfile, f"{self.child.pid}\n")
        self._event("started", pid=self.child.pid)

    def wait_signal(self, timeout: float) -> int | None:
        """The next stop signal within ``timeout`` s (SIGCHLD only wakes us up early), or None."""
        info = signal.sigtimedwait(STOP_SIGNALS | {signal.SIGCHLD}, timeout)
        if info is not None and info.si_signo in STOP_SIGNALS:
            return info.si_signo
        return None

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS | {signal.SIGCHLD})
        self.start()
        restart_at: float | None = None
        while True:
            if self.wait_signal(0.2) is not None:
                return self.stop()
            assert self.child is not None
            if restart_at is None and self.child.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                self._event("exited", pid=self.child.pid, code=self.child.returncode)
                restart_at = time.monotonic() + self.delay
            if restart_at is not None and time.monotonic() >= restart_at and not self.hold_file.exists():
                restart_at = None
                self.start()

    def stop(self) -> int:
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGCONT)  # a stopped (SIGSTOP) child cannot act on SIGTERM
                child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        self.pidfile.unlink(missing_ok=True)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsproof.sandbox.keeper", description=__doc__)
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--hold-file", type=Path, required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("the command to keep running goes after --")
    return Keeper(command, args.pidfile, args.hold_file, args.events, args.delay).run()


if __name__ == "__main__":
    sys.exit(main())
