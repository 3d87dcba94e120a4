"""A scratch PostgreSQL in a throwaway container, of the major version the drill needs, whatever the host has.

``scratch: {kind: container}`` runs the dump's major (read from the dump's own header, :mod:`opsproof.drill.archive`)
or ``scratch.major`` (a newer one: an upgrade rehearsal, e.g. a 15 dump into 17). The image is opsproof's own for
that major (:data:`IMAGES`, built here from Debian's packages), or ``scratch.image`` where a team has a registry
(``postgres:16``; ``{major}`` in it is replaced by the major). The container is started through testcontainers
(``DockerContainer`` and a log wait strategy), publishes its port on 127.0.0.1 only, asks for a password there (a
random one, for this drill only: the restore holds every row), and is tuned for a throwaway restore like the local
cluster (fsync off, no WAL archiving). It carries the label ``org.opsproof.drill=<run id>`` and is removed by that
label at teardown — after a failure and on Ctrl-C/SIGTERM too — and a drill whose process was killed outright has
its container removed by the next drill (:func:`sweep_containers`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import make_conninfo

from opsproof.containers.images import POSTGRES_17, SANDBOX, ImageError, ImageSpec, docker_client, ensure_image
from opsproof.drill.tools import DrillError, pg_tool
from opsproof.util.poll import Expired, wait_until
from opsproof.util.process import pid_alive

if TYPE_CHECKING:
    import docker

LABEL = "org.opsproof.drill"  # its value: the drill's run id (its working folder's name, which holds its pid)
HOST_LABEL = "org.opsproof.host"  # the machine whose drill made it: only that machine's next drill sweeps it
EXTRA_LABELS = "OPSPROOF_CONTAINER_LABELS"  # k=v,k2=v2: more labels on every container a drill starts (CI cleanup)
IMAGES: dict[int, ImageSpec] = {15: SANDBOX, 17: POSTGRES_17}  # the majors opsproof builds images of, here
DATA = "/var/tmp/opsproof-scratch"  # not under an image's VOLUME (postgres:N declares /var/lib/postgresql/data)
SOCKET = "/tmp"
READY = "database system is ready to accept connections"
START_TIMEOUT_S = 120.0
DATABASE = "opsproof_restore"
# initdb and postgres of the wanted major, wherever the image keeps them (Debian's layout, or PATH as in the
# official images); the password reaches initdb through a file that is removed at once
SCRIPT = r"""set -e
for d in /usr/lib/postgresql/$OPSPROOF_MAJOR/bin /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then BIN=$d; break; fi
done
[ -n "$BIN" ] || { echo "opsproof: no initdb and postgres in this image" >&2; exit 3; }
umask 077
printf '%s\n' "$OPSPROOF_PASSWORD" > /tmp/opsproof-pw
"$BIN/initdb" -D {data} -U postgres --auth-local=trust --auth-host=scram-sha-256 --pwfile=/tmp/opsproof-pw \
  -E UTF8 --locale=C.UTF-8 --no-sync > /dev/null
rm -f /tmp/opsproof-pw
echo "host all all all scram-sha-256" >> {data}/pg_hba.conf
echo "opsproof: binaries in $BIN"
exec "$BIN/postgres" -D {data} -k {socket} -c listen_addresses='*' -c fsync=off -c full_page_writes=off \
  -c synchronous_commit=off -c wal_level=minimal -c max_wal_senders=0 -c archive_mode=off -c autovacuum=off \
  -c max_wal_size=8GB -c checkpoint_timeout=30min -c shared_buffers=256MB -c maintenance_work_mem=256MB \
  -c max_parallel_workers_per_gather={jobs} -c max_parallel_maintenance_workers={jobs} \
  -c cluster_name=opsproof-drill-scratch
"""


def labels(run_id: str) -> dict[str, str]:
    """The labels of a drill's container: its run id, this machine, and any from ``OPSPROOF_CONTAINER_LABELS``."""
    extra = dict(pair.split("=", 1) for pair in os.environ.get(EXTRA_LABELS, "").split(",") if "=" in pair)
    return {**{k.strip(): v.strip() for k, v in extra.items()}, LABEL: run_id, HOST_LABEL: socket.gethostname()}


def image_for(major: int, image: str | None, client: docker.DockerClient) -> str:
    """The image reference of a scratch server of ``major``: the inventory's own (present, or pulled from its
    registry), else opsproof's, built here if the daemon lacks it."""
    import docker as docker_sdk

    if image is not None:
        reference = image.replace("{major}", str(major))
        try:
            client.images.get(reference)
        except docker_sdk.errors.ImageNotFound:
            try:
                client.images.pull(reference)
            except docker_sdk.errors.DockerException as e:
                raise DrillError(f"scratch.image {reference} is not on this Docker daemon and cannot be pulled "
                                 f"({str(e).strip()[:200]}). Fix: docker pull it, or remove scratch.image to use "
                                 f"opsproof's own PostgreSQL {major} image") from None
        return reference
    spec = IMAGES.get(major)
    if spec is None:
        have = ", ".join(str(m) for m in sorted(IMAGES))
        raise DrillError(f"opsproof builds no PostgreSQL {major} image here (it builds {have}). Fix: name one with "
                         f"scratch.image (e.g. postgres:{major}), or set scratch.major to one of {have}")
    try:
        return ensure_image(spec, client)
    except ImageError as e:
        raise DrillError(str(e)) from None


class ScratchContainer:
    """A throwaway PostgreSQL container; ``conninfo`` reaches its restore database on 127.0.0.1 (with a password).

    The restore's tools (:meth:`tool`): a pg_restore must be at least as new as the pg_dump that wrote the archive
    (an older one stops at "unsupported version (1.16) in file header"), and one of the server's own version is the
    pairing PostgreSQL supports best (a newer pg_restore sends settings an older server lacks, as 17.0 did with
    ``transaction_timeout``). So the container's own tools are run (``docker exec``), over its Unix socket: their
    version is the scratch server's, which is never older than the dump's server — whatever the host has
    installed, or lacks. Only where the archive's pg_dump is newer than the scratch server (pg_dump 17 of a 15
    server, restored into 15) is pg_restore the host's, of the pg_dump's major or newer, over the published port.
    """

    def __init__(self, folder: Path, major: int, image: str | None, backup: Path, jobs: int = 2) -> None:
        self.run_id = folder.name
        self.major = major
        self.image = image
        self.backup = backup
        self.jobs = jobs
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.bin = f"/usr/lib/postgresql/{major}/bin"
        self.container_id: str | None = None
        self.reference = image or "?"
        self.where = f"a PostgreSQL {major} container"
        self._tc: Any = None

    @property
    def conninfo(self) -> str:
        """From the host, without the password (tools get it as PGPASSWORD, psycopg as an argument)."""
        return make_conninfo(host="127.0.0.1", port=str(self.port), user="postgres", dbname=DATABASE)

    def tool_env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password}

    def tool(self, name: str, dumper_major: int | None = None) -> tuple[list[str], str, dict[str, str]]:
        """(argv prefix, conninfo, environment) of ``name`` against the restore database: the container's own
        tool, unless it is pg_restore and the archive's pg_dump is newer than this server (see the class)."""
        if name == "pg_restore" and dumper_major is not None and dumper_major > self.major:
            try:
                return [pg_tool("pg_restore", dumper_major, at_least=True)], self.conninfo, self.tool_env()
            except DrillError as e:
                raise DrillError(f"the archive was written by pg_dump {dumper_major}, newer than the scratch "
                                 f"server's PostgreSQL {self.major}, and {e}; or set scratch.major: {dumper_major} "
                                 "to restore with that container's own") from None
        if shutil.which("docker") is None:
            raise DrillError("the docker command is not installed (it runs the scratch container's own "
                             f"{name}). Fix: apt-get install docker.io (or docker-ce-cli)")
        assert self.container_id is not None
        inside = make_conninfo(host=SOCKET, port="5432", user="postgres", dbname=DATABASE)
        return ["docker", "exec", "-i", "-u", "root", self.container_id, f"{self.bin}/{name}"], inside, {}

    def start(self) -> None:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        testcontainers_config.ryuk_disabled = True  # its reaper's image is on Docker Hub; we remove by label
        client = docker_client()
        with contextlib.suppress(Exception):  # best effort: a killed drill's container must not wait for a human
            sweep_containers(client)
        self.reference = image_for(self.major, self.image, client)
        script = SCRIPT.replace("{data}", DATA).replace("{socket}", SOCKET).replace("{jobs}", str(max(2, self.jobs)))
        mount = str(self.backup.resolve())
        self._tc = (DockerContainer(self.reference)
                    .with_env("OPSPROOF_PASSWORD", self.password).with_env("OPSPROOF_MAJOR", str(self.major))
                    .with_command([script]).with_name(f"{self.run_id}-postgres")
                    .with_volume_mapping(mount, mount, "ro")  # at the same path: host and container tools agree
                    .with_kwargs(entrypoint=["/bin/sh", "-c"], user="postgres",
                                 labels=labels(self.run_id), shm_size="512m")
                    .waiting_for(LogMessageWaitStrategy(READY).with_startup_timeout(int(START_TIMEOUT_S))))
        self._tc.ports["5432/tcp"] = ("127.0.0.1",)  # published on loopback only, on a free port
        try:
            self._tc.start()
        except Exception as e:  # the container exited, timed out, or the daemon refused it
            raise DrillError(f"the scratch container ({self.reference}) did not start: {type(e).__name__}: "
                             f"{self._log_tail() or str(e).strip()[:400]}") from None
        wrapped = self._tc.get_wrapped_container()
        self.container_id = wrapped.id
        self.port = int(self._tc.get_exposed_port(5432))
        logs = wrapped.logs().decode(errors="replace")
        self.bin = next((ln.split("binaries in ", 1)[1].strip() for ln in logs.splitlines()
                         if ln.startswith("opsproof: binaries in ")), self.bin)
        self.where = f"a PostgreSQL {self.major} container ({self.reference}) on 127.0.0.1:{self.port}"
        try:
            wait_until(self._answers, 30, f"the scratch container on 127.0.0.1:{self.port} to answer", interval=0.1)
        except Expired as e:
            raise DrillError(str(e)) from None
        with psycopg.connect(self._dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
            running = int(row[0]) // 10000 if row else 0
            if running != self.major:
                raise DrillError(f"the scratch container's image {self.reference} runs PostgreSQL {running}, "
                                 f"expected {self.major}. Fix: name an image of PostgreSQL {self.major} in "
                                 "scratch.image")
            conn.execute(f"CREATE DATABASE {DATABASE} TEMPLATE template0 ENCODING 'UTF8'")

    def _dsn(self, db: str) -> str:
        return make_conninfo(host="127.0.0.1", port=str(self.port), user="postgres", dbname=db,
                             password=self.password)

    def _answers(self) -> bool:
        with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
            return True

    def _log_tail(self) -> str:
        with contextlib.suppress(Exception):
            text = self._tc.get_wrapped_container().logs(tail=5).decode(errors="replace")
            return " | ".join(ln.strip() for ln in text.splitlines() if ln.strip())[-500:]
        return ""

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._dsn(DATABASE), autocommit=True, connect_timeout=10)

    def stop(self) -> None:
        """Remove every container of this drill (by its label), with its anonymous volumes."""
        remove_labelled({LABEL: self.run_id})
        if self._tc is not None:
            with contextlib.suppress(Exception):
                self._tc.get_docker_client().client.close()

    def leftovers(self) -> list[str]:
        return [f"container {c.name} ({c.short_id})" for c in _labelled({LABEL: self.run_id})]


def archive_tool(name: str, major: int, image: str | None, backup: Path, run_id: str) -> list[str]:
    """argv prefix of ``name`` (pg_restore) of PostgreSQL ``major`` in a one-off container of its image, the backup
    mounted read-only at its own path and no network: for reading an archive the host's tools are too old for (a
    17 dump on a host with 15), before the scratch server exists. Removed when it exits, and by label at teardown."""
    if shutil.which("docker") is None:
        raise DrillError(f"no {name} of PostgreSQL {major} or newer on this host, and the docker command is not "
                         "installed to run the container's. Fix: apt-get install docker.io")
    reference = image_for(major, image, docker_client())
    mount = str(backup.resolve())
    finder = SCRIPT.split("umask", 1)[0].replace("initdb", name)  # the same search for the image's binaries
    label_args = [arg for k, v in labels(run_id).items() for arg in ("--label", f"{k}={v}")]
    return ["docker", "run", "--rm", "-i", "--network", "none", *label_args, "-v", f"{mount}:{mount}:ro",
            "-e", f"OPSPROOF_MAJOR={major}", "--entrypoint", "/bin/sh", reference, "-c",
            f'{finder}exec "$BIN/{name}" "$@"', name]


def _labelled(wanted: dict[str, str], client: docker.DockerClient | None = None) -> list[Any]:
    client = client or docker_client()
    return list(client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in wanted.items()]}))


def remove_labelled(wanted: dict[str, str], client: docker.DockerClient | None = None) -> list[str]:
    """Remove (force, with anonymous volumes) the containers carrying all of ``wanted``; returns their names."""
    import docker as docker_sdk

    gone = []
    for container in _labelled(wanted, client):
        with contextlib.suppress(docker_sdk.errors.NotFound):
            container.remove(force=True, v=True)
        gone.append(container.name)
    return gone


def sweep_containers(client: docker.DockerClient | None = None) -> list[str]:
    """Remove the containers of this machine's drills whose process is gone (a SIGKILLed run); returns them."""
    client = client or docker_client()
    gone = []
    for container in _labelled({HOST_LABEL: socket.gethostname()}, client):
        run_id = container.labels.get(LABEL, "")
        try:
            pid = int(run_id.split("-")[2])  # opsproof-drill-PID-xxxx
        except (IndexError, ValueError):
            continue
        if not pid_alive(pid):
            gone += remove_labelled({LABEL: run_id}, client)
    return gone
