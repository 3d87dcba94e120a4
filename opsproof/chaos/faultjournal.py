"""The fault journal: every fault is written down on disk *before* it is injected and crossed out once its rollback
has run, so a run killed outright (SIGKILL: no rollback, no audit) leaves the list of what to undo.

``opsproof chaos recover`` — and the start and the end of every chaos run — plays the rollback of every entry whose
run is gone (or is this process); the rollbacks are idempotent, so recovering twice is harmless. The journal is
``<sandbox dir>/chaos-journal.jsonl`` for a sandbox, else ``$XDG_STATE_HOME/opsproof/chaos-journal.jsonl``: one
JSON line per fault with its rollback (a function of this extension's own catalogue, :data:`UNDO`), the rollback's
arguments, the run's configuration (paths; never a secret) and the run's process. An entry is appended with one
``write`` and an ``fsync``; crossing out rewrites the file atomically; both under a lock. The file is 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsproof.chaos.context import Configuration, Context
from opsproof.util.process import _start_time

FILE = "chaos-journal.jsonl"
UNDO = frozenset({  # every rollback a journal entry may name: nothing else is ever imported or called from one
    "opsproof.chaos.faults:ensure_running", "opsproof.chaos.faults:enable_supervisor",
    "opsproof.chaos.proxy:proxy_clear", "opsproof.chaos.redisfaults:unpause_clients",
    "opsproof.chaos.redisfaults:release_memory", "opsproof.chaos.targets:rollback_fault"})
_PATHS = ("opsproof_inventory", "opsproof_sandbox_dir", "opsproof_out")
_SECRET = ("opsproof_pg_dsn",)
log = logging.getLogger("opsproof.chaos")


def location(sandbox_dir: Path | str | None) -> Path:
    """The journal of a sandbox folder, or the user's journal for targets outside any sandbox."""
    if sandbox_dir:
        return Path(sandbox_dir) / FILE
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "opsproof" / FILE


def of(configuration: Configuration) -> Path:
    return location(Context.of(configuration).sandbox_dir)


def _name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}:{fn.__name__}"


def _portable(configuration: Configuration) -> dict[str, Any]:
    """The run's opsproof configuration as a later process can use it: absolute paths, no secret."""
    cfg = {k: v for k, v in (configuration or {}).items() if k.startswith("opsproof_") and k not in _SECRET}
    return {k: str(Path(v).absolute()) if k in _PATHS and v else v for k, v in cfg.items()}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record(configuration: Configuration, key: str, fault: str, undo: Callable[..., Any], /,
           **arguments: Any) -> None:
    """Before injecting ``fault`` on ``key`` (``service[redis]``, ``proxy[pgproxy]`` …): how to undo it."""
    if _name(undo) not in UNDO:
        raise ValueError(f"{_name(undo)} is not a rollback of the journal's catalogue")
    me = os.getpid()
    entry = {"id": uuid.uuid4().hex, "key": key, "fault": fault, "undo": _name(undo), "arguments": arguments,
             "configuration": _portable(configuration), "pid": me, "start": _start_time(me), "at": time.time()}
    path = of(configuration)
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def undone(configuration: Configuration, key: str) -> None:
    """After the rollback of ``key`` ran: cross out every entry it undid."""
    _remove(of(configuration), lambda e: e.get("key") == key)


def entries(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError):  # a line cut by a crash mid-write holds nothing to undo yet
            entry = json.loads(line)
            if isinstance(entry, dict):
                found.append(entry)
    return found


def _remove(path: Path, gone: Callable[[dict[str, Any]], bool]) -> None:
    if not path.exists():
        return
    with _locked(path):
        keep = [e for e in entries(path) if not gone(e)]
        tmp = path.with_name(f".{path.name}.partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(json.dumps(e) + "\n" for e in keep))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)


def _with_id(entry_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("id") == entry_id


def _owner_running(entry: dict[str, Any]) -> bool:
    """Whether the run that injected the fault is another process still running (its rollbacks are its own)."""
    pid = entry.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and _start_time(pid) is not None \
        and _start_time(pid) == entry.get("start")


def _redacted(configuration: Configuration, text: str) -> str:
    try:
        return Context.of(configuration).redact(text)
    except Exception:  # no inventory to know the secrets by: say less
        return "(details withheld: the inventory could not be loaded to redact them)"


@dataclass
class Recovery:
    rolled_back: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # faults of a run still in progress: left to it


def recover(path: Path) -> Recovery:
    """Roll back every fault the journal at ``path`` lists whose run is gone (or is us); idempotent."""
    from opsproof.chaos import timeline

    result = Recovery()
    for entry in entries(path):
        what = f"{entry.get('fault')} ({entry.get('key')})"
        if _owner_running(entry):
            result.running.append(f"{what}, run pid {entry['pid']}")
            continue
        if entry.get("undo") not in UNDO:
            result.problems.append(f"{what}: rollback {entry.get('undo')!r} is not in the journal's catalogue")
            continue
        module, _, func = str(entry["undo"]).partition(":")
        configuration = entry.get("configuration") or {}
        try:
            getattr(importlib.import_module(module), func)(**entry.get("arguments", {}), configuration=configuration)
        except Exception as e:  # one rollback failing must not stop the others
            result.problems.append(f"{what}: {type(e).__name__}: {_redacted(configuration, str(e))}")
            continue
        _remove(path, _with_id(entry["id"]))
        timeline.mark("leftover_rolled_back", fault=entry.get("fault"), by=entry["undo"])
        result.rolled_back.append(what)
    for line in result.rolled_back:
        log.warning("opsproof: rolled back a fault left by an earlier run: %s", line)
    return result
