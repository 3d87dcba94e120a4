"""The inventory's ``backups.<name>.s3`` (object storage), validated with file, line and key."""

from __future__ import annotations

import re

import pytest

from opsproof.inventory import InventoryError, address_of, loads
from opsproof.inventory.objects import human_size, parse_size


def entry(s3: str, extra: str = "") -> str:
    return f"environment: t\nbackups:\n  offsite:\n{extra}    s3: {s3}\n"


def test_an_s3_entry_alone_is_a_backups_entry() -> None:
    cfg = loads(entry("{bucket: magicsaas-backups, prefix: pg/, max_bytes: 500GiB, expire_days: 30}"))
    offsite = cfg.backups["offsite"]
    assert offsite.s3 is not None
    assert (offsite.s3.max_bytes, offsite.s3.checks_lifecycle) == (500 * 2**30, True)
    assert address_of(offsite) == "s3://magicsaas-backups/pg/"
    assert offsite.directory is None


def test_the_secret_key_is_not_in_the_repr() -> None:
    cfg = loads(entry("{bucket: b-ok, access_key: AKIA1, secret_key: 'literal-s3cret-9'}")).backups["offsite"]
    assert "literal-s3cret-9" not in repr(cfg) + str(cfg)
    assert cfg.s3 is not None
    assert cfg.s3.secret_key == "literal-s3cret-9"


def test_sizes() -> None:
    assert [parse_size(v) for v in ("1048576", "2KB", "1.5 GiB", 7)] == [1048576, 2000, 3 * 2**29, 7]
    assert [human_size(n) for n in (512, 3000, 2**31)] == ["512 B", "2.9 KiB", "2.0 GiB"]


@pytest.mark.parametrize(
    ("s3", "line", "message"),
    [
        ("{bucket: b-ok, access_key: AKIA1}", 4, "backups.offsite.s3: gives access_key alone. Fix: give both "
                                                 "access_key: ${…} and secret_key: ${…}, or neither"),
        ("{bucket: b-ok, max_bytes: lots}", 4, "backups.offsite.s3.max_bytes: 'lots' is not a size. Fix: write "
                                               "bytes (1048576) or a size such as 500GiB"),
        ("{bucket: B_Bad}", 4, "backups.offsite.s3.bucket: String should match pattern"),
        ("{bucket: b-ok, endpoint: 'minio:9000'}", 4, "backups.offsite.s3.endpoint: String should match pattern"),
    ],
    ids=["half-credentials", "bad-size", "bad-bucket", "endpoint-without-scheme"],
)
def test_s3_is_validated_with_file_and_line(s3: str, line: int, message: str) -> None:
    with pytest.raises(InventoryError, match=rf"^inv\.yaml:{line}: {re.escape(message)}"):
        loads(entry(s3), "inv.yaml")


def test_a_drill_needs_a_directory_even_with_s3() -> None:
    text = "environment: t\npostgres:\n  main: {dsn: 'postgresql://a@b/c'}\n" + entry(
        "{bucket: b-ok}", "    postgres: main\n").split("\n", 1)[1]
    with pytest.raises(InventoryError, match=r"^inv\.yaml:5: backups\.offsite: s3: without a directory: a DR drill "
                                             r"restores from a directory"):
        loads(text, "inv.yaml")


def test_the_s3_client_s_connections_are_watched() -> None:
    """botocore's pools (its own classes, for every manager it makes, proxies' too) get connections whose connect
    is cut to the check's deadline and whose socket the watchdog shuts at it (no socket opened here)."""
    import botocore.awsrequest

    from opsproof.inventory.objects import S3
    from opsproof.probes.s3_client import make_client

    client = make_client(S3(bucket="app-backups", endpoint="http://127.0.0.1:9", access_key="a", secret_key="b"))
    session = client._endpoint.http_session
    for scheme, base in (("http", botocore.awsrequest.AWSHTTPConnectionPool),
                         ("https", botocore.awsrequest.AWSHTTPSConnectionPool)):
        pool = session._pool_classes_by_scheme[scheme]
        assert issubclass(pool, base)
        assert issubclass(pool.ConnectionCls, base.ConnectionCls)
        assert pool.ConnectionCls.__name__ == f"Watched{base.ConnectionCls.__name__}"
    assert session._manager.pool_classes_by_scheme is session._pool_classes_by_scheme
    client.close()
