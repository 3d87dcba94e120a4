"""``backups.<name>.supabase``: a Supabase project's managed backups, read through the Supabase Management API
(``GET {api_url}/v1/projects/{project_ref}/database/backups`` with a personal access token as a bearer token).

Read-only: one GET per check; nothing is restored, scheduled or changed (the token needs ``database:read`` only).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from opsproof.inventory.addresses import Verify
from opsproof.inventory.base import Duration, _Model
from opsproof.redact import MASK


class Supabase(_Model):
    """The project whose backups are judged: its newest COMPLETED backup against the entry's ``max_age``/``rpo``
    (``backups.supabase_recent``), no FAILED one among those of ``failures_within`` (``backups.supabase_failures``)
    and, with ``pitr: true``, point-in-time recovery enabled — with ``pitr_window`` the restorable range at least
    that long, with ``pitr_rpo`` its latest restore point at most that old (``backups.supabase_pitr``); with
    ``max_disk_ratio``, the database's disk used at most that share (``backups.supabase_disk``)."""

    # the spec's own constraint on {ref}: 20 lowercase letters (openapi.json, v1-list-all-backups)
    project_ref: str = Field(pattern=r"^[a-z]{20}$", description="pikywaoqlekupfynnclg")
    access_token: str = Field(min_length=1, description="${SUPABASE_ACCESS_TOKEN}")
    api_url: str = Field("https://api.supabase.com", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    verify_tls: Verify = True  # or a path to a CA bundle
    failures_within: Duration = Field(7 * 86400, description="7d")  # a FAILED backup this recent fails the check
    pitr: bool = False  # PITR (pitr_enabled) must be on
    pitr_window: Duration | None = Field(None, description="30d")  # latest − earliest restore point at least this
    pitr_rpo: Duration | None = Field(None, description="5m")  # now − latest restore point at most this
    # the database's disk: fs_used_bytes / fs_size_bytes at most this (GET /v1/projects/{ref}/config/disk/util)
    max_disk_ratio: float | None = Field(None, gt=0, le=1, description="0.85")
    timeout_s: float = Field(10, gt=0, le=300)  # the whole check: connect, TLS, the answer
    max_answer_bytes: int = Field(4 * 2**20, ge=1024, le=2**30)  # a bigger answer fails, unread

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() without the token (a model's repr reaches output where no redactor runs)."""
        for name, value in super().__repr_args__():
            yield name, MASK if name == "access_token" and value else value

    @property
    def path(self) -> str:
        return f"/v1/projects/{self.project_ref}/database/backups"

    @property
    def disk_path(self) -> str:
        return f"/v1/projects/{self.project_ref}/config/disk/util"

    def url(self, path: str) -> str:
        """An endpoint of the API (no token: it is shown in findings)."""
        return self.api_url.rstrip("/") + path

    @property
    def where(self) -> str:
        return self.url(self.path)

    @property
    def checks_pitr(self) -> bool:
        return self.pitr or self.pitr_window is not None or self.pitr_rpo is not None
