"""Alert rules as the runbooks state them (``prometheus.<name>.alert_rules``), each its own check
(``prometheus.rule_content``): the rule is loaded *with* the expression, the threshold, the ``for:`` and the labels
the runbook gives — not only under its name (``prometheus.rules``).

A rule is found by its alert name (``alert:``, by default the item's name), or, when the runbook does not name it,
by what it watches (``watches:``: a metric name or a piece of its expression, e.g.
``http_requests_total{status=~"5.."}``). Expressions are compared with their whitespace removed, so ``>0.05`` is
found in ``… > 0.05``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from opsproof.inventory.queries import OPS, _Query
from opsproof.util.durations import parse_duration

# a comparison with a number in PromQL: `> 0.05`, `>= bool 3`, `== 0` — not a label matcher (`=~`, `!="…"`)
COMPARISON = re.compile(r"(?<![=!<>~])(==|!=|>=|<=|>|<)\s*(?:bool\s+)?"
                        r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])")


def squeeze(text: str) -> str:
    """An expression without its whitespace: how expressions and the pieces looked for in them are compared."""
    return re.sub(r"\s+", "", text)


def _threshold(v: Any) -> Any:
    """``threshold:`` — a comparison with a number, as the rule's expression writes it: ``> 0.05``."""
    if isinstance(v, str):
        m = COMPARISON.fullmatch(v.strip())
        if m:
            return v.strip()
    raise ValueError(f"{v!r} is not a comparison with a number. Fix: write it in quotes as the rule does, e.g. "
                     f"threshold: '> 0.05' (one of {', '.join(OPS)} and a number)")


Threshold = Annotated[str, BeforeValidator(_threshold)]


class AlertRule(_Query):
    """One alert rule the runbook relies on, with what it must say: found by ``alert`` (default: the item's name)
    or by ``watches``; its expression contains each of ``expr_contains`` and compares ``threshold`` (the number
    compared as a number: 0.05 is 5e-2); its ``for:`` is ``for``; its labels include ``labels``
    (``{severity: critical}``)."""

    alert: str | None = Field(None, min_length=1, description="HighErrorRate")
    watches: str | None = Field(None, min_length=1, description='http_requests_total{status=~"5.."}')
    expr_contains: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="['histogram_quantile(0.95']")
    threshold: Threshold | None = Field(None, description="'> 0.05'")
    for_: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=7 * 86400)] | None = Field(
        None, alias="for", description="5m")
    labels: dict[str, str] = Field(default_factory=dict, description="{severity: critical}")

    @field_validator("labels", mode="before")
    @classmethod
    def _text_labels(cls, v: Any) -> Any:
        return {str(k): str(val) for k, val in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _says_something(self) -> AlertRule:
        if not (self.expr_contains or self.threshold or self.for_ is not None or self.labels or self.watches
                or self.alert):
            raise ValueError("says nothing the rule must contain. Fix: add threshold: '> 0.05', for: 5m, "
                             "labels: {severity: critical} or expr_contains: [...] — or list the rule's name under "
                             "rules: if only its presence matters")
        return self

    @property
    def comparison(self) -> tuple[str, float] | None:
        """(op, number) of ``threshold``."""
        if self.threshold is None:
            return None
        m = COMPARISON.fullmatch(self.threshold.strip())
        assert m is not None  # validated
        return m.group(1), float(m.group(2))

    @property
    def timeout_s(self) -> float:
        return float(self.entry.timeout_s)


def comparisons(expr: str) -> list[tuple[str, float]]:
    """Every comparison of an expression with a number, in order: ``a / b > 0.05`` → [('>', 0.05)]."""
    return [(m.group(1), float(m.group(2))) for m in COMPARISON.finditer(expr)]
