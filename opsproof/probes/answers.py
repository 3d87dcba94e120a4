"""An HTTP GET whose answer is read to a size cap: a verdict never needs more, and an endless body never ends.

The cap is the entry's ``max_answer_bytes``. A ``Content-Length`` above it fails before any of the body is read;
otherwise the body is read chunk by chunk (decoded, as httpx yields it) and the read stops, failing the check, as
soon as it passes the cap — so at most the cap plus one chunk is ever held.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from opsproof.probes.deadline import Finding

_RECODED = ("content-encoding", "content-length")  # the body kept is decoded: its length is its own


class TooLarge(Finding):
    """The answer is larger than the entry's cap."""


def size(n: int) -> str:
    """1048576 → "1 MiB", 65536 → "64 KiB", 1000 → "1000 bytes"."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"


def get(client: httpx.Client, url: str, *, max_bytes: int, timeout: float, path: str,
        params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """GET ``url`` and read its answer to at most ``max_bytes``; :class:`TooLarge` (naming ``path``) past it. The
    answer is an ``httpx.Response`` holding the decoded body, as ``client.get`` would have returned it."""
    with client.stream("GET", url, params=params, headers=headers, timeout=timeout) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"answer larger than {size(max_bytes)} (GET {path}: Content-Length {declared})",
                           {"status": response.status_code, "content_length": int(declared), "limit": max_bytes})
        body = bytearray()
        for chunk in _decoded(response, max_bytes):
            body += chunk
            if len(body) > max_bytes:
                raise TooLarge(f"answer larger than {size(max_bytes)} (GET {path}: stopped after {len(body):,} bytes)",
                               {"status": response.status_code, "bytes_read": len(body), "limit": max_bytes,
                                "encoding": response.headers.get("content-encoding", "identity")})
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _RECODED]
        return httpx.Response(response.status_code, headers=kept, content=bytes(body), request=response.request,
                              extensions=response.extensions)


def _decoded(response: httpx.Response, max_bytes: int) -> Iterator[bytes]:
    """The body as it decodes, never more than ``max_bytes + 1`` bytes past what was yielded: a gzip bomb (a few KiB
    that decode to gigabytes) is decoded only to the cap. httpx decodes each chunk it reads whole — 64 KiB of
    gzip'd zeros is 64 MiB — so gzip and deflate are decoded here, with zlib's ``max_length``; identity is read
    raw; another coding (br, zstd: not asked for, see ``Connections.http``) is left to httpx's decoders."""
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if response.is_stream_consumed:  # its body was given whole (an injected transport's): httpx's decoding
        yield from response.iter_bytes()
        return
    if coding in ("", "identity"):
        yield from response.iter_raw()
        return
    if coding not in ("gzip", "x-gzip", "deflate"):
        yield from response.iter_bytes()
        return
    wbits = zlib.MAX_WBITS | 16 if coding != "deflate" else zlib.MAX_WBITS
    inflate = zlib.decompressobj(wbits)
    first = True
    left = max_bytes + 1  # enough to know the answer is over the cap, and no more
    try:
        for raw in response.iter_raw():
            if first and coding == "deflate" and raw:  # "deflate" is often sent raw, without its zlib header
                first = False
                try:
                    inflate.copy().decompress(raw[:64])
                except zlib.error:
                    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            data = raw
            while data and left > 0:
                out = inflate.decompress(data, left)
                left -= len(out)
                data = inflate.unconsumed_tail
                yield out
            if left <= 0:
                return
        yield inflate.flush()
    except zlib.error as e:
        raise httpx.DecodingError(f"{coding} body does not decode: {e}") from None
