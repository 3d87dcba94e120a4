"""HTTP plumbing (handler, HTTP and HTTPS servers) and the process entry point."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .api import App, Request, Response, json_response, match_route
from .base import APP_NAME, log, pg_target, redis_target

MAX_BODY_BYTES = 64 * 1024
REQUEST_IDLE_TIMEOUT_S = 30.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0


class Handler(BaseHTTPRequestHandler):
    server: AppServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without this, +40 ms per request
    server_version = APP_NAME
    sys_version = ""
    timeout = REQUEST_IDLE_TIMEOUT_S
    # send_error() (unsupported method, malformed request line) answers JSON too.
    error_content_type = "application/json"
    error_message_format = '{"error": "%(message)s"}'

    def log_message(self, format: str, *args: Any) -> None:
        """Per-request logging is deliberately off: /metrics covers traffic."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        app = self.server.app
        url = urlsplit(self.path)
        handler, item_id = match_route(url.path)
        body = self._read_body()
        if isinstance(body, Response):
            response = body
        else:
            response = app.dispatch(Request(method, handler, item_id, parse_qs(url.query), body))
        try:
            self._send(response)
        finally:
            if handler != "/metrics":  # scraping must not create traffic
                app.metrics.observe(method, handler, response.status, time.perf_counter() - started)

    def _read_body(self) -> bytes | Response:
        """The request body, or an error response when it cannot be read."""
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            return json_response(411, {"error": "send a Content-Length, not a chunked body"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            return json_response(400, {"error": "bad Content-Length"})
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return json_response(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
        return self.rfile.read(length)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class AppServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Broken client connections are routine; don't print tracebacks for them."""
        log.debug("error while serving %s", client_address, exc_info=True)


class TLSAppServer(AppServer):
    """The same app over HTTPS; the TLS handshake runs in the request's own thread."""

    def __init__(self, address: tuple[str, int], app: App, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, app)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        with self.context.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m opsproof.sandbox.app", description="The sandbox's reference HTTP application."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    # Secrets are better passed in the environment (APP_PG_DSN, APP_REDIS_URL): argv is visible to `ps`.
    parser.add_argument("--pg-dsn", default=os.environ.get("APP_PG_DSN"), required="APP_PG_DSN" not in os.environ)
    parser.add_argument(
        "--redis-url", default=os.environ.get("APP_REDIS_URL"), required="APP_REDIS_URL" not in os.environ
    )
    parser.add_argument("--pidfile")
    args = parser.parse_args(argv)
    if args.tls_port is not None and not (args.certfile and args.keyfile):
        parser.error("--tls-port needs --certfile and --keyfile")
    return args


def write_pidfile(path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Block the stop signals in every thread (threads inherit the mask) and
    # collect them with sigwait() in the main thread: no async signal handlers.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    app = App(args.pg_dsn, args.redis_url)
    stopping = threading.Event()
    servers: list[AppServer] = []
    serving: list[AppServer] = []
    try:
        servers.append(AppServer((args.host, args.port), app))
        urls = [f"http://{args.host}:{args.port}"]
        if args.tls_port is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(args.certfile, args.keyfile)
            servers.append(TLSAppServer((args.host, args.tls_port), app, context))
            urls.append(f"https://{args.host}:{args.tls_port}")
        if args.pidfile:
            write_pidfile(args.pidfile)
        for server in servers:
            threading.Thread(target=server.serve_forever, name=f"serve-{server.server_address}").start()
            serving.append(server)
        log.info(
            "%s pid %d listening on %s, release %s, postgres %s, redis %s",
            APP_NAME,
            os.getpid(),
            " and ".join(urls),
            app.release.current.version,
            pg_target(args.pg_dsn),
            redis_target(args.redis_url),
        )
        app.check_all()  # logs the initial state of each dependency
        threading.Thread(target=app.monitor, args=(stopping,), name="dependency-monitor", daemon=True).start()
        received = signal.sigwait(stop_signals)
        log.info("received %s, shutting down", signal.Signals(received).name)
    finally:
        stopping.set()
        for server in serving:
            server.shutdown()  # waits for serve_forever to return: only for started servers
        for server in servers:
            server.server_close()
        app.close()
        if args.pidfile:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(args.pidfile)
    return 0
