"""A readiness policy: what a change needs, as a YAML file validated like the inventory (file:line errors).

```yaml
fail_on: high                 # a failed check of this severity or higher is a no-go
gates: {max_age: 24h}         # each area named is required; its evidence must be this recent
post_maintenance: {}
dr_drill: {max_age: 35d}      # the drill's RTO and RPO phases are checks like the others: failed = no-go
chaos: {max_age: 90d, alerts: [HighLatency, PostgresDown]}   # each alert proven by an experiment in time
load: {max_age: 7d}
```
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from opsproof.result import Severity
from opsproof.util.documents import parse_yaml, yaml_problem
from opsproof.util.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class PolicyError(ValueError):
    """A policy file that cannot be used: file, line, key and fix."""


class AreaRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_age: Duration | None = Field(None, description="a duration: 24h, 35d")


class ChaosRule(AreaRule):
    alerts: list[str] = Field(default_factory=list, description="alert names: [HighLatency, PostgresDown]")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_on: Severity = Severity.HIGH
    gates: AreaRule | None = None
    post_maintenance: AreaRule | None = None
    dr_drill: AreaRule | None = None
    chaos: ChaosRule | None = None
    load: AreaRule | None = None

    def rules(self) -> dict[str, AreaRule]:
        """The required areas (by the report's area names) and their rules."""
        named = {"gates": self.gates, "post-maintenance": self.post_maintenance, "dr-drill": self.dr_drill,
                 "chaos": self.chaos, "load": self.load}
        return {area: rule for area, rule in named.items() if rule is not None}


def default_policy(fail_on: Severity = Severity.HIGH, require: tuple[str, ...] = ("gates",)) -> Policy:
    return Policy.model_validate({"fail_on": fail_on, **{area.replace("-", "_"): {} for area in require}})


def loads_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        node, data = parse_yaml(text)
    except Exception as exc:
        raise PolicyError(yaml_problem(exc, source, "a YAML mapping of areas")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{source}:1: (top level): expected a mapping, got a {type(data).__name__}. Fix: write "
                          f"keys such as fail_on: high, gates: {{max_age: 24h}}.")
    from opsproof.inventory import _line_map

    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        lines = _line_map(node) if node is not None else {}
        problems = [_describe(dict(err), source, lines) for err in exc.errors()]
        head = f"{source}: {len(problems)} problem(s) in the policy:\n  " if len(problems) > 1 else ""
        raise PolicyError(head + "\n  ".join(problems)) from None


def load_policy(path: str | Path) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: the policy file cannot be read ({exc})") from None
    return loads_policy(text, str(path))


def _describe(err: dict[str, Any], source: str, lines: dict[Any, int]) -> str:
    loc = tuple(err["loc"])
    probe, line = loc, None
    while line is None and probe:
        line, probe = lines.get(probe), probe[:-1]
    where = ".".join(str(p) for p in loc) or "(top level)"
    kind, msg = err["type"], str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = list(Policy.model_fields) if len(loc) == 1 else list(ChaosRule.model_fields)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        msg, fix = f"unknown key {str(loc[-1])!r}", f"did you mean {guess[0]!r}" if guess else \
            f"known keys here: {', '.join(known)}"
    elif kind == "enum":
        fix = f"write one of {', '.join(s.value for s in Severity)}"
    else:
        fix = "write it like 24h or 35d" if loc[-1] == "max_age" else "correct the value"
        if "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {str(err['input'])[:60]!r})"
    return f"{source}:{line or lines.get((), 1)}: {where}: {msg}. Fix: {fix}."
