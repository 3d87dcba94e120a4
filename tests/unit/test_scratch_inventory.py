"""The inventory's `scratch:` of a drill (kind, major, image), and the versions read from a dump's own header."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from opsproof.drill.archive import Header, HeaderError, major_of, read_header
from opsproof.inventory import InventoryError, loads

BASE = "environment: t\npostgres:\n  main: {dsn: 'postgresql://a@b/c'}\nredis:\n  cache: {url: 'redis://r:6379'}\n" \
       "backups:\n  db:\n    postgres: main\n    directory: /b\n"


def scratch(text: str, entry: str = "") -> str:
    return BASE + entry + f"    scratch: {text}\n"


def test_a_container_scratch_with_a_major_and_an_image() -> None:
    cfg = loads(scratch("{kind: container, major: 17, image: 'registry.example.com/pg:{major}'}")).backups["db"]
    assert (cfg.scratch.kind, cfg.scratch.major) == ("container", 17)
    assert cfg.scratch.image == "registry.example.com/pg:{major}"


def test_the_kind_follows_from_a_dsn_when_unsaid() -> None:
    assert loads(scratch("{jobs: 4}")).backups["db"].scratch.kind == "local"
    assert loads(scratch("{dsn: 'postgresql://s@x/postgres'}")).backups["db"].scratch.kind == "server"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{kind: server}", "backups.db.scratch: kind: server without a dsn. Fix: add dsn: "
                           "postgresql://…@scratch-db/postgres, or use kind: local or kind: container."),
        ("{kind: container, dsn: 'postgresql://s@x/p'}", "backups.db.scratch: kind: container with a dsn (a scratch "
                                                          "server's). Fix: remove dsn:, or write kind: server."),
        ("{image: 'postgres:16'}", "backups.db.scratch: image applies only to kind: container. Fix: add kind: "
                                   "container, or remove image."),
        ("{kind: container, major: 9}", "backups.db.scratch.major: Input should be greater than or equal to 10"),
        ("{kind: vm}", "backups.db.scratch.kind: Input should be 'local', 'server' or 'container' (got 'vm')"),
    ],
    ids=["server-without-dsn", "container-with-dsn", "image-without-container", "major-too-old", "unknown-kind"],
)
def test_scratch_is_validated_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=rf"^inv\.yaml:10: {re.escape(message)}"):
        loads(scratch(text), "inv.yaml")


def test_a_redis_drill_has_no_container_scratch() -> None:
    text = BASE.replace("postgres: main\n", "redis: cache\n") + "    scratch: {kind: container}\n"
    with pytest.raises(InventoryError, match=r"^inv\.yaml:7: backups\.db: scratch\.kind: container is for "
                                             r"PostgreSQL drills; a Redis drill restores into a local redis-server"):
        loads(text, "inv.yaml")


def _int(value: int) -> bytes:
    return b"\x00" + struct.pack("<I", value)


def _str(text: str) -> bytes:
    return _int(len(text)) + text.encode()


def _archive(version: tuple[int, int], server: str, dumper: str) -> bytes:
    head = b"PGDMP" + bytes([*version, 0, 4, 8, 1])
    head += b"\x00" if version >= (1, 15) else _int(0xFFFFFFFF)  # compression: algorithm byte, or level
    head += b"".join(_int(v) for v in (33, 0, 8, 3, 11, 126, 0)) + _str("shop")
    return head + _str(server) + _str(dumper) + b"\x00" * 32


def test_the_majors_of_a_custom_archive_come_from_its_header(tmp_path: Path) -> None:
    old, new = tmp_path / "15.dump", tmp_path / "17.dump"
    old.write_bytes(_archive((1, 14), "15.10 (Debian 15.10-0+deb12u1)", "15.10 (Debian 15.10-0+deb12u1)"))
    new.write_bytes(_archive((1, 16), "15.10", "17.2"))
    assert read_header(old) == Header((1, 14), 15, 15)
    assert read_header(new) == Header((1, 16), 15, 17)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "toc.dat").write_bytes(new.read_bytes())
    assert read_header(tmp_path / "dir") == Header((1, 16), 15, 17)


def test_a_cut_header_is_an_error_and_a_plain_dump_says_its_versions_in_comments(tmp_path: Path) -> None:
    cut = tmp_path / "cut.dump"
    cut.write_bytes(_archive((1, 14), "15.1", "15.1")[:40])
    with pytest.raises(HeaderError, match=r"^the archive header is cut short$"):
        read_header(cut)
    plain = tmp_path / "p.sql"
    plain.write_text("--\n-- Dumped from database version 16.4\n-- Dumped by pg_dump version 17.0\n")
    assert read_header(plain) == Header(None, 16, 17)
    assert [major_of(v) for v in ("17beta2", "9.6.24", "x")] == [17, 9, None]


@pytest.mark.skipif(Path("/usr/lib/postgresql/17/bin/pg_restore").exists(), reason="this host has pg_restore 17")
def test_an_archive_of_a_newer_pg_dump_than_the_container_names_both_fixes(tmp_path: Path) -> None:
    """pg_dump 17 of a 15 server, into a 15 container: its pg_restore 15 cannot read the archive, and the host has
    no pg_restore 17 either."""
    from opsproof.drill.container import ScratchContainer
    from opsproof.drill.tools import DrillError

    scratch = ScratchContainer(tmp_path / "opsproof-drill-1-x", 15, None, tmp_path)
    with pytest.raises(DrillError, match=r"^the archive was written by pg_dump 17, newer than the scratch server's "
                                         r"PostgreSQL 15, and pg_restore of PostgreSQL 17 or newer is not installed\. "
                                         r"Fix: apt-get install -y postgresql-17 .+; or set scratch\.major: 17 to "
                                         r"restore with that container's own$"):
        scratch.tool("pg_restore", 17)
