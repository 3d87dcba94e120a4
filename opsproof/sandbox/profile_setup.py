"""What a sandbox profile adds to a running sandbox (:class:`opsproof.sandbox.control.Sandbox` with ``profile=``):
its roles and databases, its services (the Kubernetes API emulator, Celery workers), and ``profile.env``."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from opsproof.inventory.base import SECRET_VAR
from opsproof.sandbox import kube, kube_objects
from opsproof.sandbox.process import SandboxError, Spec, postgres_user
from opsproof.sandbox.profiles import Profile

if TYPE_CHECKING:
    from opsproof.sandbox.control import Sandbox

ROOT = str(Path(__file__).resolve().parents[2])  # where `opsproof` is imported from: the services import it too
ENV_FILE = "profile.env"


def ports(profile: Profile) -> list[str]:
    """The ports the profile's services listen on, beyond one per service: a stand-in's per HTTP service."""
    return [f"http_{s}" for s in profile.http_services]


def passwords(profile: Profile) -> list[str]:
    """The roles whose passwords the sandbox generates for the profile."""
    return list(profile.postgres.roles)


def seed(connect: Callable[[str], Any], profile: Profile, pw: dict[str, str]) -> None:
    """The profile's roles and databases; ``connect(dbname)`` gives an autocommit superuser connection."""
    with connect("postgres") as conn:
        for name, role in profile.postgres.roles.items():
            member = f" IN ROLE {', '.join(role.member_of)}" if role.member_of else ""
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{pw[name]}'{member}")
        for name, db in profile.postgres.databases.items():
            if db.create:
                conn.execute(f"CREATE DATABASE {name}")
    for name, db in profile.postgres.databases.items():
        if db.sql.strip():
            with connect(name) as conn:
                conn.execute(db.sql)


def require(profile: Profile | None) -> None:
    """The packages the profile's services import (dev dependencies of opsproof), before anything starts."""
    if profile is None:
        return
    needed = ([("kmock", "its Kubernetes API emulator")] if profile.kubernetes else []) + (
        [("celery", "its Celery workers")] if profile.celery else []) + (
        [("moto", "its S3 API (moto's server)"), ("boto3", "writing its buckets")] if profile.s3 else [])
    for module, why in needed:
        if importlib.util.find_spec(module) is None:
            raise SandboxError(f"profile {profile.name} needs the {module} package ({why}). "
                               f"Fix: pip install '{module}' (or opsproof's dev extra)")


def postgres_args(box: Sandbox, profile: Profile | None) -> list[str]:
    """PostgreSQL's extra settings: TLS with the sandbox's certificate (a copy of its key the server's user owns)."""
    if profile is None:
        return []
    settings = [a for k, v in profile.postgres.settings.items() for a in ("-c", f"{k}={v.format(dir=box.dir)}")]
    if not profile.postgres.ssl:
        return settings
    pg, tls = box.dir / "pg", box.dir / "tls"
    key = pg / "server.key"
    if not key.exists():
        shutil.copyfile(tls / "server.key", key)
        key.chmod(0o600)
        if user := postgres_user():
            shutil.chown(key, user, user)
    return [*settings, "-c", "ssl=on", "-c", f"ssl_cert_file={tls / 'server.pem'}", "-c", f"ssl_key_file={key}"]


def prepare(box: Sandbox, profile: Profile) -> None:
    """Files the profile's services read: the emulator's objects and its kubeconfig."""
    if profile.postgres.settings.get("archive_mode") == "on":  # where the profile's archive_command copies WAL
        archive = box.dir / "pg" / "wal-archive"
        archive.mkdir(mode=0o700, exist_ok=True)
        if user := postgres_user():
            shutil.chown(archive, user, user)
    if not profile.kubernetes:
        return
    d = box.dir / "kube"
    d.mkdir(exist_ok=True)
    (d / "objects.json").write_text(json.dumps([o for k in profile.kubernetes for o in kube_objects.objects(k)]))
    (d / "kubeconfig").write_text(yaml.safe_dump(kube.kubeconfig(box.url("kube"))))


def spec(box: Sandbox, profile: Profile, name: str) -> tuple[Spec, Callable[[], bool]]:
    """How to run one of the profile's services, and when it is ready."""
    env = {"PYTHONPATH": ROOT}
    if name == "kube":
        argv = [sys.executable, "-m", "opsproof.sandbox.kube", "--port", str(box.port("kube")),
                "--objects", str(box.dir / "kube" / "objects.json")]
        # any answer: the emulator stores the objects before it opens its port (an undeclared kind is a 404)
        return Spec(name, argv, env=env), lambda: httpx.get(f"{box.url('kube')}/version", timeout=1).status_code > 0
    if name == "standins":
        argv = [sys.executable, "-m", "opsproof.sandbox.standin"]
        urls = []
        for service, standin in profile.http_services.items():
            port = box.port(f"http_{service}")
            argv += ["--serve", f"{service}={port}:{','.join(standin.paths)}" + (":tls" if standin.tls else "")]
            urls.append(f"http{'s' if standin.tls else ''}://127.0.0.1:{port}{standin.paths[0]}")
        tls = box.dir / "tls"
        if any(s.tls for s in profile.http_services.values()):
            argv += ["--certfile", str(tls / "server.pem"), "--keyfile", str(tls / "server.key")]
        ca = str(tls / "ca.pem")
        return Spec(name, argv, env=env), lambda: all(httpx.get(u, timeout=1, verify=ssl.create_default_context(
            cafile=ca)).status_code == 200 for u in urls)
    if name == "s3":
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(box.port("s3"))]
        # ready once it answers and holds the profile's buckets (written again after a restart: moto keeps memory)
        return Spec(name, argv, env=env), lambda: _s3_buckets(box.url("s3"), profile)
    worker = name.removeprefix("celery_")
    if name.startswith("celery_") and worker in profile.celery:
        broker = f"redis://:{box.meta['passwords']['redis']}@127.0.0.1:{box.port('redis')}/0"
        argv = [sys.executable, "-m", "celery", "-A", "opsproof.sandbox.celery_worker", "worker", "--pool", "solo",
                "-Q", ",".join(profile.celery[worker].queues), "-n", f"{worker}@%h", "--loglevel", "WARNING",
                "--without-mingle", "--without-gossip"]
        return Spec(name, argv, env={**env, "OPSPROOF_CELERY_BROKER": broker}), lambda: _celery_answers(broker, worker)
    raise SandboxError(f"unknown service {name!r} of profile {profile.name}")


def _s3_buckets(url: str, profile: Profile) -> bool:
    """The profile's buckets, objects and lifecycle rules on the S3 API at ``url`` (created where missing)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="sandbox",
                      aws_secret_access_key="sandbox")
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for name, bucket in profile.s3.items():
        if name in have:
            continue
        s3.create_bucket(Bucket=name)
        for key in bucket.objects:
            s3.put_object(Bucket=name, Key=key, Body=b"opsproof sandbox object " + key.encode())
        if bucket.lifecycle_days:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
                "ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""},
                "Expiration": {"Days": bucket.lifecycle_days}}]})
    return True


def _celery_answers(broker: str, worker: str) -> bool:
    from celery import Celery

    app = Celery("opsproof_sandbox_ready", broker=broker)
    try:
        return any(next(iter(r)).startswith(f"{worker}@") for r in app.control.ping(timeout=0.5))
    finally:
        app.close()


def env(box: Sandbox, profile: Profile) -> dict[str, str]:
    values = {"ports": box.meta["ports"], "passwords": box.meta["passwords"], "dir": str(box.dir),
              "ca_file": str(box.dir / "tls" / "ca.pem"), "kubeconfig": str(box.dir / "kube" / "kubeconfig")}
    return profile.render_env(values)


def write_env(box: Sandbox, profile: Profile) -> Path:
    """``profile.env`` (mode 0600: it holds the sandbox's passwords), for ``set -a; . FILE; set +a``."""
    path = box.dir / ENV_FILE
    lines = [f"# Written by `opsproof sandbox up --profile {profile.name}`: points {profile.example} at this "
             "sandbox. Use: set -a; . THIS_FILE; set +a"]
    lines += [f"{var}={shlex.quote(value)}" for var, value in env(box, profile).items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def shown_env(box: Sandbox, profile: Profile) -> list[str]:
    """profile.env as printed: secrets (variables named like one: *PASSWORD*, *TOKEN* …) masked."""
    return [f"{var}={'***' if SECRET_VAR.search(var) else value}" for var, value in env(box, profile).items()]
