"""A TCP fault proxy between the reference app and a datastore (this kernel has no netem): latency, reset, blackhole.

Run: ``python -m opsproof.sandbox.faultproxy --listen P --upstream HOST:PORT --control C``

The sandbox runs it as a service of its own, so a fault outlives the process that set it and a rollback or an
audit from any process can read and clear it. Control interface (HTTP on 127.0.0.1:C):

* ``GET /fault`` → ``{"mode": "none"|"latency"|"reset"|"blackhole", "latency_ms": …, "since": …, "connections": n}``
* ``PUT /fault`` with ``{"mode": "latency", "latency_ms": 450}`` (or ``{"mode": "none"}``) → the new state
* ``GET /health`` → ``{"status": "ok"}``

Modes: ``latency`` delays every chunk from the datastore by ``latency_ms``; ``reset`` aborts every connection
with a TCP RST and resets new ones at once; ``blackhole`` accepts and keeps connections but forwards nothing
(the client's own timeout is what it meets). ``none`` forwards untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("none", "latency", "reset", "blackhole")
CONNECT_TIMEOUT_S = 2.0
CHUNK = 65536


@dataclass
class Fault:
    mode: str = "none"
    latency_ms: int = 0
    since: float = 0.0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), the way a crashed peer or a firewall's reject looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Proxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.fault = Fault(since=time.time())
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()

    def set_fault(self, mode: str, latency_ms: int = 0) -> Fault:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if mode == "latency" and not 0 < latency_ms <= 60_000:
            raise ValueError("latency needs latency_ms between 1 and 60000")
        self.fault = Fault(mode, latency_ms if mode == "latency" else 0, time.time())
        if mode == "reset":
            for client, upstream in list(self.pairs):
                _reset(client)
                if upstream is not None:
                    _reset(upstream)
        return self.fault

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.fault.mode == "reset":
            _reset(client_w)
            return
        upstream_w: asyncio.StreamWriter | None = None
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (client_w, None)
        self.pairs.add(pair)
        try:
            if self.fault.mode == "blackhole":
                await self._swallow(client_r)
                return
            upstream_r, writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT_S)
            upstream_w = writer
            self.pairs.discard(pair)
            pair = (client_w, writer)
            self.pairs.add(pair)
            await asyncio.gather(self._pump(client_r, writer, delay=False),
                                 self._pump(upstream_r, client_w, delay=True))
        except (OSError, TimeoutError):
            pass  # upstream down or refused: the client sees its connection closed, as without a proxy
        finally:
            self.pairs.discard(pair)
            for w in (client_w, upstream_w):
                if w is not None:
                    w.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(CHUNK):
            pass

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: bool) -> None:
        try:
            while data := await reader.read(CHUNK):
                fault = self.fault
                if fault.mode == "blackhole":
                    continue
                if delay and fault.mode == "latency":
                    await asyncio.sleep(fault.latency_ms / 1000)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

    # --- control ----------------------------------------------------------------------------------------------
    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
            body = await reader.readexactly(min(int(headers.get("content-length", "0")), 10_000))
            status, payload = self._route(method, path, body)
        except (ValueError, asyncio.IncompleteReadError, TimeoutError) as e:
            status, payload = 400, {"error": str(e)}
        data = json.dumps(payload).encode()
        writer.write(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     "Connection: close\r\n\r\n".encode() + data)
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/health" and method == "GET":
            return 200, {"status": "ok"}
        if path != "/fault":
            return 404, {"error": "not found"}
        if method in ("PUT", "POST"):
            wanted = json.loads(body or b"{}")
            self.set_fault(str(wanted.get("mode", "none")), int(wanted.get("latency_ms", 0)))
        elif method != "GET":
            return 405, {"error": "use GET or PUT"}
        return 200, {**asdict(self.fault), "connections": len(self.pairs)}


async def serve(listen: int, upstream: tuple[str, int], control_port: int, bind: str = "127.0.0.1") -> None:
    proxy = Proxy(upstream)
    data = await asyncio.start_server(proxy.handle, bind, listen)
    ctl = await asyncio.start_server(proxy.control, bind, control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with data, ctl:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsproof.sandbox.faultproxy", description=__doc__)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="HOST:PORT")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (a container's: 0.0.0.0)")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    asyncio.run(serve(args.listen, (host, int(port)), args.control, args.bind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
