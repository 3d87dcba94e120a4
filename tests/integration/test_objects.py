"""Backups in object storage (``backups.<name>.s3``) against a real S3 API over HTTP: moto's server mode
(``ThreadedMotoServer`` on 127.0.0.1), with IAM authentication enforced and a read-only user (ListBucket and
GetLifecycleConfiguration only: a write would be refused). One module server, one suite run for every case.

Real S3 and MinIO are not tested here (neither installs on this machine); moto speaks the same wire protocol.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from support import SuiteRun, run_suite

from opsproof.util.poll import wait_until

# moto < 5.2.6 (pyproject): 5.2.6 authorizes ListObjectsV2 as "s3:ListObjectsV2", an action AWS does not have, and
# refused this module's AWS-style read-only policy (s3:ListBucket) — the AccessDenied of a CI run
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("s3")]


WRONG_SECRET = "canary-s3-wrong-9fQz"  # a secret key the server does not know; must appear in no output


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A moto S3 server with the buckets of the cases, and the read-only user's keys."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    admin: dict[str, Any] = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "admin",
                             "aws_secret_access_key": "admin"}
    try:
        s3, iam = boto3.client("s3", **admin), boto3.client("iam", **admin)
        for bucket in ("fresh-bkp", "full-bkp", "nolife-bkp"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="fresh-bkp", Key="pg/apex_full_1.sql.gz", Body=b"\x1f\x8b" + b"x" * 2000)
        s3.put_object(Bucket="fresh-bkp", Key="pg/apex_full_2.sql.gz", Body=b"\x1f\x8b" + b"x" * 1022)
        s3.put_object(Bucket="fresh-bkp", Key="pg/notes.txt", Body=b"not a backup")
        s3.put_bucket_lifecycle_configuration(Bucket="fresh-bkp", LifecycleConfiguration={"Rules": [
            {"ID": "retention-30d", "Status": "Enabled", "Filter": {"Prefix": "pg/"}, "Expiration": {"Days": 30}}]})
        s3.put_object(Bucket="full-bkp", Key="pg/apex_full_1.sql.gz", Body=b"x" * 3000)
        s3.put_object(Bucket="nolife-bkp", Key="pg/apex_full_1.sql.gz", Body=b"x" * 1024)
        iam.create_user(UserName="backup-reader")
        iam.put_user_policy(UserName="backup-reader", PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                    "Action": ["s3:ListBucket", "s3:GetLifecycleConfiguration"]}]}))
        key = iam.create_access_key(UserName="backup-reader")["AccessKey"]
        httpx.post(f"{url}/moto-api/reset-auth", content=b"0").raise_for_status()  # every request signed from now
        yield {"url": url, "access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    finally:
        server.stop()


def inventory(url: str) -> str:
    def entry(bucket: str, secret: str = "${S3_SECRET_KEY}", **extra: Any) -> str:
        fields = {"endpoint": url, "bucket": bucket, "prefix": "pg/", "access_key": "${S3_ACCESS_KEY}",
                  "secret_key": secret, "timeout_s": 5, **extra}
        return json.dumps(fields)

    return f"""environment: s3
backups:
  fresh:
    pattern: "apex_full_*.sql.gz"
    max_age: 1h
    s3: {entry("fresh-bkp", max_bytes="1MiB", expire_days=30, retention="30d")}
  leftover:
    pattern: "apex_full_*.sql.gz"
    max_age: 1h
    retention_slack: 1s
    s3: {entry("fresh-bkp", retention="1s")}
  stale:
    pattern: "apex_full_*.sql.gz"
    max_age: 1s
    s3: {entry("fresh-bkp")}
  full:
    s3: {entry("full-bkp", max_bytes="2KiB")}
  nolife:
    s3: {entry("nolife-bkp", lifecycle=True)}
  badkey:
    s3: {entry("fresh-bkp", "${S3_WRONG_SECRET_KEY}", max_bytes="1MiB")}
  weekly:
    s3: {entry("fresh-bkp", expire_days=7)}
"""


@pytest.fixture(scope="module")
def run(s3: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, Path]:
    folder = tmp_path_factory.mktemp("s3")
    path = folder / "inventory.yaml"
    path.write_text(inventory(s3["url"]))
    newest = boto3.client("s3", endpoint_url=s3["url"], region_name="us-east-1", aws_access_key_id=s3["access_key"],
                          aws_secret_access_key=s3["secret_key"]).list_objects_v2(Bucket="fresh-bkp", Prefix="pg/")
    modified = min(o["LastModified"] for o in newest["Contents"] if o["Key"].startswith("pg/apex_full_"))
    # stale's max_age is 1 s: its newest object, uploaded a moment ago, must first be older than that; leftover's
    # retention + slack is 2 s: its oldest, the backup left behind, older than that (S3 keeps whole seconds)
    wait_until(lambda: (dt.datetime.now(dt.UTC) - modified).total_seconds() > 2.5, 6, "the oldest backup 2.5 s old")
    env = {"S3_ACCESS_KEY": s3["access_key"], "S3_SECRET_KEY": s3["secret_key"], "S3_WRONG_SECRET_KEY": WRONG_SECRET}
    out = folder / "out"
    return run_suite(path, out, suite="checks/post_maintenance/test_30_backups.py", env=env), out


def observed(run: SuiteRun, check: str, target: str) -> str:
    [record] = [r for r in run.records if r["check"] == check and r["target"] == target]
    return f"{record['outcome']}: {record['observed']} | expected {record['expected']}"


def test_exactly_the_broken_checks_fail(run: tuple[SuiteRun, Path]) -> None:
    suite, _ = run
    assert suite.failed == {"backups.s3_recent@backups[stale]", "backups.s3_quota@backups[full]",
                            "backups.s3_lifecycle@backups[nolife]", "backups.s3_recent@backups[badkey]",
                            "backups.s3_quota@backups[badkey]", "backups.s3_lifecycle@backups[weekly]",
                            "backups.s3_retention@backups[leftover]"}, suite.output
    passed = {f"{r['check']}@{r['target']}" for r in suite.records if r["outcome"] == "passed"}
    assert passed == {"backups.s3_recent@backups[fresh]", "backups.s3_quota@backups[fresh]",
                      "backups.s3_lifecycle@backups[fresh]", "backups.s3_recent@backups[full]",
                      "backups.s3_recent@backups[nolife]", "backups.s3_recent@backups[weekly]",
                      "backups.s3_recent@backups[leftover]", "backups.s3_retention@backups[fresh]"}, suite.output
    assert "Traceback" not in suite.output


def test_the_messages_name_target_observed_and_expected(run: tuple[SuiteRun, Path], s3: dict[str, str]) -> None:
    suite, _ = run
    at = f"at {s3['url']}"
    fresh = observed(suite, "backups.s3_recent", "backups[fresh]")
    assert fresh.startswith("passed: newest pg/apex_full_2.sql.gz: "), fresh  # newest of the pattern's, not notes.txt
    assert fresh.endswith(" s old, 1024 bytes | expected newest apex_full_*.sql.gz under s3://fresh-bkp/pg/ "
                          f"{at} younger than 1h (max_age) and ≥ 1 bytes"), fresh
    stale = observed(suite, "backups.s3_recent", "backups[stale]")
    assert stale.startswith("failed: newest pg/apex_full_2.sql.gz is "), stale
    assert stale.endswith(f"| expected newest apex_full_*.sql.gz under s3://fresh-bkp/pg/ {at} younger than 1s "
                          "(max_age) and ≥ 1 bytes"), stale
    assert observed(suite, "backups.s3_quota", "backups[full]") == (
        f"failed: 2.9 KiB in 1 objects (146% of 2.0 KiB) | expected objects under s3://full-bkp/pg/ {at} at most "
        "2.0 KiB")
    assert observed(suite, "backups.s3_lifecycle", "backups[nolife]") == (
        f"failed: bucket nolife-bkp has no lifecycle configuration | expected an enabled lifecycle rule covering "
        f"s3://nolife-bkp/pg/ {at}")
    assert observed(suite, "backups.s3_lifecycle", "backups[fresh]") == (
        f"passed: rule retention-30d on 'pg/' Enabled, expires after 30 days | expected an enabled lifecycle rule "
        f"covering s3://fresh-bkp/pg/ {at} expiring objects after 30 days")
    assert observed(suite, "backups.s3_lifecycle", "backups[weekly]") == (
        "failed: no rule covering 'pg/' expires after 7 days (covering: retention-30d on 'pg/' Enabled, expires after "
        f"30 days) | expected an enabled lifecycle rule covering s3://fresh-bkp/pg/ {at} expiring objects after 7 days")
    assert "backups[stale]: newest pg/apex_full_2.sql.gz is" in suite.output  # as a user reads it
    kept = observed(suite, "backups.s3_retention", "backups[fresh]")
    assert kept.startswith("passed: oldest pg/apex_full_"), kept  # the pattern's, not notes.txt
    assert kept.endswith(f"old, 2 kept | expected oldest apex_full_*.sql.gz under s3://fresh-bkp/pg/ {at} at most 30d "
                         "old (retention) + 1h (max_age: one backup interval)"), kept
    left = observed(suite, "backups.s3_retention", "backups[leftover]")
    assert re.fullmatch(r"failed: pg/apex_full_[12]\.sql\.gz is \d s old, over the limit of 2 s and 1 more \| "
                        rf"expected oldest apex_full_\*\.sql\.gz under s3://fresh-bkp/pg/ {re.escape(at)} at most 1s "
                        r"old \(retention\) \+ 1s \(retention_slack: one backup interval\)", left), left
    assert observed(suite, "backups.s3_quota", "backups[fresh]") == (
        f"passed: 3.0 KiB in 3 objects (0% of 1.0 MiB) | expected objects under s3://fresh-bkp/pg/ {at} at most "
        "1.0 MiB")


def test_wrong_credentials_fail_with_the_reason_and_no_secret(run: tuple[SuiteRun, Path],
                                                              s3: dict[str, str]) -> None:
    suite, out = run
    for check in ("backups.s3_recent", "backups.s3_quota"):
        assert observed(suite, check, "backups[badkey]").startswith(
            "failed: ListObjectsV2 on bucket fresh-bkp refused: SignatureDoesNotMatch"), suite.output
    written = suite.output + suite.junit + "".join(p.read_text(errors="replace") for p in out.rglob("*")
                                                   if p.is_file())
    assert "fresh-bkp" in written
    for secret in (WRONG_SECRET, s3["secret_key"]):
        assert secret not in written
