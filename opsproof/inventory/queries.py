"""Named queries of an entry, each its own check: PromQL thresholds (``prometheus.<name>.queries``) and read-only
SQL assertions (``postgres.<name>.queries``).

A query belongs to the entry it is written under (bound when that entry is validated): it is reached, timed,
retried and blocked as that entry is, and its check's severity is its own ``severity:``, else the entry's.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from opsproof.inventory.base import NAME, _Model
from opsproof.result import Severity
from opsproof.util.durations import parse_duration, seconds

Op = Literal["<", "<=", ">", ">=", "==", "!="]
OPS: tuple[str, ...] = ("<", "<=", ">", ">=", "==", "!=")
Unit = Literal["seconds", "milliseconds"]
SECONDS_PER: dict[str, float] = {"seconds": 1.0, "milliseconds": 0.001}
SYMBOL: dict[str, str] = {"seconds": "s", "milliseconds": "ms"}
MAX_ROWS = 10_000  # a `rows:` bound above this cannot be judged from the rows fetched (MAX_ROWS + 1 at most)
MAX_POINTS = 11_000  # Prometheus refuses a range query of more points per series


def _op(v: Any) -> Any:
    if v in OPS:
        return v
    got = "an empty value" if v in ("", None) else repr(v)
    raise ValueError(f"{got} is not a comparison. Fix: write one of <, <=, >, >=, ==, != in quotes, e.g. op: '>=' "
                     "(unquoted, YAML reads > as the start of a folded text and < may not start a value)")


Comparison = Annotated[Op, BeforeValidator(_op)]


def _name(v: str) -> str:
    if not re.match(NAME, v):
        raise ValueError(f"query name {v!r} must be letters, digits, '_', '.', '-' (≤ 63). Fix: rename it, e.g. "
                         "pool_usage")
    return v


QueryName = Annotated[str, AfterValidator(_name)]
Window = Annotated[float, BeforeValidator(parse_duration), Field(gt=0, le=7 * 86400)]
MAX_WINDOW = 7 * 86400


def _since(v: Any) -> Any:
    """``for:`` — a duration, or ``deploy``: from the entry's deploy time to now."""
    if v == "deploy":
        return v
    try:
        window = parse_duration(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a duration. Fix: write it like 5m or 1h, or deploy (since the "
                         "deploy)") from None
    if isinstance(window, int | float) and not 0 < window <= MAX_WINDOW:
        raise ValueError(f"{v!r} is not a window of up to 7 days. Fix: write a duration such as 5m, or deploy")
    return window


Since = Annotated[float | Literal["deploy"], BeforeValidator(_since)]


def compare(observed: float | str, op: str, expected: float | str) -> bool:
    """``observed op expected``; numbers as numbers, text (``==``/``!=`` only) as text. NaN never holds."""
    if isinstance(observed, float) and math.isnan(observed):
        return False
    ops = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
    return bool(ops[op](observed, expected))


def fmt(value: float | str, unit: str | None = None) -> str:
    """A value as messages show it: 0.93, 1500, 312.5 ms, 'abc123'."""
    if isinstance(value, str):
        return repr(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"  # 1500, 12346 — never 1.235e+04
    return f"{text} {SYMBOL[unit]}" if unit else text


class _Query(_Model):
    """What every named query shares: its severity, and the entry it is written under."""

    severity: Severity | None = None  # default: the entry's severity, else the check's

    _entry: Any = PrivateAttr(default=None)

    @property
    def entry(self) -> Any:
        if self._entry is None:
            raise ValueError("query not bound to its entry")
        return self._entry

    @property
    def retry(self) -> Any:
        return self.entry.retry

    @property
    def depends_on(self) -> list[str]:
        return list(self.entry.depends_on)


def bind(entry: Any, queries: dict[str, _Query]) -> None:
    """Each query of ``entry`` knows its entry, and inherits its severity when it states none."""
    for query in queries.values():
        query._entry = entry
        if query.severity is None and entry.severity is not None:
            object.__setattr__(query, "severity", entry.severity)  # frozen: set once, while validating


class PromQuery(_Query):
    """A PromQL threshold: every series the expression returns satisfies ``op value`` — at every evaluation over
    ``for`` (a range query at ``step``, default the server's scrape interval; ``for: deploy``: since the entry's
    deploy time, as ``prometheus.new_alerts`` takes it), or now. No series is "no data", a failure, unless
    ``absent_ok: true``."""

    expr: str = Field(min_length=1, description="max by (instance) (db_pool_in_use / db_pool_size)")
    op: Comparison
    value: float | str = Field(description="0.8, or with unit: a duration such as 300ms")
    for_: Since | None = Field(None, alias="for", description="5m, or deploy")
    step: Window | None = Field(None, description="15s (default: the server's global scrape_interval)")
    unit: Unit | None = None  # what the expression's values are in, for a latency: seconds or milliseconds
    absent_ok: bool = False

    _threshold: float = PrivateAttr(default=math.nan)

    @model_validator(mode="after")
    def _value(self) -> PromQuery:
        if isinstance(self.value, str) and self.unit is None:
            raise ValueError(f"value {self.value!r} is not a number. Fix: write a number (0.8), or state unit: "
                             "seconds|milliseconds to write a duration (300ms)")
        self._threshold = _in_unit(self.value, self.unit)
        if isinstance(self.for_, float) and self.step and self.for_ / self.step > MAX_POINTS:
            raise ValueError(f"for / step is {self.for_ / self.step:.0f} evaluations, above Prometheus' "
                             f"{MAX_POINTS} per series. Fix: a larger step, or a shorter for")
        return self

    @property
    def threshold(self) -> float:
        """``value`` in the expression's unit."""
        return self._threshold

    @property
    def timeout_s(self) -> float:
        return float(self.entry.timeout_s)


def _in_unit(value: float | str, unit: str | None) -> float:
    if not isinstance(value, str):
        return float(value)
    try:
        return seconds(value) / SECONDS_PER[unit] if unit else float(value)
    except ValueError:
        raise ValueError(f"value {value!r} is not a duration. Fix: write it like 300ms or 1.5s, or a number of "
                         f"{unit}") from None


class PgQuery(_Query):
    """A read-only SQL assertion: the query's one value satisfies ``op value`` (``value`` alone: equal to it), or
    its number of rows satisfies ``rows`` (``0``, ``">= 1"``). It runs alone in a READ ONLY transaction with a
    statement timeout, which is then rolled back."""

    sql: str = Field(min_length=1, description="SELECT max(age(datfrozenxid)) FROM pg_database")
    op: Comparison | None = None
    value: float | str | None = Field(None, description="1500000000, or a text: 20261201_add_index")
    rows: int | str | None = Field(None, description="0, or '>= 1'")
    timeout: Annotated[float, BeforeValidator(parse_duration), Field(gt=0, le=300)] = Field(
        5.0, description="5s (the statement timeout)")

    _rows: tuple[str, int] | None = PrivateAttr(default=None)

    @field_validator("sql")
    @classmethod
    def _one_statement(cls, v: str) -> str:
        return v.strip().rstrip(";").strip()

    @model_validator(mode="after")
    def _judged(self) -> PgQuery:
        if self.rows is not None and (self.op is not None or self.value is not None):
            raise ValueError("gives both rows: and op:/value:. Fix: judge the number of rows or the value, not both "
                             "(split it into two queries)")
        if self.rows is None and self.value is None:
            raise ValueError("says nothing about the result. Fix: add value: (with op:, e.g. op: '<'), or rows: "
                             "(e.g. rows: 0, rows: '>= 1')")
        if self.rows is not None:
            self._rows = _rows(self.rows)
        elif self.op is None:
            object.__setattr__(self, "op", "==")
        elif self.op not in ("==", "!=") and isinstance(self.value, str):
            try:
                float(self.value)
            except ValueError:
                try:
                    object.__setattr__(self, "value", seconds(self.value))  # compared with an interval, in seconds
                except ValueError:
                    raise ValueError(f"op {self.op!r} needs a number or a duration, got value {self.value!r}. Fix: "
                                     "write a number, or use op: '==' to compare text") from None
        return self

    @property
    def row_bound(self) -> tuple[str, int] | None:
        """(op, n) of ``rows``, or None when the value is judged."""
        return self._rows

    @property
    def timeout_s(self) -> float:
        """The check's deadline: the entry's (connection and setup) plus the statement timeout."""
        return float(self.entry.timeout_s) + self.timeout


def _rows(rows: int | str) -> tuple[str, int]:
    text = str(rows).strip()
    op = next((o for o in ("<=", ">=", "==", "!=", "<", ">") if text.startswith(o)), "==")
    number = text[len(op):].strip() if text.startswith(op) else text
    if not number.isdigit():
        raise ValueError(f"rows: {rows!r} is not a number of rows. Fix: write rows: 0, or a comparison in quotes "
                         "such as rows: '>= 1'")
    if int(number) > MAX_ROWS:
        raise ValueError(f"rows: {int(number)} is above the {MAX_ROWS} rows a query may return here. Fix: count "
                         "them in SQL (SELECT count(*) …) and compare the value")
    return op, int(number)


def duration_unit(metric: str, given: str | None) -> str:
    """The unit of a latency histogram: as given, else from its name (``…_ms``, ``…_milliseconds``: milliseconds;
    otherwise Prometheus' base unit, seconds)."""
    if given:
        return given
    return "milliseconds" if metric.endswith(("_ms", "_milliseconds")) else "seconds"
