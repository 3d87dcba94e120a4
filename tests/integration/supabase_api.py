"""A local stand-in of two endpoints of the Supabase Management API: ``GET /v1/projects/{ref}/database/backups``
and ``GET /v1/projects/{ref}/config/disk/util``.

It answers exactly the documented shape (``V1BackupsResponse`` of the Management API's OpenAPI document as the
Supabase CLI vendors it, see :mod:`opsproof.probes.supabase`): ``region``, ``walg_enabled``, ``pitr_enabled``,
``backups`` (``id``, ``is_physical_backup``, ``status``, ``inserted_at`` as RFC 3339) and ``physical_backup_data``
(``earliest_physical_backup_date_unix``, ``latest_physical_backup_date_unix``: unix seconds, present only when
given); the disk as ``DiskUtilMetricsResponse`` (``timestamp``, ``metrics.fs_size_bytes``/``fs_avail_bytes``/
``fs_used_bytes``). A request without ``Authorization: Bearer <the token>`` gets 401 ``{"message": "Unauthorized"}``; an
unknown project 404. Times are given as ages and rendered when asked, so a case stays as old as it was set up.

A stand-in, not the service: it was written from the spec and the CLI's recorded answers, never compared with
api.supabase.com.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = re.compile(r"^/v1/projects/([a-z]{20})/(database/backups|config/disk/util)$")


@dataclass
class Project:
    """One project's backups: ``backups`` as (status, age in seconds, physical?); PITR's restore points as ages."""

    backups: list[tuple[str, float, bool]] = field(default_factory=list)
    pitr: bool = False
    walg: bool = True
    earliest_age_s: float | None = None
    latest_age_s: float | None = None
    region: str = "us-east-1"
    disk: tuple[int, int] = (8 * 2**30, 2 * 2**30)  # fs_size_bytes, fs_used_bytes (v1-get-disk-utilization)

    def disk_answer(self) -> dict[str, Any]:
        size, used = self.disk
        return {"timestamp": dt.datetime.now(dt.UTC).isoformat(), "metrics": {
            "fs_size_bytes": size, "fs_avail_bytes": size - used, "fs_used_bytes": used}}

    def answer(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        physical: dict[str, int] = {}
        if self.earliest_age_s is not None:
            physical["earliest_physical_backup_date_unix"] = int(now.timestamp() - self.earliest_age_s)
        if self.latest_age_s is not None:
            physical["latest_physical_backup_date_unix"] = int(now.timestamp() - self.latest_age_s)
        return {"region": self.region, "walg_enabled": self.walg, "pitr_enabled": self.pitr,
                "backups": [{"id": 1000 + i, "is_physical_backup": phys, "status": status,
                             "inserted_at": (now - dt.timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                            for i, (status, age, phys) in enumerate(self.backups)],
                "physical_backup_data": physical}


class StandIn:
    def __init__(self, token: str, projects: dict[str, Project]) -> None:
        self.token, self.projects = token, projects
        self.auth_seen: list[str] = []  # the Authorization headers received, in order
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.auth_seen.append(self.headers.get("Authorization", ""))
                m = PATH.match(self.path)
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    self._send(401, {"message": "Unauthorized"})
                elif m is None or m.group(1) not in stand_in.projects:
                    self._send(404, {"message": "Project not found"})
                else:
                    project = stand_in.projects[m.group(1)]
                    self._send(200, project.answer() if m.group(2) == "database/backups" else project.disk_answer())

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def serving(token: str, projects: dict[str, Project]) -> Iterator[StandIn]:
    stand_in = StandIn(token, projects)
    thread = threading.Thread(target=stand_in.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()
        thread.join(5)
