"""Where output goes — one rule for every entry point (pytest, ``opsproof …``, plain ``chaos run``).

One output root: ``--out DIR`` (pytest: ``--opsproof-out DIR``), else ``$OPSPROOF_OUT``, else ``reports``. A
relative path — the root, or a file given on its own such as ``--opsproof-record`` or ``--baseline FILE`` — resolves
against the working directory the command was started in, as pytest resolves ``--junitxml``; never against the
repository or the package. Under the root::

    results.jsonl                     every check's record (pytest; --opsproof-record FILE moves only this file)
    baseline-diff-LABEL.json          the post-maintenance diff
    baselines/LABEL.json              `opsproof baseline capture --label LABEL`
    drills/ENTRY-TIME.json            each DR drill, from pytest or `opsproof drill`
    chaos/EXPERIMENT-TIME.json        each chaos run, from `opsproof chaos run`, `pytest chaos` or `chaos run`

TIME is UTC (``20261202T101500Z``); EXPERIMENT is the slug of the experiment's title, which every entry point sees.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from pathlib import Path

ENV = "OPSPROOF_OUT"
DEFAULT = "reports"


def resolve(path: str | os.PathLike[str], cwd: Path | None = None) -> Path:
    """``path`` made absolute against ``cwd`` (default: the working directory), ``~`` expanded."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (cwd or Path.cwd()) / p


def root(out: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """The output root: ``out``, else ``$OPSPROOF_OUT``, else ``reports`` — resolved against ``cwd``."""
    return resolve(out or os.environ.get(ENV) or DEFAULT, cwd)


def results(out: Path) -> Path:
    return out / "results.jsonl"


def baseline(out: Path, label: str) -> Path:
    return out / "baselines" / f"{label}.json"


def baseline_diff(out: Path, label: str) -> Path:
    return out / f"baseline-diff-{label}.json"


def drills(out: Path) -> Path:
    return out / "drills"


def chaos(out: Path) -> Path:
    return out / "chaos"


def load(out: Path) -> Path:
    return out / "load"


def slug(text: str, limit: int = 60) -> str:
    """``"Redis down: the cache fails open"`` → ``redis-down-the-cache-fails-open`` (cut at a word, ≤ limit)."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(words) > limit:
        words = words[:limit + 1].rsplit("-", 1)[0] if "-" in words[:limit + 1] else words[:limit]
    return words or "experiment"


def stamp(moment: float | None = None) -> str:
    """A UTC time for a file name: ``20261202T101500Z``."""
    when = dt.datetime.now(dt.UTC) if moment is None else dt.datetime.fromtimestamp(moment, dt.UTC)
    return when.strftime("%Y%m%dT%H%M%SZ")


def stamped(directory: Path, name: str, moment: float | None = None) -> Path:
    """A new file ``directory/NAME-TIME.json`` (``NAME-TIME-2.json`` … if one run already took that second),
    created empty so that no other run takes it."""
    directory.mkdir(parents=True, exist_ok=True)
    base, n = f"{name}-{stamp(moment)}", 1
    while True:
        path = directory / (f"{base}.json" if n == 1 else f"{base}-{n}.json")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            n += 1


def add_option(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` on an ``opsproof`` subcommand."""
    parser.add_argument("--out", metavar="DIR", default=None,
                        help=f"output root (default ${ENV} or {DEFAULT}; relative to the working directory)")
