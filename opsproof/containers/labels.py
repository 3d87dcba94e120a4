"""Labels on everything opsproof creates in Docker, and removal by label: testcontainers' reaper (Ryuk) cannot be
pulled here, so cleanup never depends on it — nor on the process that created the containers staying alive."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

EXTRA_LABELS_ENV = "OPSPROOF_CONTAINER_LABELS"  # more labels, "k=v,k2=v2" (a CI job's, a test's own)


def extra_labels() -> dict[str, str]:
    pairs = [p.partition("=") for p in os.environ.get(EXTRA_LABELS_ENV, "").split(",") if p.strip()]
    return {k.strip(): v.strip() for k, _, v in pairs}


def remove_labelled(client: docker.DockerClient, label: str) -> list[str]:
    """Remove every container (with its volumes), network and volume carrying ``label`` (``key=value``)."""
    import docker as docker_sdk

    removed = []
    filters = {"label": label}

    def remove(container: Container) -> None:
        with contextlib.suppress(docker_sdk.errors.NotFound):
            container.remove(force=True, v=True)
            removed.append(f"container {container.name}")

    with ThreadPoolExecutor(max_workers=6) as pool:  # one by one, eleven removals take seconds
        list(pool.map(remove, client.containers.list(all=True, filters=filters)))
    for network in client.networks.list(filters=filters):
        with contextlib.suppress(docker_sdk.errors.NotFound):
            network.remove()
            removed.append(f"network {network.name}")
    for volume in client.volumes.list(filters=filters):
        with contextlib.suppress(docker_sdk.errors.NotFound):
            volume.remove(force=True)
            removed.append(f"volume {volume.name}")
    return removed


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM become exceptions while the block runs (so its cleanup runs), then the old handlers."""
    def interrupt(signum: int, frame: Any) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
