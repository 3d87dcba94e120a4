"""The sandbox's services as containers of the one sandbox image: what each runs, publishes, mounts and waits for.

Every container runs one service of :data:`opsproof.shape.SERVICES` from Debian's packages (the image of
:data:`opsproof.containers.images.SANDBOX`); opsproof's own small servers (the app, the webhook, the fault proxies)
are bind-mounted read-only from this package and run with the image's Python. Inside the network a service is
reached by its alias (``postgres``, ``postgres-exporter`` …) on its usual port; from the host, on 127.0.0.1 at a
port Docker chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from opsproof.sandbox.control import APP_RESTART_DELAY_S

PG_BIN = "/usr/lib/postgresql/15/bin"
HERE = Path(__file__).resolve().parent
CODE = "/opt/opsproof"  # where opsproof's servers are mounted in a container
STATE = "/state"  # where the sandbox's state folder (configs, TLS, the webhook's store) is mounted

# the port each service listens on inside the network, by the sandbox's port names
PORTS: dict[str, int] = {
    "postgres": 5432, "replica": 5432, "redis": 6379, "webhook": 8080, "alertmanager": 9093,
    "postgres_exporter": 9187, "redis_exporter": 9121, "proxy": 6380, "proxy_control": 7000,
    "pgproxy": 6432, "pgproxy_control": 7001, "app": 8000, "app_tls": 8443, "prometheus": 9090,
}
# which published ports belong to which container (the others publish only their own name)
PUBLISHED: dict[str, tuple[str, ...]] = {"proxy": ("proxy", "proxy_control"),
                                         "pgproxy": ("pgproxy", "pgproxy_control"), "app": ("app", "app_tls")}
# the start order: each wave needs only those before it (the replica its primary, a proxy its upstream, the app its
# proxies, Prometheus every target it scrapes); the services of a wave start together
WAVES: tuple[tuple[str, ...], ...] = (
    ("postgres", "redis", "webhook"),
    ("replica", "alertmanager", "postgres_exporter", "redis_exporter", "proxy", "pgproxy"),
    ("app",),
    ("prometheus",),
)
PG_FLAGS = ("-c listen_addresses='*' -c unix_socket_directories=/tmp -c max_connections=40 -c shared_buffers=32MB "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c log_min_messages=warning")


def alias(name: str) -> str:
    """The service's DNS name in the network (hostnames take no underscores)."""
    return name.replace("_", "-")


@dataclass(frozen=True)
class Service:
    """One container: its command, environment, user, mounts (host path, container path, mode) and readiness."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    mounts: tuple[tuple[str, str, str], ...] = ()
    ready_log: str | None = None  # a line the service logs once it serves
    ready_http: str | None = None  # else an HTTP path answering 200 on its own port (or on ready_port)
    ready_port: str | None = None

    @property
    def published(self) -> tuple[str, ...]:
        return PUBLISHED.get(self.name, (self.name,))


def _sh(script: str) -> list[str]:
    return ["sh", "-ec", script]


def services(state_dir: Path, pw: dict[str, str]) -> dict[str, Service]:
    """Every service of the sandbox, in start order. Commands are idempotent: a container restarted after a
    stop keeps its data (initdb and the base backup run once)."""
    state = (str(state_dir), STATE, "rw")
    code = ((str(HERE / "app"), f"{CODE}/app", "ro"), (str(HERE / "webhook.py"), f"{CODE}/webhook.py", "ro"),
            (str(HERE / "faultproxy.py"), f"{CODE}/faultproxy.py", "ro"))
    py = {"PYTHONPATH": CODE, "PYTHONDONTWRITEBYTECODE": "1"}
    # the app runs under the sandbox's keeper, as with the process provider (Docker's restart policies do not
    # restart a killed container, and restart too soon for ServiceDown): its files are in the state folder, which
    # the host reads. Mounted without opsproof's package __init__ (namespace packages): it needs the stdlib only.
    keeper_code = ((str(HERE / "keeper.py"), f"{CODE}/opsproof/sandbox/keeper.py", "ro"),
                   (str(HERE.parent / "util"), f"{CODE}/opsproof/util", "ro"))
    keeper = ["python3", "-m", "opsproof.sandbox.keeper", "--pidfile", f"{STATE}/app/app.pid",
              "--hold-file", f"{STATE}/app/no-restart", "--events", f"{STATE}/app/keeper.jsonl",
              "--delay", str(APP_RESTART_DELAY_S), "--"]
    hba = ("printf 'host all all 0.0.0.0/0 scram-sha-256\\nhost replication all 0.0.0.0/0 scram-sha-256\\n' "
           ">> /tmp/pgdata/pg_hba.conf")
    primary = (f'if [ ! -f /tmp/pgdata/PG_VERSION ]; then printf %s "$PGPASSWORD" > /tmp/pw; '
               f"{PG_BIN}/initdb -D /tmp/pgdata -U postgres --pwfile /tmp/pw --auth-local=trust "
               f"--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null; rm /tmp/pw; {hba}; fi; "
               f"exec {PG_BIN}/postgres -D /tmp/pgdata {PG_FLAGS} -c cluster_name=opsproof-postgres")
    replica = (f"if [ ! -f /tmp/pgdata/PG_VERSION ]; then {PG_BIN}/pg_basebackup -h postgres -p 5432 -U postgres "
               f"-D /tmp/pgdata -R -X stream -c fast; chmod 700 /tmp/pgdata; fi; "
               f"exec {PG_BIN}/postgres -D /tmp/pgdata {PG_FLAGS} -c cluster_name=opsproof-replica")
    # the password goes in a file, not argv (`ps` on the host shows a container's argv)
    redis = ('printf "requirepass %s\\nrepl-diskless-sync-delay 0\\n" "$REDIS_PASSWORD" > /tmp/redis.conf; '
             "exec redis-server /tmp/redis.conf --port 6379 --bind 0.0.0.0 --protected-mode no --save '' "
             "--appendonly no --maxmemory 32mb --maxmemory-policy allkeys-lru --dir /tmp --daemonize no")
    monitor_dsn = f"postgresql://opsproof_monitor:{pw['opsproof_monitor']}@postgres:5432/app?sslmode=disable"

    def proxy(name: str, upstream: str) -> Service:
        return Service(name, ["python3", f"{CODE}/faultproxy.py", "--bind", "0.0.0.0", "--listen", str(PORTS[name]),
                              "--upstream", upstream, "--control", str(PORTS[f"{name}_control"])],
                       env=py, mounts=code, ready_http="/health", ready_port=f"{name}_control")

    return {s.name: s for s in (
        Service("postgres", _sh(primary), env={"PGPASSWORD": pw["postgres"]}, user="postgres",
                ready_log="database system is ready to accept connections"),
        Service("replica", _sh(replica), env={"PGPASSWORD": pw["postgres"]}, user="postgres",
                ready_log="database system is ready to accept read-only connections"),
        Service("redis", _sh(redis), env={"REDIS_PASSWORD": pw["redis"]}, ready_log="Ready to accept connections"),
        Service("webhook", ["python3", f"{CODE}/webhook.py", "--host", "0.0.0.0", "--port", str(PORTS["webhook"]),
                            "--store", f"{STATE}/webhook/deliveries.jsonl"], env=py, mounts=(*code, state),
                ready_http="/health"),
        Service("alertmanager", ["prometheus-alertmanager", f"--config.file={STATE}/alertmanager/alertmanager.yml",
                                 "--storage.path=/tmp/alertmanager", "--web.listen-address=0.0.0.0:9093",
                                 "--cluster.listen-address=", "--log.level=warn"], mounts=(state,),
                ready_http="/-/ready"),
        Service("postgres_exporter", ["prometheus-postgres-exporter", "--web.listen-address=0.0.0.0:9187",
                                      "--log.level=warn"], env={"DATA_SOURCE_NAME": monitor_dsn},
                ready_http="/metrics"),
        Service("redis_exporter", ["prometheus-redis-exporter", "-redis.addr", "redis://redis:6379",
                                   "-web.listen-address", "0.0.0.0:9121"], env={"REDIS_PASSWORD": pw["redis"]},
                ready_http="/metrics"),
        proxy("proxy", "redis:6379"),
        proxy("pgproxy", "postgres:5432"),
        Service("app", [*keeper, "python3", "-m", "app", "--host", "0.0.0.0", "--port", str(PORTS["app"]),
                        "--tls-port", str(PORTS["app_tls"]), "--certfile", f"{STATE}/tls/server.pem",
                        "--keyfile", f"{STATE}/tls/server.key"],
                env={**py, "APP_PG_DSN": f"postgresql://app:{pw['app']}@pgproxy:6432/app",
                     "APP_REDIS_URL": f"redis://:{pw['redis']}@proxy:6380/0"},  # through the fault proxies
                mounts=(*code, *keeper_code, state), ready_http="/health"),
        Service("prometheus", ["prometheus", f"--config.file={STATE}/prometheus/prometheus.yml",
                               "--storage.tsdb.path=/tmp/prometheus", "--web.listen-address=0.0.0.0:9090",
                               "--web.enable-lifecycle", "--log.level=warn", "--storage.tsdb.retention.time=1d"],
                mounts=(state,), ready_http="/-/ready"),
    )}
