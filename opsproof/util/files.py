"""Reading a file a person wrote (an inventory, a waivers file, an experiment): a regular file only, up to a size.

A device (``/dev/zero``) would be read until memory runs out, a FIFO would wait for a writer forever and a 50 MB
file takes minutes to validate: each is refused at once, with a message that says why and what to do.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024  # far above any inventory, waivers file or experiment written by hand

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size % (1024 * 1024) else f"{size // 1024 // 1024} MiB"


def read_text(path: str | Path, what: str, error: Callable[[str], Exception], limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path``; anything else raises ``error(message)`` naming the file and the fix."""
    p = Path(path)
    fix = f"Fix: name the {what} file itself."
    try:
        mode = p.stat().st_mode
        regular = stat.S_ISREG(mode)
        if regular:
            with p.open("rb") as f:  # a regular file: opening it cannot block
                raw = f.read(limit + 1)
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({e.strerror or e}). Fix: check the path.") from None
    except ValueError as e:  # a NUL byte in the path
        raise error(f"{str(p)!r}: cannot read the {what} ({e}). Fix: check the path.") from None
    if not regular:
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise error(f"{p}: cannot read the {what} ({kind}, not a regular file). {fix}")
    if len(raw) > limit:
        size = max(p.stat().st_size, len(raw))
        article = "an" if what[0] in "aeiou" else "a"
        raise error(f"{p}: {size / 1024 / 1024:.1f} MiB is more than {article} {what} may be ({_mib(limit)}). "
                    f"Fix: is this the {what}? Split a larger one into several files.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise error(f"{p}:{line}: not UTF-8 text. Fix: save the file as UTF-8.") from None
