"""`opsproof backup`: a consistent backup plus the manifest a DR drill verifies it against.

PostgreSQL: one read-only REPEATABLE READ session exports its snapshot (``pg_export_snapshot()``); ``pg_dump
--snapshot`` dumps exactly that snapshot while ``jobs`` more sessions, importing the same snapshot, count and
checksum every table — so the manifest describes precisely the data inside the dump. Redis: ``redis-cli --rdb``
(a replica-style SYNC: nothing is written on the server) and the key count read back from the file.

The backup is written under a temporary name and renamed once complete, so a half-written file never looks
like a backup; a failure or Ctrl-C removes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from opsproof.backupfiles import manifest_path as manifest_path  # re-exported: the manifest beside a backup
from opsproof.drill import pgdata
from opsproof.drill.tools import DrillError, last_line, pg_tool, redis_tool, run_tool, spawn, stop_process
from opsproof.result import reason
from opsproof.util.process import write_atomic

MANIFEST_FORMAT = "opsproof-backup-manifest/1"
PRIVATE = 0o600  # a backup and its manifest (row counts, checksums of the tables' content): the owner's only


def read_manifest(backup: Path) -> dict[str, Any] | None:
    path = manifest_path(backup)
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DrillError(f"manifest {path} is unreadable ({e})") from None
    if data.get("format") != MANIFEST_FORMAT:
        raise DrillError(f"manifest {path} is not an opsproof manifest (format {data.get('format')!r})")
    return data


def sha256(path: Path) -> str:
    """Of a file, or of a directory-format dump (its files' names and contents, in name order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def naming(name: str, pattern: str, directory: str | None, suffix: str) -> str:
    """The pattern fresh backups of entry ``name`` are named after: the entry's own when it has a directory and a
    pattern, else ``NAME_*.dump`` / ``NAME_*.rdb``."""
    return pattern if directory and pattern != "*" else f"{name}_*{suffix}"


def backup_name(pattern: str, now: float, default_suffix: str) -> str:
    """The file name for a new backup that the entry's pattern matches: ``apex_full_*.dump`` →
    ``apex_full_20261127T050000Z.dump``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    if "*" in pattern and not re.search(r"[?\[\]]", pattern):
        return pattern.replace("*", stamp, 1).replace("*", "")
    return f"backup_{stamp}{default_suffix}"


def _dump_format(name: str) -> tuple[str, list[str]]:
    if name.endswith(".sql.gz"):
        return "plain", ["--format=plain", "--compress=6"]
    if name.endswith(".sql"):
        return "plain", ["--format=plain"]
    return "custom", ["--format=custom"]


def _libpq(dsn: str, timeout_s: float) -> tuple[str, dict[str, str]]:
    """The DSN without its password (for argv, which `ps` shows) and the password as PGPASSWORD."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    env = {"PGPASSWORD": params.pop("password")} if "password" in params else {}
    params.setdefault("connect_timeout", str(max(1, int(timeout_s))))
    return make_conninfo(**params), env


@contextmanager
def _partial(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final``: renamed to it on success, removed on any failure or interrupt."""
    tmp = final.with_name(f".{final.name}.partial")
    try:
        yield tmp
        tmp.replace(final)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def _folder(out_dir: Path) -> None:
    """``out_dir``, created owner-only (0700, whatever the umask) when it does not exist: its dumps hold every row
    and their names say what they are. A folder that exists keeps the mode its owner gave it."""
    if out_dir.is_dir():
        return
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(mode=0o700, exist_ok=True)
    out_dir.chmod(0o700)


def take_postgres(dsn: str, out_dir: Path, pattern: str = "*.dump", jobs: int = 2, source: str = "",
                  connect_timeout_s: float = 10, timeout_s: float = 6 * 3600) -> tuple[Path, dict[str, Any]]:
    """A consistent pg_dump of the database behind ``dsn`` and its manifest, in ``out_dir``; a dump that has not
    ended after ``timeout_s`` is killed (and its partial file removed)."""
    _folder(out_dir)
    started = time.time()
    final = out_dir / backup_name(pattern, started, ".dump")
    dump_format, format_args = _dump_format(final.name)
    conninfo, env = _libpq(dsn, connect_timeout_s)
    try:
        snap = psycopg.connect(dsn, connect_timeout=max(1, int(connect_timeout_s)))
    except psycopg.Error as e:
        raise DrillError(f"cannot connect to {source or 'the source'}: {reason(e)}") from None
    try:
        with snap:
            snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            pgdata.pin_session(snap)
            snapshot = str((snap.execute("SELECT pg_export_snapshot()").fetchone() or [""])[0])
            version_num = int((snap.execute("SHOW server_version_num").fetchone() or [0])[0])
            version = str((snap.execute("SHOW server_version").fetchone() or [""])[0])
            database = str((snap.execute("SELECT current_database()").fetchone() or [""])[0])
            identity = system_identifier(snap)
            names = pgdata.by_size(snap, pgdata.tables(snap))
            objects = pgdata.objects(snap)
            pg_dump = pg_tool("pg_dump", version_num // 10000, at_least=True)
            with _partial(final) as tmp:
                proc = spawn([pg_dump, f"--snapshot={snapshot}", *format_args, f"--file={tmp}", "--no-password",
                              f"--lock-wait-timeout={pgdata.LOCK_TIMEOUT}", "--dbname", conninfo], env=env)
                try:
                    def in_snapshot() -> psycopg.Connection[Any]:
                        conn = psycopg.connect(dsn, connect_timeout=max(1, int(connect_timeout_s)))
                        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(snapshot))  # the dump's own
                        return conn

                    tables = pgdata.tables_data(in_snapshot, names, jobs)
                    _, err = proc.communicate(timeout=max(1.0, timeout_s - (time.time() - started)))
                except subprocess.TimeoutExpired:
                    raise DrillError(f"pg_dump of {source or database} did not finish within {timeout_s:g} s") from None
                finally:
                    stop_process(proc)
                if proc.returncode != 0:
                    raise DrillError(f"pg_dump of {source or database} failed (exit {proc.returncode}): "
                                     f"{' / '.join(err.decode(errors='replace').strip().splitlines())[-600:]}")
            snap.rollback()
    except psycopg.Error as e:  # e.g. a table locked past the lock timeout: a finding, not a traceback
        raise DrillError(f"the manifest of {source or 'the source'} failed: {reason(e)}") \
            from None
    manifest = {
        "format": MANIFEST_FORMAT,
        "kind": "postgres",
        "file": final.name,
        "dump_format": dump_format,
        "sha256": sha256(final),
        "size_bytes": final.stat().st_size,
        "taken_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "taken_at_unix": started,
        "duration_s": round(time.time() - started, 3),
        "source": source,
        "database": database,
        "server_version": version,
        "server_version_num": version_num,
        "snapshot": snapshot,
        "system_identifier": identity,  # lets a drill refuse the source's own server as scratch, source unreachable
        "checksum_method": pgdata.CHECKSUM_METHOD,
        "tables": tables,
        "objects": objects,
    }
    write_atomic(manifest_path(final), json.dumps(manifest, indent=2) + "\n", PRIVATE)
    return final, manifest


def system_identifier(conn: psycopg.Connection[Any]) -> str | None:
    """The cluster's identity (``pg_control_system()``; shared by its physical replicas), or None without the
    right to read it."""
    try:
        with conn.transaction():  # a savepoint inside the snapshot's transaction: a refusal must not abort it
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return str(row[0]) if row else None


def redis_cli_args(url: str) -> tuple[list[str], dict[str, str]]:
    """redis-cli connection arguments for a redis:// URL; the password goes in REDISCLI_AUTH, never argv."""
    parts = urlsplit(url)
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.username:
        args += ["--user", unquote(parts.username)]
    if parts.scheme == "rediss":
        args.append("--tls")
    env = {"REDISCLI_AUTH": unquote(parts.password)} if parts.password else {}
    return args, env


def rdb_facts(path: Path) -> dict[str, Any]:
    """``redis-check-rdb``: whether the file is whole (checksum, structure) and what it holds."""
    done = run_tool([redis_tool("redis-check-rdb"), str(path)], timeout=600)
    text = done.stdout + done.stderr
    facts: dict[str, Any] = {"ok": done.returncode == 0 and "RDB looks OK" in text}
    for key, pattern in (("keys", r"\[info\] (\d+) keys read"), ("expires", r"\[info\] (\d+) expires"),
                         ("already_expired", r"\[info\] (\d+) already expired"),
                         ("ctime", r"AUX FIELD ctime = '(\d+)'")):
        m = re.search(pattern, text)
        if m:
            facts[key] = int(m.group(1))
    version = re.search(r"AUX FIELD redis-ver = '([^']+)'", text)
    facts["redis_version"] = version.group(1) if version else None
    if not facts["ok"]:
        lines = [ln for ln in text.splitlines() if ln.strip() and "AUX FIELD" not in ln]
        facts["error"] = " / ".join(lines[-4:])[-500:]
    return facts


def take_redis(url: str, out_dir: Path, pattern: str = "*.rdb", source: str = "",
               timeout_s: float = 600) -> tuple[Path, dict[str, Any]]:
    """An RDB snapshot of the Redis server behind ``url`` (``redis-cli --rdb``) and its manifest."""
    _folder(out_dir)
    started = time.time()
    final = out_dir / backup_name(pattern, started, ".rdb")
    args, env = redis_cli_args(url)
    with _partial(final) as tmp:
        done = run_tool([redis_tool("redis-cli"), *args, "--rdb", str(tmp)], env=env, timeout=timeout_s)
        if done.returncode != 0 or not tmp.exists():
            raise DrillError(f"redis-cli --rdb from {source or 'the source'} failed (exit {done.returncode}): "
                             f"{last_line(done.stderr or done.stdout)}")
        facts = rdb_facts(tmp)
        if not facts["ok"]:
            raise DrillError(f"the RDB fetched from {source or 'the source'} does not check: {facts.get('error')}")
    manifest = {
        "format": MANIFEST_FORMAT,
        "kind": "redis",
        "file": final.name,
        "sha256": sha256(final),
        "size_bytes": final.stat().st_size,
        "taken_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "taken_at_unix": started,
        "source": source,
        "duration_s": round(time.time() - started, 3),
        "redis_version": facts.get("redis_version"),
        "keys": facts.get("keys", 0) - facts.get("already_expired", 0),  # live keys when taken
        "keys_in_file": facts.get("keys", 0),  # every key the file holds, expired or not
        "expires": facts.get("expires", 0),
    }
    write_atomic(manifest_path(final), json.dumps(manifest, indent=2) + "\n", PRIVATE)
    os.utime(final, (started, started))
    return final, manifest
