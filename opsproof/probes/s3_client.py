"""The S3 API through boto3, read-only and bounded: one attempt, a connect and a read timeout each of the entry's
``timeout_s``; every botocore error becomes a one-line finding (never a traceback, never the secret key).

botocore's timeouts bound one connect and one read each: a server that sends its answer a byte at a time never
trips them. So the whole check is bounded by its deadline, as every other kind: each connect waits at most what
is left of it, and while an answer is read its socket is held by the check's watchdog, which shuts it when the
deadline passes (:func:`opsproof.probes.bounded.bind_botocore`); the check then ends with the deadline's finding.

boto3 is imported on first use: without it, a check on object storage fails with "boto3 is not installed".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from opsproof.inventory.objects import S3
from opsproof.probes.bounded import bind_botocore
from opsproof.probes.deadline import Finding, current
from opsproof.probes.watchdog import Watchdog, watching

PAGE = 1000  # ListObjectsV2's own maximum per page
_session: Any = None  # built once; make_client is called under Connections' S3 lock, one build at a time


def make_client(cfg: S3) -> Any:
    """A boto3 S3 client for ``cfg``: path-style addressing at a custom endpoint (MinIO, Ceph), no retries. Called
    one at a time (a boto3 session does not build clients concurrently)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise Finding("boto3 is not installed: pip install boto3 (or opsproof's own dependencies)") from None
    config = Config(connect_timeout=cfg.timeout_s, read_timeout=cfg.timeout_s, retries={"max_attempts": 1,
                    "mode": "standard"}, s3={"addressing_style": "path" if cfg.endpoint else "auto"},
                    user_agent_extra="opsproof")
    global _session
    if _session is None:  # one botocore session: its loaded service models serve every client after the first
        _session = boto3.session.Session()
    return bind_botocore(_session.client(
        "s3", endpoint_url=cfg.endpoint, region_name=cfg.region, aws_access_key_id=cfg.access_key,
        aws_secret_access_key=cfg.secret_key, verify=cfg.verify_tls, config=config))


def objects(client: Any, cfg: S3) -> Iterator[dict[str, Any]]:
    """Every object under ``cfg.prefix`` (ListObjectsV2, paginated); more than ``max_objects`` is a finding."""
    seen = 0
    pages = call(lambda: client.get_paginator("list_objects_v2").paginate(
        Bucket=cfg.bucket, Prefix=cfg.prefix, PaginationConfig={"PageSize": PAGE}), cfg, "ListObjectsV2")
    for page in guarded(pages, cfg, "ListObjectsV2"):
        for obj in page.get("Contents", []):
            seen += 1
            if seen > cfg.max_objects:
                raise Finding(f"more than {cfg.max_objects} objects under {cfg.where}: raise max_objects, or "
                              "narrow prefix")
            yield obj


def lifecycle_rules(client: Any, cfg: S3) -> list[dict[str, Any]] | None:
    """The bucket's lifecycle rules, or None when it has no lifecycle configuration at all."""
    try:
        return list(call(lambda: client.get_bucket_lifecycle_configuration(Bucket=cfg.bucket), cfg,
                         "GetBucketLifecycleConfiguration").get("Rules", []))
    except Finding as e:
        if "NoSuchLifecycleConfiguration" in str(e):
            return None
        raise


def guarded(pages: Any, cfg: S3, operation: str) -> Iterator[dict[str, Any]]:
    """The pages of a paginator, each request's error a finding."""
    iterator = iter(pages)
    while True:
        page = call(lambda: next(iterator, None), cfg, operation)
        if page is None:
            return
        yield page


def call(fn: Any, cfg: S3, operation: str) -> Any:
    """``fn()``, its botocore errors as one-line findings naming the bucket, the operation and the reason."""
    try:
        from botocore import exceptions as bx
    except ImportError:
        raise Finding("boto3 is not installed: pip install boto3 (or opsproof's own dependencies)") from None
    with watching() as dog:  # the socket of each answer is shut at the check's deadline
        try:
            answer = fn()
        except Exception as e:
            _unless_the_deadline(dog, e, cfg, operation)
            failed = e
        else:
            # an answer cut at the deadline can parse as if whole (botocore reads a body cut short as empty)
            _unless_the_deadline(dog, None, cfg, operation)
            return answer
    _finding(failed, cfg, operation, bx)


def _unless_the_deadline(dog: Watchdog | None, error: Exception | None, cfg: S3, operation: str) -> None:
    """The deadline's finding, when the deadline is what ended the call (its socket shut, or its time up: botocore's
    own read timeout starts after the connect, so it never ends a wait before the deadline would)."""
    deadline = current()
    if isinstance(error, Finding):
        raise error
    if (dog is not None and (dog.cut > 0 or dog.fired)) or (deadline is not None and deadline.seconds is not None
                                                            and deadline.passed()):
        seconds = deadline.seconds if deadline is not None else cfg.timeout_s
        raise Finding(f"no complete answer within {seconds:g} s from {cfg.endpoint or 'S3'} ({operation}; the "
                      "check's deadline)", {"deadline_s": seconds, "operation": operation}) from None


def _finding(exc: Exception, cfg: S3, operation: str, bx: Any) -> NoReturn:
    """A botocore error as a one-line finding naming the bucket, the operation and the reason (another: as it is)."""
    try:
        raise exc
    except bx.ClientError as e:
        error = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code, message = error.get("Code", "?"), error.get("Message", "")
        raise Finding(f"{operation} on bucket {cfg.bucket} refused: {code}" + (f" ({message})" if message else "")
                      + (f", HTTP {status}" if status else ""), {"code": code, "http_status": status}) from None
    except (bx.ConnectTimeoutError, bx.ReadTimeoutError) as e:
        phase = "connect" if isinstance(e, bx.ConnectTimeoutError) else "answer"
        raise Finding(f"no answer within {cfg.timeout_s:g} s ({phase}) from {cfg.endpoint or 'S3'}") from None
    except bx.EndpointConnectionError as e:
        cause = e.kwargs.get("error")
        raise Finding(f"unreachable ({cfg.endpoint or 'S3'}: {_reason(cause) if cause else e})") from None
    except (bx.NoCredentialsError, bx.PartialCredentialsError):
        raise Finding("no S3 credentials: set access_key: and secret_key: (as ${VARS}), or AWS_* in the "
                      "environment") from None
    except bx.BotoCoreError as e:
        raise Finding(f"{operation} on bucket {cfg.bucket} failed ({type(e).__name__}: {e})") from None


def _reason(cause: Any) -> str:
    """The last line of urllib3's wrapped reason: ``[Errno 111] Connection refused``."""
    text = str(cause)
    return text.rsplit(": ", 1)[-1] if "Errno" in text else text
