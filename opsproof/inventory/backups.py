"""The ``backups:`` entry: where a datastore's backups land, and how a DR drill restores them (its scratch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from opsproof.inventory.addresses import Dsn
from opsproof.inventory.base import Duration, _Entry, _Model
from opsproof.inventory.objects import S3
from opsproof.inventory.supabase import Supabase
from opsproof.inventory.wal import Pitr


class Scratch(_Model):
    """Where a DR drill restores: a throwaway local cluster (``kind: local``, the default), a server given by
    ``dsn`` on which the drill creates a database of its own and drops it afterwards (``kind: server``), or a
    throwaway container of the dump's PostgreSQL major, whatever the host has installed (``kind: container``)."""

    kind: Literal["local", "server", "container"] | None = None  # unsaid: server with a dsn, else local
    dsn: Dsn | None = Field(None, description="postgresql://postgres:${SCRATCH_PASSWORD}@scratch-db:5432/postgres")
    jobs: int = Field(2, ge=1, le=64)  # pg_restore --jobs, and parallel verification
    # container: the scratch server's major (default: the dump's; a newer one rehearses an upgrade), and the image
    # to run instead of the one opsproof builds for that major ("{major}" is replaced by it)
    major: int | None = Field(None, ge=10, le=99, description="17")
    image: str | None = Field(None, pattern=r"^[^\s]+$", description="postgres:16, or registry.example.com/pg:{major}")

    @model_validator(mode="after")
    def _shape(self) -> Scratch:
        kind = self.kind or ("server" if self.dsn else "local")
        if kind == "server" and not self.dsn:
            raise ValueError("kind: server without a dsn. Fix: add dsn: postgresql://…@scratch-db/postgres, or "
                             "use kind: local or kind: container")
        if kind != "server" and self.dsn:
            raise ValueError(f"kind: {kind} with a dsn (a scratch server's). Fix: remove dsn:, or write kind: server")
        extra = [k for k in ("major", "image") if getattr(self, k) is not None]
        if kind != "container" and extra:
            verb = "apply" if len(extra) > 1 else "applies"
            raise ValueError(f"{' and '.join(extra)} {verb} only to kind: container. Fix: add kind: container, or "
                             f"remove {', '.join(extra)}")
        object.__setattr__(self, "kind", kind)  # frozen model: the resolved kind, once
        return self


class Backups(_Entry):
    """Where a datastore's backups land ("verify backups are recent"), and — with ``postgres:`` or ``redis:`` —
    how a DR drill restores and verifies them against an RPO and an RTO."""

    directory: str | None = Field(None, min_length=1, description="/var/backups/postgres")
    pattern: str = Field("*", min_length=1, description="apex_full_*.sql.gz")
    rpo: Duration = Field(86400, description="24h")  # the data a restore may lose; the drill measures it
    # how old the newest backup may be ("verify backups are recent (<24h)"); default: rpo. Apart when the runbook
    # states both, e.g. daily dumps (max_age: 24h) against an RPO of 1h that only WAL archiving could meet
    max_age: Duration | None = Field(None, description="24h")
    rto: Duration | None = Field(None, description="4h")  # provision + restore + verify must fit in it
    min_size_bytes: int = Field(1, ge=0)  # an empty or truncated-to-nothing file is not a backup
    # how long backups are kept ("only the last 30 days kept"): the oldest one in directory may be this old, plus one
    # backup interval (max_age, else rpo) of slack for the clean-up's own schedule; backups.retention
    retention: Duration | None = Field(None, description="30d")
    retention_slack: Duration | None = Field(None, description="1d")  # the clean-up's interval; default: max_age/rpo
    postgres: str | None = Field(None, description="main (a postgres entry: the database these are backups of)")
    redis: str | None = Field(None, description="cache (a redis entry: the server these RDB snapshots are of)")
    dsn: Dsn | None = Field(None, description="postgresql://backup:${BACKUP_PASSWORD}@db:5432/app")  # for pg_dump
    fresh: bool = False  # the drill takes a fresh backup (`opsproof backup`) instead of the newest one in directory
    format: Literal["auto", "plain", "custom", "directory", "rdb"] = "auto"  # plain: .sql or .sql.gz
    tables: list[str] = Field(default_factory=list, description="[public.orders, public.customers]")
    freshness_query: str | None = Field(None, description="SELECT max(updated_at) FROM orders")
    sample: int = Field(100, ge=0, le=100000)  # Redis: keys whose values are compared after a restore
    min_sample_match: float = Field(0.9, ge=0, le=1)  # Redis: share of them equal to the live source's
    scratch: Scratch = Field(default_factory=Scratch)
    s3: S3 | None = None  # where the backups land in object storage (backups.s3_recent, s3_quota, s3_lifecycle)
    pitr: Pitr | None = None  # base backups in directory + the WAL archive: a point-in-time recovery drill
    # a Supabase project's managed backups (its Management API): backups.supabase_recent, _failures, _pitr
    supabase: Supabase | None = None

    @model_validator(mode="after")
    def _shape(self) -> Backups:
        if self.postgres and self.redis:
            raise ValueError("gives both postgres: and redis:. Fix: one entry per datastore; split it in two")
        if self.directory is None and not self.fresh and self.s3 is None and self.supabase is None:
            raise ValueError("no directory (where the backups are). Fix: add directory: /var/backups/…, "
                             "s3: {bucket: …} for backups in object storage, supabase: {project_ref: …} for a "
                             "Supabase project's managed backups, or fresh: true to take a backup at the start of "
                             "each drill")
        if self.directory is None and self.supabase is not None and self.datastore and not self.fresh:
            raise ValueError("supabase: without a directory: a DR drill restores from a directory (Supabase's "
                             "managed backups are not downloadable). Fix: add directory:, or fresh: true, or move "
                             "supabase: to an entry of its own")
        if self.directory is None and self.s3 is not None and self.datastore and not self.fresh:
            raise ValueError("s3: without a directory: a DR drill restores from a directory. Fix: add directory: "
                             "(where the drill finds the downloaded dumps), or fresh: true")
        if self.redis and self.scratch.kind != "local":
            raise ValueError(f"scratch.kind: {self.scratch.kind} is for PostgreSQL drills; a Redis drill restores into "
                             "a local redis-server. Fix: remove scratch:")
        if self.pitr is not None and (not (self.postgres and self.directory) or self.fresh):
            raise ValueError("pitr: needs postgres: NAME and directory: (where the pg_basebackup directories are), "
                             "without fresh: (a base backup taken now predates no target). Fix: add them, or "
                             "remove pitr:")
        if self.fresh and not (self.postgres or self.redis):
            raise ValueError("fresh: true without a datastore to back up. Fix: add postgres: NAME or redis: NAME")
        return self

    @property
    def age_limit(self) -> tuple[float, str]:
        """How old the newest backup may be, and which key says so (``max_age``, else ``rpo``)."""
        return (self.max_age, "max_age") if self.max_age is not None else (self.rpo, "rpo")

    @property
    def slack(self) -> tuple[float, str]:
        """How late a clean-up may run (one backup interval unless said), and which key says so."""
        return (self.retention_slack, "retention_slack") if self.retention_slack is not None else self.age_limit

    @property
    def retention_limit(self) -> float | None:
        """How old the oldest backup in directory may be: the retention plus the slack, or None."""
        return None if self.retention is None else self.retention + self.slack[0]

    @property
    def datastore(self) -> tuple[str, str] | None:
        """(kind, name) of the datastore a drill restores, or None for a freshness-only entry."""
        if self.postgres:
            return "postgres", self.postgres
        if self.redis:
            return "redis", self.redis
        return None
