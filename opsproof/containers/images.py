"""Container images built here, from Debian's packages: no registry is needed.

``debootstrap --variant=minbase`` of a Debian suite with the packages a service needs, then ``docker import`` of
that root. The image's tag is a content hash of what went into it (suite, packages, mirror, this recipe's
version), so the Docker image store is the cache: a second ``ensure_image`` of the same spec is a lookup, and a
changed package list is a new image. Parallel callers (pytest-xdist workers) build each image once, under a
file lock.

Where a team has a registry, it names its own images instead (``image: postgres:15``) and nothing is built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker

RECIPE = 1  # bump when how an image is built changes: every tag changes with it
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("OPSPROOF_IMAGE_CACHE", "/var/cache/opsproof/images"))  # .debs and locks
BUILD_TIMEOUT_S = 900.0


class ImageError(RuntimeError):
    """An image cannot be built; the message says which, why and what to do."""


@dataclass(frozen=True)
class ImageSpec:
    """A Debian root with ``packages`` installed, as an image named ``repository:<suite>-<hash>``."""

    packages: tuple[str, ...]
    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    repository: str = "opsproof/debian"

    @property
    def digest(self) -> str:
        recipe = {"recipe": RECIPE, "suite": self.suite, "mirror": self.mirror, "packages": sorted(self.packages)}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.suite}-{self.digest}"


# The images opsproof's own containers use: one for the whole sandbox (each container runs one of its services)
# and one of the next PostgreSQL major for cross-version drills. Few images, because each costs ~50 s to build.
SANDBOX = ImageSpec(packages=(
    "postgresql-15", "redis-server", "prometheus", "prometheus-alertmanager", "prometheus-postgres-exporter",
    "prometheus-redis-exporter", "python3", "python3-psycopg", "python3-redis", "python3-prometheus-client",
    "ca-certificates",
))
POSTGRES_17 = ImageSpec(packages=("postgresql-17",), suite="trixie")


def docker_client(timeout_s: float = 60.0) -> docker.DockerClient:
    """A client of the Docker daemon the environment names (``DOCKER_HOST``, else the local socket), checked."""
    import docker as docker_sdk

    try:
        client = docker_sdk.from_env(timeout=int(timeout_s))
        client.ping()
    except docker_sdk.errors.DockerException as exc:
        raise ImageError(f"no Docker daemon answers ({exc}): start dockerd (`make docker` as root) or set "
                         "DOCKER_HOST") from exc
    return client


def ensure_image(spec: ImageSpec, client: docker.DockerClient | None = None,
                 log: Callable[[str], None] = lambda _line: None) -> str:
    """The image of ``spec``, built if the daemon does not have it yet; returns its reference."""
    import docker as docker_sdk

    client = client or docker_client()
    if _present(client, spec.reference, docker_sdk):
        return spec.reference
    with _lock(spec.digest):
        if _present(client, spec.reference, docker_sdk):  # another worker built it while this one waited
            return spec.reference
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="opsproof-root-", dir=_scratch()) as root:
            _debootstrap(spec, Path(root))
            _import(client, spec, Path(root))
        log(f"built {spec.reference} ({', '.join(spec.packages)}) in {time.monotonic() - started:.0f} s")
    return spec.reference


def _present(client: docker.DockerClient, reference: str, docker_sdk: object) -> bool:
    try:
        client.images.get(reference)
    except docker_sdk.errors.ImageNotFound:  # type: ignore[attr-defined]
        return False
    return True


@contextlib.contextmanager
def _lock(digest: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{digest}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        yield


def _scratch() -> str:
    """Where a root is unpacked: beside the cache (a root is ~0.5–0.7 GB; /tmp may be a small tmpfs)."""
    folder = CACHE / "roots"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def _debootstrap(spec: ImageSpec, root: Path) -> None:
    tool = shutil.which("debootstrap")
    if tool is None:
        raise ImageError("debootstrap is not installed: apt-get install debootstrap (or name a registry image)")
    debs = CACHE / "debs" / spec.suite
    debs.mkdir(parents=True, exist_ok=True)
    command = [tool, "--variant=minbase", f"--include={','.join(spec.packages)}", f"--cache-dir={debs}",
               spec.suite, str(root), spec.mirror]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"debootstrap of {spec.reference} did not finish in {BUILD_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise ImageError(f"debootstrap of {spec.reference} ({spec.suite}: {', '.join(spec.packages)}) failed "
                         f"(exit {done.returncode}):\n{tail}")
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):  # debs already kept in the cache
        shutil.rmtree(root / leftover, ignore_errors=True)


def _import(client: docker.DockerClient, spec: ImageSpec, root: Path) -> None:
    repository, _, tag = spec.reference.rpartition(":")
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    try:
        assert tar.stdout is not None
        client.api.import_image_from_stream(
            tar.stdout, repository=repository, tag=tag,
            changes=['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', "ENV LANG=C.UTF-8",
                     f'LABEL org.opsproof.packages="{" ".join(spec.packages)}" org.opsproof.suite="{spec.suite}"'])
    finally:
        tar.stdout.close() if tar.stdout else None
        if tar.wait(timeout=60) != 0:
            raise ImageError(f"tar of the root of {spec.reference} failed (exit {tar.returncode})")


def main() -> int:
    """``python -m opsproof.containers``: build opsproof's own images now (both at once), so a test run that
    needs them finds them built (``make test`` starts this beside the lint and unit tiers)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    try:
        client = docker_client()
        with ThreadPoolExecutor(max_workers=2) as pool:
            for reference in pool.map(lambda spec: ensure_image(spec, client, print), (SANDBOX, POSTGRES_17)):
                print(f"opsproof: image {reference} ready")
    except ImageError as exc:
        print(f"opsproof: {exc}", file=sys.stderr)
        return 1
    return 0
