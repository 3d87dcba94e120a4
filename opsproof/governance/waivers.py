"""Waivers: a known finding, with an owner, a ticket and an expiry date, does not fail the run; once expired,
it does again, loudly. The waivers file is YAML; a broken one is reported with its file, line, key and fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsproof.inventory import Path_, _line_map, _shown
from opsproof.util.documents import parse_yaml, yaml_problem
from opsproof.util.files import read_text


class WaiverError(ValueError):
    """A broken waivers file: the message names file, line, key and fix."""


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` is any text and ``?`` one character; everything else is literal — ``[`` too, since target ids
    (``redis[cache]``) contain brackets that fnmatch would read as a character class."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


class Waiver(BaseModel):
    """A known finding accepted until a date: it does not fail the run while it lasts."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    check: str = Field(min_length=1, description="redis.hit_rate@redis[cache] (or postgres.*@postgres[main])")
    reason: str = Field(min_length=1, description="'cache warming after the migration'")
    owner: str = Field(min_length=1, description="alice@example.com")
    ticket: str = Field(min_length=1, description="OPS-123")
    expires: date = Field(description="2025-06-30 (YYYY-MM-DD)")

    @field_validator("expires", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        text = value.strip() if isinstance(value, str) else None
        if text is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"{_shown(value)!r} is not a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text} is not a calendar date") from None

    def matches(self, key: str, nodeid: str) -> bool:
        """``key`` is ``check@target`` (``redis.hit_rate@redis[cache]``); ``nodeid`` is pytest's test id."""
        pattern = _glob(self.check)
        return bool(pattern.fullmatch(key) or pattern.fullmatch(nodeid))

    def to_record(self) -> dict[str, str]:
        return {"check": self.check, "reason": self.reason, "owner": self.owner, "ticket": self.ticket,
                "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class WaiverDecision:
    """The waiver that matched a failed check, and whether it still holds."""

    waiver: Waiver
    expired: bool

    @property
    def expired_message(self) -> str:
        w = self.waiver
        return f"waiver for {w.check} ({w.owner}, {w.ticket}) expired on {w.expires.isoformat()}"


@dataclass(frozen=True)
class Waivers:
    items: Sequence[Waiver] = ()
    today: date = field(default_factory=date.today)

    def decide(self, key: str, nodeid: str) -> WaiverDecision | None:
        """The first unexpired waiver matching a failed check; else the first expired one; else None."""
        matching = [w for w in self.items if w.matches(key, nodeid)]
        for waiver in matching:
            if waiver.expires >= self.today:  # valid through its expiry date
                return WaiverDecision(waiver, expired=False)
        return WaiverDecision(matching[0], expired=True) if matching else None


class _WaiverLoader(yaml.SafeLoader):
    """Dates stay text, so that a wrong one (``2025-02-30``) is reported at its line, not as broken YAML."""


def _date_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


_WaiverLoader.add_constructor("tag:yaml.org,2002:timestamp", _date_as_text)

def _describe_waiver_error(err: Mapping[str, Any], source: str, lines: Mapping[Path_, int]) -> str:
    loc: Path_ = tuple(err["loc"])
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), lines.get((), 1))
    where = f"[{loc[0]}]" + "".join(f".{p}" for p in loc[1:])
    key = str(loc[-1]) if len(loc) > 1 else ""
    field_info = Waiver.model_fields.get(key)
    example = field_info.description if field_info else ""
    kind, msg = err["type"], str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        guess = difflib.get_close_matches(key, list(Waiver.model_fields), n=1)
        msg = f"unknown key {key!r}"
        fix = f"did you mean {guess[0]!r}" if guess else f"known keys: {', '.join(Waiver.model_fields)}"
    elif kind == "missing":
        msg = "required key is missing"
        fix = f"add '{key}:' (e.g. {example})"
    elif kind == "string_too_short":
        msg = "must not be empty"
        fix = f"write it like {example}"
    elif kind == "model_type":
        msg = f"expected a mapping, got {_shown(err.get('input'))!r}"
        fix = "write each waiver as a mapping with check, reason, owner, ticket and expires"
    else:
        if kind != "value_error" and "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {_shown(err['input'])!r})"
        fix = f"write it like {example}" if example else "correct the value"
    return f"{source}:{line}: {where}: {msg}. Fix: {fix}."


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    return parse_yaml(text, _WaiverLoader)  # a duplicate key is an error (`check: '*'` after `check: x`)


def loads_waivers(text: str, source: str = "<waivers>") -> list[Waiver]:
    """Parse and validate a waivers file (a YAML list); raise :class:`WaiverError` naming file, line and fix."""
    try:
        node, data = _parse(text)
    except Exception as e:
        raise WaiverError(yaml_problem(e, source, "a YAML list")) from None
        raise WaiverError(f"{source}:1: not valid YAML ({type(e).__name__}). Fix: write a YAML list.") from None
    if data is None:
        return []  # an empty file: no waivers
    if not isinstance(data, list):
        raise WaiverError(f"{source}:1: (top level): expected a list of waivers, got a {type(data).__name__}. "
                          "Fix: start each waiver with '- check: …' (keys check, reason, owner, ticket, expires).")
    lines = _line_map(node) if node is not None else {}
    waivers: list[Waiver] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        try:
            waivers.append(Waiver.model_validate(item))
        except ValidationError as e:
            problems += [_describe_waiver_error({**err, "loc": (i, *err["loc"])}, source, lines) for err in e.errors()]
    if problems:
        head = f"{source}: {len(problems)} problem(s) in the waivers:\n  " if len(problems) > 1 else ""
        raise WaiverError(head + "\n  ".join(problems))
    return waivers


def load_waivers(path: str | Path) -> list[Waiver]:
    return loads_waivers(read_text(path, "waivers file", WaiverError), str(Path(path)))
