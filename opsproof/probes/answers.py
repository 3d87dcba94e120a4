"""An HTTP GET whose answer is read to a size cap: a verdict never needs more, and an endless body never ends.

The cap is the entry's ``max_answer_bytes``. A ``Content-Length`` above it fails before any of the body is read;
otherwise the body is read chunk by chunk (decoded, as httpx yields it) and the read stops, failing the check, as
soon as it passes the cap — so at most the cap plus one chunk is ever held.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise TooLarge(f"answer larger than {size(max_bytes)} (GET {path}: stopped after {len(body):,} bytes)",
                               {"status": response.status_code, "bytes_read": len(body), "limit": max_bytes})
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _RECODED]
        return httpx.Response(response.status_code, headers=kept, content=bytes(body), request=response.request,
                              extensions=response.extensions)
