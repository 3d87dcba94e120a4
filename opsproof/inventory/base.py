"""What every part of the inventory shares: its errors, the base model, names and instants."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from opsproof.inventory.addresses import masked
from opsproof.redact import MASK
from opsproof.result import Severity
from opsproof.util.durations import parse_duration as parse_duration  # the one duration grammar

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
SECRET_VAR = re.compile(r"PASS|TOKEN|SECRET|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
SECRET_HEADER = re.compile(r"authorization|token|key|cookie|secret", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class InventoryError(ValueError):
    """A broken inventory: the message names file, line, key and fix."""


Path_ = tuple[str | int, ...]


class EntryProblem(ValueError):
    """A problem across entries, found once every entry is valid: ``loc`` is the key it is at, its message
    ends with the fix."""

    def __init__(self, loc: Path_, message: str) -> None:
        super().__init__(message)
        self.loc = loc


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """What repr() and str() show, never a secret: addresses without their password and query values, headers
        without their values. A model's repr reaches output where no redactor runs (the locals ``-l`` prints)."""
        for name, value in super().__repr_args__():
            if name == "headers" and isinstance(value, dict):
                yield name, dict.fromkeys(value, MASK)
            else:
                yield name, masked(value) if isinstance(value, str) else value


def parse_instant(text: str, now: float) -> float:
    """``-15m`` / ``-90s`` / ``-2h`` relative to now, or an ISO 8601 time (UTC when no offset is given)."""
    if text.startswith("-"):
        unit = {"s": 1, "m": 60, "h": 3600}[text[-1]]
        return now - float(text[1:-1]) * unit
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class Retry(_Model):
    """"Eventually" semantics: pass once the check passes ``consecutive`` times in a row within ``within_s``."""

    within_s: float = Field(60, gt=0, le=3600)
    consecutive: int = Field(1, ge=1, le=100)
    interval_s: float = Field(2, gt=0, le=300)


class _Entry(_Model):
    """What every inventory entry may say about how its checks are judged."""

    severity: Severity | None = None  # overrides the default severity of every check of this entry
    retry: Retry | None = None
    depends_on: list[str] = Field(default_factory=list, description="[postgres.main, redis.cache]")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def human_duration(seconds: float) -> str:
    """4h, 15m, 90s, 1.5s — the way the inventory writes durations."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.0f}s"
