"""What a PostgreSQL backup file says about itself, read from its own bytes (no PostgreSQL tool, no host version).

A custom-format archive (and a directory archive's ``toc.dat``) starts with pg_dump's header (``ReadHead`` in
pg_backup_archiver.c): ``PGDMP``, the archive version, integer and offset sizes, the format, the compression, the
creation time, the database name, then — since archive version 1.10 — the source server's version string and
pg_dump's. A plain dump says the same in comments (``-- Dumped from database version 15.10``). These give the
major version of the server a scratch instance must match, and of the pg_dump a pg_restore must not be older
than, whatever PostgreSQL the host has installed.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"PGDMP"
VERSION_LINE = re.compile(rb"-- Dumped from database version (\d+)")
DUMPER_LINE = re.compile(rb"-- Dumped by pg_dump version (\d+)")
TOC_OBJECT = re.compile(
    r"^\d+; \d+ \d+ (TABLE|INDEX|SEQUENCE|VIEW|MATERIALIZED VIEW) (?!DATA |OWNED BY |SET )(\S+) (\S+) ")
TOC_KINDS = {"TABLE": "table", "INDEX": "index", "SEQUENCE": "sequence", "VIEW": "view",
             "MATERIALIZED VIEW": "materialized view"}


class HeaderError(ValueError):
    """The file's header is not a pg_dump archive's, or is cut short."""


@dataclass(frozen=True)
class Header:
    """The versions a backup records: archive format (1, 14), source server major, pg_dump major (None: unsaid)."""

    archive: tuple[int, int] | None
    server_major: int | None
    dumper_major: int | None


def major_of(version: str) -> int | None:
    """15 of ``15.10 (Debian 15.10-0+deb12u1)``, 17 of ``17beta2``; None of text that is no version."""
    m = re.match(r"\s*(\d+)", version)
    return int(m.group(1)) if m else None


def read_header(path: Path) -> Header:
    """The header of a custom-format file, a directory archive (its ``toc.dat``), or a plain (optionally
    gzipped) dump."""
    if path.is_dir():
        path = path / "toc.dat"
    with path.open("rb") as f:
        start = f.read(5)
        if start == MAGIC:
            return _custom(f)
    head, _, _ = read_plain(path, whole=False)
    server, dumper = VERSION_LINE.search(head), DUMPER_LINE.search(head)
    return Header(None, int(server.group(1)) if server else None, int(dumper.group(1)) if dumper else None)


def _custom(f: BinaryIO) -> Header:
    def byte() -> int:
        b = f.read(1)
        if not b:
            raise HeaderError("the archive header is cut short")
        return b[0]

    vmaj, vmin = byte(), byte()
    if (vmaj, vmin) > (1, 0):
        byte()  # revision
    int_size = byte()
    byte()  # offset size
    byte()  # format
    if not 1 <= int_size <= 8:
        raise HeaderError(f"integer size {int_size} in the archive header is not pg_dump's")

    def integer() -> int:
        sign = byte() if (vmaj, vmin) > (1, 0) else 0
        raw = f.read(int_size)
        if len(raw) < int_size:
            raise HeaderError("the archive header is cut short")
        value = int.from_bytes(raw, "little")
        return -value if sign else value

    def string() -> str | None:
        n = integer()
        if n < 0:
            return None
        if n > 1 << 16:
            raise HeaderError(f"a {n:,}-byte string in the archive header is not pg_dump's")
        raw = f.read(n)
        if len(raw) < n:
            raise HeaderError("the archive header is cut short")
        return raw.decode(errors="replace")

    version = (vmaj, vmin)
    if version >= (1, 15):
        byte()  # compression algorithm
    elif version >= (1, 4):
        integer()  # compression level
    elif version >= (1, 2):
        byte()
    if version >= (1, 4):
        for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
            integer()
        string()  # database name
    server = dumper = None
    if version >= (1, 10):
        server, dumper = string(), string()
    return Header(version, major_of(server) if server else None, major_of(dumper) if dumper else None)


def detect(path: Path) -> str:
    """custom, directory or plain — by the file's first bytes."""
    if path.is_dir():
        return "directory"
    with path.open("rb") as f:
        magic = f.read(5)
    return "custom" if magic == MAGIC else "plain"


def gzipped(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_plain(path: Path, whole: bool = True) -> tuple[bytes, bytes, str | None]:
    """(first 8 KiB, last 8 KiB, error) of a plain dump, decompressing a gzipped one in full on the way (with
    ``whole`` False: only as far as its first 8 KiB)."""
    head = b""
    tail = b""
    if not gzipped(path):  # the two ends are enough
        with path.open("rb") as f:
            head = f.read(8192)
            f.seek(max(0, path.stat().st_size - 8192))
            return head, f.read(), None
    inflate = zlib.decompressobj(wbits=31)
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                data = inflate.decompress(chunk)
                while inflate.eof and inflate.unused_data:  # concatenated gzip members
                    rest = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    data += inflate.decompress(rest)
                if len(head) < 8192:
                    head += data[: 8192 - len(head)]
                    if not whole and len(head) >= 8192:
                        return head, b"", None
                tail = (tail + data[-8192:])[-8192:]
        if not inflate.eof:
            return head, tail, f"truncated: the gzip stream of {path.name} ends early (gzip -t would fail)"
    except zlib.error as e:
        return head, tail, f"corrupt gzip stream in {path.name} ({e})"
    return head, tail, None


def toc_objects(listing: str) -> dict[str, list[str]]:
    """The schema objects of a ``pg_restore --list``, by kind."""
    found: dict[str, set[str]] = {}
    for line in listing.splitlines():
        m = TOC_OBJECT.match(line)
        if m:
            found.setdefault(TOC_KINDS[m.group(1)], set()).add(f"{m.group(2)}.{m.group(3)}")
    return {k: sorted(v) for k, v in found.items()}
