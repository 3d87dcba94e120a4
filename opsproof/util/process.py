"""Starting, watching and stopping processes (the sandbox's services, a drill's scratch servers) — none may be
left behind.

Every service runs in its own session (process group). Its pid and start time are written to the state
folder, so ``opsproof sandbox down`` from another process finds exactly the processes it started (a pid
reused by the system is never signalled). When the sandbox belongs to one test run (``ephemeral``), each
child also gets a parent-death signal, so even a SIGKILLed pytest leaves nothing running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsproof.util.poll import Expired, wait_until

PR_SET_PDEATHSIG = 1


class ProcessError(RuntimeError):
    """The sandbox cannot start or stop; the message says why and what to do."""


def find_binary(name: str, package: str, extra_dirs: Sequence[str] = ()) -> str:
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ProcessError(f"{name} not found. Fix: apt-get install -y {package}  (Debian package {package!r})")
    return found


_LOCKS = Path("/tmp") / f"opsproof-ports-{os.getuid()}"


def die_with_parent(sig: int) -> None:
    """In a child (``preexec_fn``): the kernel sends ``sig`` when the parent dies, so nothing is orphaned."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def write_atomic(path: Path, text: str, mode: int = 0o666) -> None:
    """Readers see the old content or the new, never a half-written file; created with ``mode`` (less the umask)."""
    tmp = path.with_name(f".{path.name}.partial")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        f.write(text)
    tmp.replace(path)


def postgres_user() -> str | None:
    """The account PostgreSQL servers run as: 'postgres' when we are root (the server refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ProcessError("running as root needs the 'postgres' user. Fix: apt-get install -y postgresql") from None
    return "postgres"


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (32768+ here), so that no outgoing connection can
    grab it between the moment it is chosen and the moment its service binds it; reserved with a lock file holding
    our pid, so that two sandboxes starting at once (pytest-xdist workers) never pick the same one."""
    _LOCKS.mkdir(mode=0o700, exist_ok=True)
    rng = random.Random()
    for _ in range(2000):
        port = rng.randrange(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if _reserve(_LOCKS / str(port)):
            return port
    raise ProcessError("no free loopback port between 20000 and 32000")


def _reserve(lock: Path) -> bool:
    """Take the lock file, or reclaim it from a process that no longer exists."""
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            owner = int(lock.read_text() or 0)
        except (OSError, ValueError):
            return False
        if owner == os.getpid() or _start_time(owner) is not None:
            return False  # ours already, or held by a live process
        lock.unlink(missing_ok=True)
        return _reserve(lock)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05,
             fail_fast: type[Exception] | None = None) -> None:
    """:func:`~opsproof.util.poll.wait_until`, expiring as a :class:`ProcessError` (what process code catches)."""
    wait_until(predicate, timeout, what, interval, fail_fast, error=ProcessError)


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None without such a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def proc_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (R, S, T = stopped, Z …), or None if there is none."""
    fields = _stat(pid)
    return fields[0] if fields else None


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a live (non-zombie) process, or None."""
    fields = _stat(pid)
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def age(pid: int | None = None) -> float:
    """Seconds since a process (this one by default) started, as the kernel has it (to 1/100 s); 0.0 where that
    cannot be read (no /proc)."""
    started = _start_time(os.getpid() if pid is None else pid)
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - int(started) / os.sysconf("SC_CLK_TCK")) if started else 0.0


@dataclass
class Spec:
    """How to run one service."""

    name: str
    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None  # run as this user (PostgreSQL refuses root)
    stop_signal: int = signal.SIGTERM
    cwd: str | None = None


class Supervisor:
    def __init__(self, state_dir: Path, ephemeral: bool) -> None:
        self.state_dir = state_dir
        self.ephemeral = ephemeral
        self.pids_file = state_dir / "pids.json"
        self.log_dir = state_dir / "logs"
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # --- bookkeeping --------------------------------------------------------------------------------
    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data: dict[str, dict[str, object]] = json.loads(self.pids_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def _write(self, data: Mapping[str, object]) -> None:
        write_atomic(self.pids_file, json.dumps(data, indent=2))

    def alive(self, name: str) -> bool:
        entry = self._read().get(name)
        if not entry:
            return False
        return _start_time(int(str(entry["pid"]))) == entry["start"]

    def pid(self, name: str) -> int | None:
        entry = self._read().get(name)
        return int(str(entry["pid"])) if entry and self.alive(name) else None

    def names(self) -> list[str]:
        return list(self._read())

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, spec: Spec) -> int:
        if self.alive(spec.name):
            raise ProcessError(f"{spec.name} is already running")
        if (dead := self._children.pop(spec.name, None)) is not None:
            dead.poll()  # reap the earlier run (it died under us, e.g. a chaos fault): no zombie, no ResourceWarning
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{spec.name}.log").open("ab")
        account = pwd.getpwnam(spec.user) if spec.user and os.geteuid() == 0 else None
        deathsig = spec.stop_signal if self.ephemeral else 0

        def preexec() -> None:
            if account is not None:
                os.setgid(account.pw_gid)
                os.initgroups(account.pw_name, account.pw_gid)
                os.setuid(account.pw_uid)
            if deathsig:  # after setuid: a credential change clears the parent-death signal
                die_with_parent(deathsig)

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **spec.env}
        if account is not None:
            env["HOME"] = account.pw_dir
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
            preexec_fn=preexec,
        )
        log.close()
        self._children[spec.name] = proc
        start = None
        deadline = time.monotonic() + 2
        while start is None and time.monotonic() < deadline and proc.poll() is None:
            start = _start_time(proc.pid)
        data = self._read()
        data[spec.name] = {"pid": proc.pid, "start": start, "signal": int(spec.stop_signal), "argv": spec.argv[:1]}
        self._write(data)
        return proc.pid

    def signal(self, name: str, sig: int) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        os.kill(pid, sig)
        return True

    def stop(self, name: str, timeout: float = 15) -> None:
        """Stop a service with its own signal; after ``timeout`` kill its whole process group."""
        data = self._read()
        entry = data.get(name)
        if entry is not None and self.alive(name):
            pid = int(str(entry["pid"]))
            try:
                os.kill(pid, signal.SIGCONT)  # a stopped (SIGSTOP) process cannot act on SIGTERM
                os.kill(pid, int(str(entry["signal"])))
            except ProcessLookupError:
                pass
            try:
                wait_for(lambda: not self._group_alive(pid), timeout, f"{name} still running")
            except ProcessError:
                self._kill_group(pid)
                wait_for(lambda: not self._group_alive(pid), 5, f"{name} survived SIGKILL")
        child = self._children.pop(name, None)
        if child is not None:
            child.wait(timeout=5)
        data.pop(name, None)
        self._write(data)

    def reap(self) -> None:
        """Collect the exit status of children that have ended (another process may have stopped them)."""
        for child in self._children.values():
            child.poll()

    def stop_all(self) -> None:
        for name in reversed(self.names()):
            self.stop(name)

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def log_tail(self, name: str, lines: int = 8) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def private_dir(folder: Path) -> None:
    """Only we may list or enter ``folder`` — and, when we are root, the postgres user may enter it (group
    postgres, mode 0710), to reach a data directory of its own inside; no one else."""
    user = postgres_user()
    if user is None:
        folder.chmod(0o700)
        return
    shutil.chown(folder, group=user)
    folder.chmod(0o710)


def owned_dir(prefix: str, root: Path, mode: int = 0o700) -> Path:
    """A fresh folder ``<root>/<prefix><our pid>-…`` (its owner marker: :func:`sweep_orphans` removes it once we are
    gone), created with ``mode``; folders of owners that are gone are removed first."""
    sweep_orphans(prefix, root)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))
    path.chmod(mode)
    return path


def sweep_orphans(prefix: str, root: Path) -> list[Path]:
    """Remove what runs whose process no longer exists (a SIGKILLed run) left in ``<root>/<prefix><pid>-…``: their
    recorded processes first, then the folder; returns what went."""
    removed = []
    for path in root.glob(f"{prefix}*"):
        owner = path.name[len(prefix) :].split("-")[0]
        if not owner.isdigit() or pid_alive(int(owner)):
            continue
        Supervisor(path, ephemeral=True).stop_all()
        if _remove_tree(path):
            removed.append(path)
    return removed


def _remove_tree(path: Path, within: float = 10.0) -> bool:
    """Remove ``path``; a process of the dead run that no record names (a set-up tool's child) may still write into
    it for a moment, and a file made during the removal fails it, so remove until it is gone or ``within`` ends."""
    def gone() -> bool:
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()

    try:
        wait_until(gone, within, f"{path} removed", interval=0.2)
    except Expired:
        return False
    return True


def stop_on_exit(stop: Callable[[], None]) -> None:
    """Call ``stop`` at interpreter exit and on SIGTERM (then exit 128 + 15, after any earlier handler)."""
    atexit.register(stop)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        stop()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
