"""Scratch instances a drill restores into, and the drill's working folder — never the source, never left behind.

A local PostgreSQL cluster of the backup's major version (initdb in the drill's folder, listening on a Unix
socket only, tuned for a throwaway restore: fsync off, no WAL archiving), or a database of its own on a scratch
server the inventory names; a local redis-server on loopback. Processes run under the sandbox's supervisor with a
parent-death signal, so a drill killed outright still stops them; folders of drills whose process is gone are
removed by the next drill (:func:`sweep`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from redis.backoff import NoBackoff
from redis.retry import Retry

from opsproof.drill.tools import DrillError, pg_tool, redis_tool, run_tool
from opsproof.result import reason
from opsproof.util.process import (
    ProcessError,
    Spec,
    Supervisor,
    free_port,
    owned_dir,
    postgres_user,
    private_dir,
    sweep_orphans,
    wait_for,
)
from opsproof.util.process import (
    pid_alive as pid_alive,  # re-exported: the drill tests ask it
)

PREFIX = "opsproof-drill-"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def workdir(root: Path | None = None) -> Path:
    """A fresh folder for one drill, private (fresh dumps and restored data live in it): 0700, or 0710 with group
    postgres when we are root, so that the scratch server, run as postgres, reaches its data directory."""
    folder = owned_dir(PREFIX, root or Path("/tmp"))
    private_dir(folder)
    return folder


def sweep(root: Path | None = None) -> list[Path]:
    """Remove what drills whose process no longer exists left behind (a SIGKILLed run); returns what went."""
    return sweep_orphans(PREFIX, root or Path("/tmp"))


class _Local:
    """A scratch server this drill runs itself, under a Supervisor of its own."""

    sup: Supervisor

    def stop(self) -> None:
        self.sup.stop_all()

    def leftovers(self) -> list[str]:
        return [f"process {n}" for n in self.sup.names() if self.sup.alive(n)]


class ScratchPostgres(_Local):
    """A throwaway local cluster; ``conninfo`` reaches its restore database over a Unix socket."""

    DATABASE = "opsproof_restore"

    def __init__(self, folder: Path, major: int, jobs: int = 2) -> None:
        self.folder = folder
        self.major = major
        self.jobs = jobs
        self.sup = Supervisor(folder, ephemeral=True)
        self.data = folder / "pg-data"
        self.run_dir = folder / "pg-run"
        self.port = 5432
        self.argv: list[str] = []
        self.where = f"a local PostgreSQL {major} cluster in {self.data}"

    @property
    def conninfo(self) -> str:
        return make_conninfo(host=str(self.run_dir), port=str(self.port), user="postgres", dbname=self.DATABASE)

    def tool_env(self) -> dict[str, str]:
        return {}

    def start(self) -> None:
        try:
            user = postgres_user()
        except ProcessError as e:
            raise DrillError(str(e)) from None
        initdb, postgres = pg_tool("initdb", self.major), pg_tool("postgres", self.major)
        for d in (self.data, self.run_dir):
            d.mkdir(mode=0o700)
            if user:
                shutil.chown(d, user, user)
        done = run_tool(["runuser", "-u", user, "--", initdb, *self._initdb_args()] if user
                        else [initdb, *self._initdb_args()], timeout=120)
        if done.returncode != 0:
            raise DrillError(f"initdb of the scratch cluster failed: {done.stderr.strip()[-500:]}")
        self.port = free_port()
        self.argv = [postgres, "-D", str(self.data), "-p", str(self.port), "-k", str(self.run_dir),
                "-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "synchronous_commit=off", "-c", "wal_level=minimal", "-c", "max_wal_senders=0",
                "-c", "archive_mode=off", "-c", "autovacuum=off", "-c", "max_wal_size=8GB",
                "-c", "checkpoint_timeout=30min", "-c", "shared_buffers=256MB", "-c", "maintenance_work_mem=256MB",
                "-c", f"max_parallel_workers_per_gather={max(2, self.jobs)}",
                "-c", f"max_parallel_maintenance_workers={max(2, self.jobs)}",
                "-c", "log_min_messages=warning", "-c", "cluster_name=opsproof-drill-scratch"]
        self.launch()
        with psycopg.connect(host=str(self.run_dir), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.DATABASE} TEMPLATE template0 ENCODING 'UTF8'")

    def launch(self) -> None:
        """Start the server on its data directory (again, after a stop)."""
        try:
            self.sup.start(Spec("scratch-postgres", self.argv, user=postgres_user(), stop_signal=signal.SIGINT))
            wait_for(self._ready, 60, "the scratch PostgreSQL to accept connections", fail_fast=DrillError)
        except ProcessError as e:
            raise DrillError(f"the scratch PostgreSQL did not start: {e}") from None

    def _initdb_args(self) -> list[str]:
        return ["-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                "--no-sync"]

    def _ready(self) -> bool:
        if not self.sup.alive("scratch-postgres"):
            raise DrillError(f"the scratch PostgreSQL exited: {self.sup.log_tail('scratch-postgres', 3)}")
        try:
            with psycopg.connect(host=str(self.run_dir), port=self.port, user="postgres", dbname="postgres",
                                 connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False  # still starting

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)



def _endpoint(params: dict[str, Any]) -> tuple[str, str, str]:
    host = str(params.get("host") or params.get("hostaddr") or "/var/run/postgresql")
    if host.startswith("/"):
        host = "loopback"  # a Unix socket is a server on this machine, as localhost:PORT is
    else:
        with contextlib.suppress(OSError):
            host = str(socket.getaddrinfo(host, None)[0][4][0])
        host = "loopback" if host in LOOPBACK or host.startswith("127.") else host
    return host, str(params.get("port") or 5432), str(params.get("dbname") or params.get("user") or "")


def same_server(source_dsn: str, scratch_dsn: str) -> str | None:
    """Why ``scratch_dsn`` is the source's own server (host and port, after resolving names), or None."""
    src = _endpoint(conninfo_to_dict(source_dsn))
    dst = _endpoint(conninfo_to_dict(scratch_dsn))
    if src[:2] == dst[:2]:
        same_db = " and database" if src[2] == dst[2] else ""
        return f"same host{'' if src[0] != 'loopback' else ' (loopback)'}, port {src[1]}{same_db} as the source"
    return None


def _identity(conn: psycopg.Connection[Any]) -> str | None:
    try:
        row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


class ScratchServer:
    """A database of the drill's own on a scratch server from the inventory (``scratch.dsn``), dropped after."""

    def __init__(self, dsn: str, source_dsn: str, source: str, source_identity: str | None = None) -> None:
        self.dsn = dsn
        self.source_identity = source_identity  # the source's system identifier from the backup's manifest
        self.params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
        host, port, _ = _endpoint(self.params)
        self.where = f"a database of its own on the scratch server {host}:{port}"
        self.database = f"opsproof_drill_{time.strftime('%Y%m%d%H%M%S')}_{os.getpid()}"
        self.created = False
        reason = same_server(source_dsn, dsn)
        if reason is not None:
            raise DrillError(f"refused: the scratch target {self._shown()} is the source {source} ({reason}). "
                             "A drill restores into a scratch instance, never into the source. Fix: point "
                             "scratch.dsn at another server, or remove it to use a throwaway local cluster")
        self.source_dsn = source_dsn
        self.source = source

    def _shown(self) -> str:
        host, port, db = _endpoint(self.params)
        return f"{self.params.get('host', host)}:{port}/{db}"

    @property
    def conninfo(self) -> str:
        """Without the password (it goes to tools as PGPASSWORD: argv is visible to every user in `ps`)."""
        return make_conninfo(**{k: v for k, v in self.params.items() if k not in ("password", "dbname")},
                             dbname=self.database)

    def tool_env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.params["password"]} if "password" in self.params else {}

    def start(self) -> None:
        """Refuse the source's own cluster (or a physical replica of it) by system identifier: the live source's,
        else the one the backup's manifest recorded. Without either, nothing is created (fail closed)."""
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            mine = _identity(conn)
            theirs, why = self.source_identity, "the backup has no manifest with the source's identity"
            try:
                with psycopg.connect(self.source_dsn, connect_timeout=10) as src:
                    src.read_only = True
                    theirs = _identity(src) or theirs
            except psycopg.Error as e:
                why = f"the source does not answer ({reason(e)}) and {why}"
            if mine is None or theirs is None:
                raise DrillError(f"refused: cannot prove that the scratch target {self._shown()} is not the source "
                                 f"{self.source}'s server: {why if theirs is None else 'its identity is unreadable'}"
                                 ". Fix: let the drill reach the source, take backups with `opsproof backup` "
                                 "(its manifest records the identity), or remove scratch.dsn to use a local cluster")
            if mine == theirs:
                raise DrillError(f"refused: the scratch target {self._shown()} is the source {self.source}'s "
                                 "own server (same system identifier). Fix: point scratch.dsn at another server")
            conn.execute(f'CREATE DATABASE "{self.database}" TEMPLATE template0')
            self.created = True

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, password=self.params.get("password"), autocommit=True,
                               connect_timeout=10)

    def stop(self) -> None:
        if self.created:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.created = False

    def leftovers(self) -> list[str]:
        return [f"database {self.database} on the scratch server"] if self.created else []


class ScratchRedis(_Local):
    """A local redis-server on loopback that loads an RDB file at start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "redis"
        self.sup = Supervisor(folder, ephemeral=True)
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.where = f"a local redis-server in {self.folder}"

    def start(self, rdb: Path) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)  # the backup's data: for this user only (not postgres either)
        shutil.copyfile(rdb, self.folder / "restore.rdb")
        conf = self.folder / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
        with os.fdopen(fd, "w") as fh:
            fh.write(f"requirepass {self.password}\n")
        self.port = free_port()
        argv = [redis_tool("redis-server"), str(conf), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.folder), "--dbfilename", "restore.rdb",
                "--daemonize", "no", "--maxmemory", "0"]
        try:
            self.sup.start(Spec("scratch-redis", argv))
            wait_for(self._loaded, 600, "the scratch redis-server to load the RDB", fail_fast=DrillError)
        except ProcessError as e:
            raise DrillError(f"the scratch redis-server did not load the RDB: {e}") from None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=30,
                           socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))

    def _loaded(self) -> bool:
        if not self.sup.alive("scratch-redis"):
            raise DrillError(f"the scratch redis-server exited: {self.sup.log_tail('scratch-redis', 3)}")
        try:
            with self.client() as client:
                return int(client.info("persistence").get("loading", 1)) == 0
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False  # still starting or loading
        except redis.RedisError as e:
            raise DrillError(f"the scratch redis-server answers wrongly: {e}") from None

