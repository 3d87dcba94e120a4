"""The sandbox: real services from Debian's packages on free loopback ports, in one state folder.

PostgreSQL 15 (primary and a streaming replica), Redis with a maxmemory, the reference application (HTTP
and HTTPS), the PostgreSQL and Redis exporters, Prometheus with the runbooks' alert rules, Alertmanager and
a webhook receiver. ``up`` writes ``inventory.yaml`` describing all of it; ``down`` leaves nothing running.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import yaml

from opsproof.sandbox import configs, profile_setup, status
from opsproof.sandbox.process import (
    SandboxError,
    Spec,
    Supervisor,
    find_binary,
    free_port,
    postgres_user,
    wait_for,
)
from opsproof.sandbox.profiles import Profile
from opsproof.sandbox.profiles import load as load_profile
from opsproof.shape import PROXIES
from opsproof.shape import SERVICES as SERVICES  # re-exported: the sandbox's services
from opsproof.shape import default_dir as default_dir  # re-exported: where the sandbox lives
from opsproof.util.process import die_with_parent, private_dir, stop_on_exit

PG_BIN = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"]
PG_PACKAGE = "postgresql"
START_TIMEOUT = 30.0
APP_RESTART_DELAY_S = 6.0  # the app's keeper restarts it this long after it exits (systemd's RestartSec)


class Sandbox:
    def __init__(self, state_dir: Path | str | None = None, ephemeral: bool = False,
                 profile: str | None = None) -> None:
        self.dir = Path(state_dir) if state_dir else default_dir()
        self.dir = self.dir.absolute()
        self.ephemeral = ephemeral
        self.sup = Supervisor(self.dir, ephemeral)
        self.meta_file = self.dir / "sandbox.json"
        self.inventory_path = self.dir / "inventory.yaml"
        self.meta: dict[str, Any] = {}
        if self.meta_file.exists():
            self.meta = json.loads(self.meta_file.read_text())
        # a profile adds its system's shape (opsproof/sandbox/profiles/NAME.yaml); a running sandbox keeps its own
        name = self.meta.get("profile") or profile
        if profile and self.meta and self.meta.get("profile") != profile:
            raise SandboxError(f"{self.dir} holds a sandbox with profile {name or '(none)'}: take it down first "
                               f"(opsproof sandbox down --dir {self.dir}), or use another --dir")
        self.profile_spec: str | None = name  # as asked: a name, or names combined (signx,sophia)
        self.profile: Profile | None = load_profile(name) if name else None

    @property
    def services(self) -> tuple[str, ...]:
        """The sandbox's services, and its profile's (the Kubernetes API emulator, Celery workers)."""
        return SERVICES + (self.profile.services if self.profile else ())

    # --- public ---------------------------------------------------------------------------------------
    def up(self) -> Path:
        """Start every service (or finish a partial start); on any failure or Ctrl-C stop what started."""
        if self.running():
            return self.inventory_path
        self._check_binaries()
        profile_setup.require(self.profile)
        try:
            self._prepare()
            for name in self.services:
                self.start_service(name)
            self._warm_up()
            self._nightly_backup()
            self._write_inventory()
            if self.profile:
                profile_setup.write_env(self, self.profile)
        except BaseException:
            self.down()
            raise
        return self.inventory_path

    def down(self) -> None:
        """Stop every process this sandbox started (by recorded pid, never by name) and remove its state."""
        self.sup.stop_all()
        if self.dir.exists() and (self.meta_file.exists() or (self.dir / "pids.json").exists()):
            shutil.rmtree(self.dir, ignore_errors=True)

    def running(self) -> bool:
        return self.inventory_path.exists() and all(self.sup.alive(n) for n in self.services)

    def status(self) -> dict[str, str]:
        """Each service: up, stopped (SIGSTOP: it holds its port and answers nothing) or down, its address, and
        any fault set on it (a fault proxy's fault, the app's restarts disabled)."""
        ports = self.meta.get("ports", {})
        return {n: status.state(self, n) + (f" 127.0.0.1:{ports[n]}" if n in ports else "")
                + "".join(f", {f}" for f in status.faults(self, n)) for n in self.services}

    def healthy(self) -> bool:
        """Running, with nothing stopped and no fault set."""
        return self.running() and all(status.state(self, n) == "up" and not status.faults(self, n)
                                      for n in self.services)

    def stop_service(self, name: str) -> None:
        self.sup.stop(name)

    def start_service(self, name: str) -> None:
        if not hasattr(self, "bin"):  # a Sandbox opened on a running one (chaos rollbacks) has not looked yet
            self._check_binaries()
        spec, ready = self._spec(name)
        self.sup.start(spec)

        def up() -> bool:
            # our process must be the one answering: a service that died (say, its port was taken) while
            # something else answers on that port must not pass for ready
            if not self.sup.alive(name):
                raise SandboxError(f"{name} exited during start")
            return ready()

        try:
            wait_for(up, START_TIMEOUT, f"{name} did not become ready", fail_fast=SandboxError)
        except SandboxError as e:
            tail = self.sup.log_tail(name)
            raise SandboxError(f"{e}; last lines of {self.sup.log_dir / (name + '.log')}:\n{tail}") from None

    def service_pid(self, name: str) -> int | None:
        """The pid of the process that is the service: the app's is in its keeper's pid file (chaos faults)."""
        if name != "app":
            return self.sup.pid(name)
        try:
            return int(self.keeper_files()["pidfile"].read_text())
        except (OSError, ValueError):
            return None

    def service_alive(self, name: str) -> bool:
        return self.sup.alive(name)

    def signal(self, name: str, sig: int) -> None:
        if not self.sup.signal(name, sig):
            raise SandboxError(f"{name} is not running")

    def port(self, name: str) -> int:
        return int(self.meta["ports"][name])

    def dsn(self, role: str = "postgres", db: str = "app", service: str = "postgres") -> str:
        password = self.meta["passwords"][role]
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port(service)}/{db}"

    def redis_url(self) -> str:
        return f"redis://:{self.meta['passwords']['redis']}@127.0.0.1:{self.port('redis')}/0"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def keeper_files(self) -> dict[str, Path]:
        """The app keeper's files: the app's pid, the hold file (no restart while it exists), the events log."""
        app = self.dir / "app"
        return {"pidfile": app / "app.pid", "hold": app / "no-restart", "events": app / "keeper.jsonl"}

    # --- setup ----------------------------------------------------------------------------------------
    def _check_binaries(self) -> None:
        self.bin = {
            "initdb": find_binary("initdb", PG_PACKAGE, PG_BIN),
            "postgres": find_binary("postgres", PG_PACKAGE, PG_BIN),
            "pg_basebackup": find_binary("pg_basebackup", PG_PACKAGE, PG_BIN),
            "redis": find_binary("redis-server", "redis-server"),
            "prometheus": find_binary("prometheus", "prometheus"),
            "alertmanager": find_binary("prometheus-alertmanager", "prometheus-alertmanager"),
            "postgres_exporter": find_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter"),
            "redis_exporter": find_binary("prometheus-redis-exporter", "prometheus-redis-exporter"),
        }

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        private_dir(self.dir)  # it holds the sandbox's passwords
        if (self.dir / "pids.json").exists() and self.sup.names():
            self.sup.stop_all()  # left over from a crashed run
        for parent in self.dir.parents:
            if os.geteuid() == 0 and not parent.stat().st_mode & 0o001:
                raise SandboxError(f"the postgres user cannot reach {self.dir} ({parent} is not world-searchable). "
                                   "Fix: use --sandbox-dir under /tmp.")
        for sub in ("pg", "redis", "prometheus", "alertmanager", "tls", "webhook", "app", "backups"):
            d = self.dir / sub
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        listening = [n for n in self.services if not n.startswith(("celery_", "standins"))]  # one each: http_NAME
        listening += profile_setup.ports(self.profile) if self.profile else []
        ports = {n: free_port() for n in listening} | {"app_tls": free_port(), "proxy_control": free_port(),
                                                     "pgproxy_control": free_port()}
        roles = profile_setup.passwords(self.profile) if self.profile else []
        passwords = {r: secrets.token_urlsafe(18) for r in ("postgres", "app", "opsproof_monitor", "opsproof_backup",
                                                              "redis", *roles)}
        self.meta = {"ports": ports, "passwords": passwords, "created": dt.datetime.now(dt.UTC).isoformat(),
                     "profile": self.profile_spec}
        fd = os.open(self.meta_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.meta, f)
        self._init_postgres()
        configs.write_tls(self.dir / "tls")
        rules, receivers = (self.profile.alert_rules, self.profile.alert_receivers) if self.profile else ([], [])
        (self.dir / "prometheus" / "rules.yml").write_text(configs.rules_yaml(configs.RULES + rules))
        (self.dir / "prometheus" / "prometheus.yml").write_text(
            configs.prometheus_yaml(ports, str(self.dir / "prometheus" / "rules.yml"), jobs=self._jobs()))
        (self.dir / "alertmanager" / "alertmanager.yml").write_text(
            configs.alertmanager_yaml(ports["webhook"], receivers=receivers))
        if self.profile:
            profile_setup.prepare(self, self.profile)

    def _run(self, argv: list[str], user: str | None, env: dict[str, str] | None = None) -> None:
        def demote() -> None:
            if user is not None:
                account = pwd.getpwnam(user)
                os.setgid(account.pw_gid)
                os.setuid(account.pw_uid)
            # after the uid change (which clears it): a set-up tool (initdb, pg_basebackup) is in no pid record, so
            # it must end with us — a SIGKILLed run's initdb kept writing into the folder the next run was removing
            die_with_parent(signal.SIGKILL)

        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, preexec_fn=demote,
                              env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **(env or {})})
        if done.returncode != 0:
            raise SandboxError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-800:]}")

    def _init_postgres(self) -> None:
        user = postgres_user()
        pg = self.dir / "pg"
        for sub in ("data", "run"):
            (pg / sub).mkdir(mode=0o700)
            if user:
                shutil.chown(pg / sub, user, user)
        pwfile = pg / "pw"
        pwfile.write_text(self.meta["passwords"]["postgres"])
        if user:
            shutil.chown(pwfile, user, user)
        pwfile.chmod(0o600)
        self._run([self.bin["initdb"], "-D", str(pg / "data"), "-U", "postgres", "--pwfile", str(pwfile),
                   "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], user)
        pwfile.unlink()

    # --- services -------------------------------------------------------------------------------------
    def _spec(self, name: str) -> tuple[Spec, Callable[[], bool]]:
        if self.profile and name in self.profile.services:
            return profile_setup.spec(self, self.profile, name)
        ports = self.meta["ports"]
        pw = self.meta["passwords"]
        d = self.dir
        port = ports[name]
        if name in ("postgres", "replica"):
            data = d / "pg" / ("data" if name == "postgres" else "replica")
            if name == "replica" and not data.exists():
                self._base_backup(data)
            argv = [self.bin["postgres"], "-D", str(data), "-p", str(port), "-k", str(d / "pg" / "run"),
                    "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=40", "-c", "shared_buffers=32MB",
                    "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
                    "-c", "log_min_messages=warning", "-c", f"cluster_name=opsproof-{name}",
                    *profile_setup.postgres_args(self, self.profile)]
            return (Spec(name, argv, user=postgres_user(), stop_signal=signal.SIGINT),
                    lambda: self._pg_ready(port) and (name != "postgres" or self._seed_once()))
        if name == "redis":
            conf = d / "redis" / "redis.conf"  # the password goes in a file, not argv (`ps` shows argv)
            # repl-diskless-sync-delay 0: `redis-cli --rdb` (the drill's fresh RDB) starts at once, not after 5 s
            conf.write_text(f"requirepass {pw['redis']}\nrepl-diskless-sync-delay 0\n")
            conf.chmod(0o600)
            argv = [self.bin["redis"], str(conf), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--maxmemory", "32mb", "--maxmemory-policy", "allkeys-lru",
                    "--dir", str(d / "redis"), "--daemonize", "no"]
            return Spec(name, argv), lambda: bool(self._redis().ping())
        if name == "webhook":
            argv = [sys.executable, "-m", "opsproof.sandbox.webhook", "--port", str(port),
                    "--store", str(d / "webhook" / "deliveries.jsonl")]
            return Spec(name, argv), lambda: self._http_ok(f"http://127.0.0.1:{port}/health")
        if name == "alertmanager":
            argv = [self.bin["alertmanager"], f"--config.file={d / 'alertmanager' / 'alertmanager.yml'}",
                    f"--storage.path={d / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=", "--log.level=warn"]
            return Spec(name, argv), lambda: self._http_ok(f"http://127.0.0.1:{port}/-/ready")
        if name == "postgres_exporter":
            dsn = f"postgresql://opsproof_monitor:{pw['opsproof_monitor']}@127.0.0.1:{ports['postgres']}/app"
            argv = [self.bin["postgres_exporter"], f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
            return (Spec(name, argv, env={"DATA_SOURCE_NAME": dsn + "?sslmode=disable"}),
                    lambda: self._http_ok(f"http://127.0.0.1:{port}/metrics"))
        if name == "redis_exporter":
            argv = [self.bin["redis_exporter"], "-redis.addr", f"redis://127.0.0.1:{ports['redis']}",
                    "-web.listen-address", f"127.0.0.1:{port}"]
            return (Spec(name, argv, env={"REDIS_PASSWORD": pw["redis"]}),
                    lambda: self._http_ok(f"http://127.0.0.1:{port}/metrics"))
        if name in PROXIES:  # the app reaches Redis (proxy) and PostgreSQL (pgproxy) through them,
            # so chaos can add latency, resets, a blackhole
            upstream = ports["redis" if name == "proxy" else "postgres"]
            argv = [sys.executable, "-m", "opsproof.sandbox.faultproxy", "--listen", str(port),
                    "--upstream", f"127.0.0.1:{upstream}", "--control", str(ports[f"{name}_control"])]
            return Spec(name, argv), lambda: self._http_ok(f"http://127.0.0.1:{ports[f'{name}_control']}/health")
        if name == "app":
            # the keeper restarts the app when it exits (its supervisor); keeper_files() says where its files are
            keeper = self.keeper_files()
            argv = [sys.executable, "-m", "opsproof.sandbox.keeper", "--pidfile", str(keeper["pidfile"]),
                    "--hold-file", str(keeper["hold"]), "--events", str(keeper["events"]),
                    "--delay", str(APP_RESTART_DELAY_S), "--",
                    sys.executable, "-m", "opsproof.sandbox.app", "--host", "127.0.0.1", "--port", str(port),
                    "--tls-port", str(ports["app_tls"]), "--certfile", str(d / "tls" / "server.pem"),
                    "--keyfile", str(d / "tls" / "server.key")]
            app_redis = f"redis://:{pw['redis']}@127.0.0.1:{ports['proxy']}/0"  # through the fault proxy
            env = {"APP_PG_DSN": self.dsn("app", service="pgproxy"), "APP_REDIS_URL": app_redis}  # not argv
            return Spec(name, argv, env=env), lambda: self._http_ok(f"http://127.0.0.1:{port}/health")
        if name == "prometheus":
            argv = [self.bin["prometheus"], f"--config.file={d / 'prometheus' / 'prometheus.yml'}",
                    f"--storage.tsdb.path={d / 'prometheus' / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                    "--web.enable-lifecycle", "--log.level=warn", "--storage.tsdb.retention.time=1d"]
            return Spec(name, argv), lambda: self._prometheus_ready(port)
        raise SandboxError(f"unknown sandbox service {name!r}; known: {', '.join(self.services)}")

    def _pg_ready(self, port: int) -> bool:
        with psycopg.connect(host=str(self.dir / "pg" / "run"), port=port, user="postgres", dbname="postgres",
                             connect_timeout=1):
            return True

    def _seed_once(self) -> bool:
        marker = self.dir / "pg" / "seeded"
        if marker.exists():
            return True
        sock = str(self.dir / "pg" / "run")

        def connect(db: str) -> psycopg.Connection[Any]:
            return psycopg.connect(host=sock, port=self.port("postgres"), user="postgres", dbname=db, autocommit=True)

        configs.seed(connect, self.meta["passwords"])
        if self.profile:
            profile_setup.seed(connect, self.profile, self.meta["passwords"])
        marker.touch()
        return True

    def _base_backup(self, data: Path) -> None:
        user = postgres_user()
        data.mkdir(mode=0o700)
        if user:
            shutil.chown(data, user, user)
        self._run([self.bin["pg_basebackup"], "-h", str(self.dir / "pg" / "run"), "-p",
                   str(self.port("postgres")), "-U", "postgres", "-D", str(data), "-R", "-X", "stream",
                   "-c", "fast"], user)

    def _redis(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port("redis"), password=self.meta["passwords"]["redis"],
                           socket_timeout=1, socket_connect_timeout=1)

    @staticmethod
    def _http_ok(url: str) -> bool:
        return httpx.get(url, timeout=1).status_code == 200

    def _prometheus_ready(self, port: int) -> bool:
        if not self._http_ok(f"http://127.0.0.1:{port}/-/ready"):
            return False
        data = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=1).json()["data"]["activeTargets"]
        return len(data) == 5 + len(self._jobs()) and all(t["health"] == "up" for t in data)

    def _jobs(self) -> dict[str, tuple[str, dict[str, str]]]:  # a profile's extra Prometheus jobs
        return {n: (j.service, j.labels) for n, j in self.profile.scrape_jobs.items()} if self.profile else {}

    def _warm_up(self) -> None:
        """Real traffic through the app, so cache and hit-rate checks have data to judge."""
        with httpx.Client(base_url=self.url("app"), timeout=5) as client:
            for i in range(300):
                client.get(f"/items/{1 + i % 50}")
            client.get("/items?limit=50")

    def _nightly_backup(self) -> None:
        """One backup with its manifest, as a nightly job would have left (what `checks/dr_drill` restores)."""
        from opsproof.drill.backup import take_postgres

        take_postgres(self.dsn("opsproof_backup"), self.dir / "backups", "app_*.dump", source="postgres[main]")

    def _write_inventory(self) -> None:
        inventory = configs.inventory(self)
        header = "# Written by `opsproof sandbox up`: the sandbox's own inventory (secrets are sandbox-only).\n"
        fd = os.open(self.inventory_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(header + yaml.safe_dump(inventory, sort_keys=False))


def attach_or_start(state_dir: str | None) -> tuple[Sandbox | None, Path, bool]:
    """Use the sandbox that is up, or start one owned by this process (returned, to be stopped after)."""
    existing = Sandbox(state_dir)
    if existing.running():
        return None, existing.inventory_path, False
    sandbox = Sandbox(state_dir, ephemeral=True)
    stop_on_exit(sandbox.down)  # at interpreter exit and on SIGTERM (Ctrl-C arrives as KeyboardInterrupt)
    return sandbox, sandbox.up(), True
