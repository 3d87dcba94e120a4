"""A Kubernetes API for the sandbox profiles: kmock's KubernetesEmulator (aiohttp) on a loopback port, holding the
profile's objects (:mod:`opsproof.sandbox.kube_objects`), until SIGTERM or SIGINT.

    python -m opsproof.sandbox.kube --port 6443 --objects objects.json

It serves GET and LIST on the usual paths (/apis/apps/v1/namespaces/NS/deployments, …) over plain HTTP, checks no
credentials, runs no controllers and ignores field selectors; kmock keeps every request it answered, so a sandbox
left up for days grows (a few hundred bytes per request). Needs the ``kmock`` package (a dev dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from opsproof.sandbox.kube_objects import RESOURCES


def kubeconfig(server: str) -> dict[str, Any]:
    """A kubeconfig for the emulator: plain HTTP, a dummy token (it checks none)."""
    return {"apiVersion": "v1", "kind": "Config", "current-context": "opsproof-sandbox",
            "clusters": [{"name": "opsproof-sandbox", "cluster": {"server": server}}],
            "users": [{"name": "opsproof", "user": {"token": "sandbox-emulator"}}],
            "contexts": [{"name": "opsproof-sandbox", "context": {"cluster": "opsproof-sandbox", "user": "opsproof"}}]}


async def serve(port: int, objects: list[dict[str, Any]]) -> None:
    import kmock

    async with kmock.KubernetesEmulator() as handler:
        for obj in objects:  # stored before the port opens: answering means serving them
            meta = obj["metadata"]
            handler.objects[RESOURCES[obj["kind"]], meta["namespace"], meta["name"]] = obj
        async with kmock.Server(handler, port=port):
            await _until_stopped()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsproof.sandbox.kube")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--objects", type=Path, required=True, help="a JSON list of objects")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, json.loads(args.objects.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
