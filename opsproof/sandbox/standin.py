"""Stand-ins for a profile's HTTP services that the sandbox has no application for: one process, one loopback port
per service, answering its health paths ``200 {"status": "ok", "service": NAME}`` and anything else 404.

    python -m opsproof.sandbox.standin --serve mcp-research=8001:/health --serve dashboard=3000:/api/health

A stand-in proves the check reaches a service at its own port and path and reads its answer; it is not the service
(what the service would report about its own dependencies is not emulated)."""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def handler(name: str, paths: set[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: without it, +40 ms (delayed ACK)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the checks' requests are not news."""

        def do_GET(self) -> None:
            found = self.path.split("?")[0] in paths
            body = json.dumps({"status": "ok", "service": name} if found else {"error": "not found"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def tls_server(certfile: str, keyfile: str) -> Callable[..., ThreadingHTTPServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)

    class Server(ThreadingHTTPServer):
        def finish_request(self, request: Any, client_address: Any) -> None:
            request.settimeout(10)  # the handshake runs in the request's own thread, bounded
            with context.wrap_socket(request, server_side=True) as tls:
                super().finish_request(tls, client_address)

    return Server


def parse(spec: str) -> tuple[str, int, set[str], bool]:
    """``NAME=PORT:/path,/other[:tls]`` → (NAME, PORT, paths, HTTPS)."""
    name, _, rest = spec.partition("=")
    port, _, paths = rest.partition(":")
    paths, _, tls = paths.partition(":")
    return name, int(port), set(paths.split(",")), tls == "tls"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsproof.sandbox.standin")
    parser.add_argument("--serve", action="append", required=True, metavar="NAME=PORT:/path[,/path][:tls]")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # collected below, in this thread
    servers = []
    for spec in args.serve:
        name, port, paths, tls = parse(spec)
        server = (tls_server(args.certfile, args.keyfile) if tls else ThreadingHTTPServer)(
            ("127.0.0.1", port), handler(name, paths))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name=f"standin-{name}", daemon=True).start()
        servers.append(server)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
