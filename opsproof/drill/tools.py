"""Running PostgreSQL's and Redis's command-line tools for a drill: the right version, bounded, never orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from opsproof.util.process import ProcessError, die_with_parent, find_binary

PG_VERSIONS = range(12, 19)


class DrillError(RuntimeError):
    """A drill phase cannot go on; the message says what is wrong (and, where there is one, the fix)."""


def pg_tool(name: str, major: int | None, at_least: bool = False) -> str:
    """``/usr/lib/postgresql/MAJOR/bin/NAME`` — the server's own major version (a scratch server must match the
    dump's), or with ``at_least`` the oldest installed one that is not older (pg_dump must not be older than the
    server it dumps); ``major`` None: the newest installed (it reads every older archive)."""
    if major is None:
        majors = sorted(PG_VERSIONS, reverse=True)
    else:
        majors = [m for m in PG_VERSIONS if m >= major] if at_least else [major]
    for m in majors:
        candidate = Path(f"/usr/lib/postgresql/{m}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    wanted = "(any version)" if major is None else f"{major} or newer" if at_least else str(major)
    package = f"postgresql-{major}" if major is not None else "postgresql"
    raise DrillError(f"{name} of PostgreSQL {wanted} is not installed. Fix: apt-get install -y {package} "
                     "(a restore needs the tools, and a scratch server, of the backup's major version)")


def redis_tool(name: str) -> str:
    try:
        return find_binary(name, "redis-tools" if name == "redis-cli" else "redis-server")
    except ProcessError as e:
        raise DrillError(str(e)) from None


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "REDISCLI_"))}
    return {**base, "LANG": "C.UTF-8", **(env or {})}


def last_line(text: str) -> str:
    """The last non-empty line of a tool's output (where tools put their error), shortened."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:400] if lines else "no message"


def _die_with_us() -> None:
    die_with_parent(signal.SIGKILL)  # even a SIGKILLed drill leaves no restore running


def spawn(argv: Sequence[str], env: Mapping[str, str] | None = None, stdin: int | None = subprocess.DEVNULL,
          stdout: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """Start a tool in its own process group (stopped as a group), killed if this process dies. What it creates is
    its owner's only (umask 077): a dump holds every row, RLS tables included."""
    return subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=_env(env),
                            start_new_session=True, preexec_fn=_die_with_us, umask=0o077)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Kill a tool still running (its whole group) and reap it; nothing if it already ended."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def run_tool(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 600,
             ) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion within ``timeout``; killed (with its group) on timeout or interrupt."""
    proc = spawn(argv, env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise DrillError(f"{Path(argv[0]).name} did not finish within {timeout:g} s") from None
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out.decode(errors="replace"),
                                       err.decode(errors="replace"))
