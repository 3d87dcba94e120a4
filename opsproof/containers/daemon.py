"""A Docker daemon to run containers on: the one the environment names, else ``dockerd`` started here.

``python -m opsproof.containers.daemon`` (``make docker``) is idempotent: a daemon that answers is left alone;
without ``DOCKER_HOST``, as root, with Debian's ``docker.io`` installed and no daemon answering, it starts
``dockerd`` in its own session (these machines have no systemd) and waits until it answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from opsproof.util.poll import Expired, wait_until

LOG = Path("/var/log/opsproof-dockerd.log")
START_TIMEOUT_S = 60.0


def answers() -> bool:
    import docker

    try:
        docker.from_env(timeout=5).ping()
    except docker.errors.DockerException:
        return False
    return True


def ensure_daemon() -> str:
    """Make sure a daemon answers; returns what was done, or raises ``RuntimeError`` saying what to do."""
    if answers():
        return "a Docker daemon answers"
    if os.environ.get("DOCKER_HOST"):
        raise RuntimeError(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer: start that daemon")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise RuntimeError("no Docker daemon, and dockerd is not installed: apt-get install docker.io")
    if os.geteuid() != 0:
        raise RuntimeError("no Docker daemon answers, and starting dockerd needs root: start it, or set DOCKER_HOST")
    with LOG.open("ab") as log:
        subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        wait_until(answers, START_TIMEOUT_S, "dockerd answering", interval=0.2)
    except Expired as exc:
        tail = "\n".join(LOG.read_text(errors="replace").splitlines()[-10:])
        raise RuntimeError(f"dockerd started but did not answer ({exc}); {LOG}:\n{tail}") from exc
    return f"started dockerd (log: {LOG})"


def main() -> int:
    try:
        print(f"opsproof: {ensure_daemon()}")
    except RuntimeError as exc:
        print(f"opsproof: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
