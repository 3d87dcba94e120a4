"""``backups.<name>.s3``: where a datastore's backups land in object storage (an S3 API: AWS S3, MinIO, Ceph RGW…).

Read-only: the checks list the objects under ``prefix`` (ListObjectsV2) and read the bucket's lifecycle
configuration (GetBucketLifecycleConfiguration); they never write, copy or delete.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from opsproof.inventory.addresses import Verify
from opsproof.inventory.base import Duration, _Model
from opsproof.redact import MASK

UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(v: Any) -> Any:
    """``500GiB``, ``2TB``, ``1048576`` → bytes (an int)."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return v
    if isinstance(v, int | float):
        return int(v)
    m = SIZE.match(v)
    if not m or m.group(2).lower() not in UNITS:
        raise ValueError(f"{v!r} is not a size. Fix: write bytes (1048576) or a size such as 500GiB, 2TB, 800MB")
    return int(float(m.group(1)) * UNITS[m.group(2).lower()])


def human_size(n: float) -> str:
    """1.5 GiB, 12.0 MiB, 512 B."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]


class S3(_Model):
    """A bucket (and a prefix in it) on an S3 API: its newest object judged against the entry's ``max_age``/``rpo``
    (``backups.s3_recent``), its usage against ``max_bytes`` (``backups.s3_quota``), its lifecycle rule
    (``backups.s3_lifecycle``, with ``lifecycle: true`` or ``expire_days``)."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="magicsaas-backups")
    prefix: str = Field("", description="postgres/daily/")
    # none (or empty, as `${S3_ENDPOINT:-}` gives): AWS's endpoint of the region
    endpoint: Annotated[str | None, BeforeValidator(lambda v: v or None)] = Field(
        None, pattern=r"^https?://[^\s/]+", description="https://minio.internal:9000")
    region: str = Field("us-east-1", min_length=1, description="eu-west-1")
    # both or neither: without them, boto3's own chain (AWS_* environment, ~/.aws, instance profile)
    access_key: str | None = Field(None, min_length=1, description="${AWS_ACCESS_KEY_ID}")
    secret_key: str | None = Field(None, min_length=1, description="${AWS_SECRET_ACCESS_KEY}")
    verify_tls: Verify = True  # or a path to a CA bundle
    max_bytes: Size | None = Field(None, description="500GiB")  # usage under prefix against this quota
    # how long backup objects are kept: the oldest under prefix may be this old plus the entry's backup interval
    # (max_age, else rpo) — what the lifecycle rule is for, seen in the bucket (backups.s3_retention)
    retention: Duration | None = Field(None, description="30d")
    lifecycle: bool = False  # an enabled lifecycle rule must cover prefix
    expire_days: int | None = Field(None, ge=1, le=36500, description="30")  # … and expire its objects after N days
    timeout_s: float = Field(10, gt=0, le=300)  # each connect and each read; one attempt, no retries
    max_objects: int = Field(100_000, ge=1, le=10_000_000)  # more under prefix is a failure, not a slow listing

    @model_validator(mode="after")
    def _shape(self) -> S3:
        if (self.access_key is None) != (self.secret_key is None):
            given = "access_key" if self.access_key else "secret_key"
            raise ValueError(f"gives {given} alone. Fix: give both access_key: ${{…}} and secret_key: ${{…}}, or "
                             "neither (boto3's own credentials chain)")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() without the secret key (a model's repr reaches output where no redactor runs)."""
        for name, value in super().__repr_args__():
            yield name, MASK if name == "secret_key" and value else value

    @property
    def where(self) -> str:
        """s3://bucket/prefix at its endpoint (no credentials: it is shown in findings)."""
        at = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{at}"

    @property
    def checks_lifecycle(self) -> bool:
        return self.lifecycle or self.expire_days is not None
