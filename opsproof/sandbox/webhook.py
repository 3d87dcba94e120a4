"""The sandbox's Alertmanager receiver: stores every webhook delivery so it can be read back.

``POST /alerts`` stores the Alertmanager payload (with the time it arrived) as a JSON line;
``GET /deliveries`` returns them all as a JSON list. Run: ``python -m opsproof.sandbox.webhook --port P --store F``.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


def make_handler(store: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != "/alerts":
                self._send(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                payload = json.loads(self.rfile.read(min(length, 10_000_000)) or b"null")
            except ValueError:
                self._send(400, {"error": "not JSON"})
                return
            with _LOCK, store.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"received_at": time.time(), "payload": payload}) + "\n")
            self._send(200, {"stored": True})

        def do_GET(self) -> None:
            if self.path == "/deliveries":
                try:
                    lines = store.read_text(encoding="utf-8").splitlines()
                except FileNotFoundError:
                    lines = []
                self._send(200, [json.loads(line) for line in lines if line.strip()])
            elif self.path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": "not found"})

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.store))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
