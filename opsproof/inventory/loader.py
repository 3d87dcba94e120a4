"""Loading an inventory: YAML with line numbers, ``${VAR}`` interpolation, secrets, and errors that name file,
line, key and fix."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from opsproof.inventory.addresses import url_secrets
from opsproof.inventory.base import INTERPOLATION, SECRET_HEADER, SECRET_VAR, EntryProblem, InventoryError, Path_
from opsproof.inventory.entries import KINDS
from opsproof.inventory.model import Inventory
from opsproof.redact import MASK, Redactor
from opsproof.util.documents import parse_yaml, yaml_problem
from opsproof.util.documents import scalar_key as _scalar_key
from opsproof.util.durations import parse_duration as parse_duration  # the one duration grammar
from opsproof.util.files import read_text


def _line_map(node: yaml.Node) -> dict[Path_, int]:
    """Map every key path of a composed YAML document to its 1-based line (aliases visited once)."""
    out: dict[Path_, int] = {(): node.start_mark.line + 1}
    constructor = yaml.SafeLoader("")  # keys as the data has them: `1:` is the int 1, like in pydantic's loc
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, Path_]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if id(current) in seen or len(path) > 12:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                k = _scalar_key(constructor, key)
                out.setdefault((*path, k), key.start_mark.line + 1)
                stack.append((value, (*path, k)))
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                out.setdefault((*path, i), item.start_mark.line + 1)
                stack.append((item, (*path, i)))
    return out


class _Lines(Mapping[Path_, int]):
    """The line of every key path, mapped only when a problem is reported: a valid file never needs it."""

    def __init__(self, node: yaml.Node | None) -> None:
        self._node = node
        self._map: dict[Path_, int] | None = None

    def _lines(self) -> dict[Path_, int]:
        if self._map is None:
            try:
                self._map = _line_map(self._node) if self._node is not None else {}
            except RecursionError:
                self._map = {}
        return self._map

    def __getitem__(self, key: Path_) -> int:
        return self._lines()[key]

    def __iter__(self) -> Iterator[Path_]:
        return iter(self._lines())

    def __len__(self) -> int:
        return len(self._lines())


MAX_DEPTH = 100  # far deeper than any inventory; also stops self-referencing aliases (`a: &x [*x]`)


def _interpolate(
    value: Any, env: Mapping[str, str], path: Path_, secrets: set[str], missing: list[Path_], memo: dict[int, Any]
) -> Any:
    """Replace ``${VAR}`` in every string. A node shared through YAML aliases is visited once (``memo``),
    so a "billion laughs" document costs its size, not its expansion."""
    if id(value) in memo:
        return memo[id(value)]
    if len(path) > MAX_DEPTH:
        raise RecursionError
    if isinstance(value, dict):
        out: Any = {k: _interpolate(v, env, (*path, k), secrets, missing, memo) for k, v in value.items()}
    elif isinstance(value, list):
        out = [_interpolate(v, env, (*path, i), secrets, missing, memo) for i, v in enumerate(value)]
    else:
        return _substitute(value, env, path, secrets, missing)
    memo[id(value)] = out
    return out


class InterpolationCycle(Exception):
    """Environment variables whose values refer to each other: ``chain`` is the round, ``path`` the key."""

    def __init__(self, path: Path_, chain: tuple[str, ...]) -> None:
        super().__init__(" → ".join(f"${{{name}}}" for name in chain))
        self.path = path


def _substitute(value: Any, env: Mapping[str, str], path: Path_, secrets: set[str], missing: list[Path_],
                chain: tuple[str, ...] = ()) -> Any:
    """``${VAR}`` replaced; a variable's value is interpolated in turn (DB_URL=postgresql://app:${PGPASSWORD}@…),
    and variables that refer to each other are an error."""
    if not isinstance(value, str) or "${" not in value:
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in chain:
            raise InterpolationCycle(path, (*chain[chain.index(name):], name))
        if name in env:
            resolved = str(_substitute(env[name], env, path, secrets, missing, (*chain, name)))
        elif default is not None:
            resolved = default
        else:
            missing.append((*path, name))
            return ""
        if SECRET_VAR.search(name) and resolved:
            secrets.add(resolved)
        return resolved

    return INTERPOLATION.sub(sub, value)


def _collect_secrets(inv: Inventory) -> set[str]:
    found: set[str] = set()
    for kind in KINDS:
        for entry in inv.targets(kind).values():
            for attr in ("url", "dsn"):
                if isinstance(getattr(entry, attr, None), str):
                    found |= url_secrets(getattr(entry, attr))
            for header, value in getattr(entry, "headers", {}).items():
                if SECRET_HEADER.search(header):
                    found.add(value)
                    found.update(value.split()[1:])  # "Bearer <token>"
            scratch = getattr(entry, "scratch", None)
            if scratch is not None and scratch.dsn:
                found |= url_secrets(scratch.dsn)
            for replica in getattr(entry, "replicas", {}).values():
                found |= url_secrets(replica.dsn)
            sentinel = getattr(entry, "sentinel", None)  # a Redis entry's sentinels' own password, even written out
            if sentinel is not None and sentinel.password:
                found.add(sentinel.password)
    for scenario in inv.load.values():
        for headers in (scenario.headers, *(r.headers for r in scenario.requests)):
            for header, value in headers.items():
                if SECRET_HEADER.search(header):
                    found.add(value)
                    found.update(value.split()[1:])
    return {s for s in found if s}


RENAMED = {"max_age_h": "it is now 'rpo:', a duration — write max_age_h: 24 as rpo: 24h"}
FIXES: dict[str, str] = {
    "missing": "add the key",
    "extra_forbidden": "remove it or correct its spelling",
    "string_pattern_mismatch": "use the form shown in the README's inventory reference",
    "greater_than": "use a larger number",
    "greater_than_equal": "use a larger number",
    "less_than": "use a smaller number",
    "less_than_equal": "use a smaller number",
    "dict_type": "write a mapping of name: settings",
    "model_type": "write a mapping of settings",
    "list_type": "write a list, e.g. [a, b]",
    "enum": "use one of the listed values",
}


def _format_loc(loc: Iterable[Any]) -> str:
    # a key such as "a\nb" is quoted so that every problem stays on its own line, and a blank or space-padded
    # one (" ") so that the path stays readable
    parts = (p if isinstance(p, str) else _shown(p) for p in loc)
    return ".".join(p if p.isprintable() and p and p == p.strip() else repr(p) for p in parts) or "(top level)"


def _shown(value: Any) -> str:
    """A short text for an offending input; never expands aliased structures or huge integers."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, str | bytes | int | float | date | None):
        return str(value)[:60]
    return f"a {type(value).__name__}"


def _describe(err: Mapping[str, Any], source: str, lines: Mapping[Path_, int]) -> str:
    loc: Path_ = tuple(err["loc"])
    msg = err["msg"]
    problem = err.get("ctx", {}).get("error")
    if isinstance(problem, EntryProblem):
        return f"{source}:{_line(problem.loc, lines)}: {_format_loc(problem.loc)}: {problem}."
    cross = re.match(r"Value error, ([\w.-]+): (.*)$", msg) if not loc else None
    if cross:  # a check across entries (model validator): its message names the key
        loc = tuple(cross.group(1).split("."))
        err = {**err, "msg": cross.group(2)}
    line = _line(loc, lines)
    kind = err["type"]
    msg = err["msg"]
    fix = FIXES.get(kind, "correct the value")
    if cross:
        return f"{source}:{line}: {_format_loc(loc)}: {msg}. Fix: name an existing entry."
    example = _field_description(loc)
    if example and kind in {"string_pattern_mismatch", "string_too_short", "value_error", "string_type",
                                "date_from_datetime_parsing", "date_parsing", "date_type"}:
        fix = f"write it like {example}"
    if kind == "extra_forbidden":
        parent = loc[:-1]
        siblings = _known_keys(parent)
        guess = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
        msg = f"unknown key {str(loc[-1])!r}"
        fix = f"did you mean {guess[0]!r}" if guess else f"known keys here: {', '.join(siblings) or 'none'}"
        fix = RENAMED.get(str(loc[-1]), fix)
    elif kind == "missing":
        msg = "required key is missing"
        fix = f"add '{loc[-1]}:'"
    elif "input" in err and not isinstance(err["input"], dict | list) and " Fix: " not in msg:
        value = Redactor()(err["input"]) if isinstance(err["input"], str) else err["input"]  # no URL password
        msg = f"{msg} (got {_shown(value)!r})"
    msg = msg.removeprefix("Value error, ")
    if " Fix: " in msg:  # the validator wrote its own fix
        return f"{source}:{line}: {_format_loc(loc)}: {msg}."
    return f"{source}:{line}: {_format_loc(loc)}: {msg}. Fix: {fix}."


def _masked(problem: str, secrets: set[str]) -> str:
    """A problem without the interpolated secrets it may quote (its fix's ``${PGPASSWORD}`` examples are kept)."""
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        problem = problem.replace(secret, MASK)
    return problem


def _line(loc: Path_, lines: Mapping[Path_, int]) -> int:
    """The line of ``loc``, or of the nearest key above it that has one."""
    line = None
    probe = loc
    while line is None and probe:
        line = lines.get(probe)
        probe = probe[:-1]
    return line or lines.get((), 1)


def _model_at(parent: Path_) -> type[BaseModel] | None:
    """The model whose fields sit under ``parent`` (field names alternate with entry names)."""
    model: type[BaseModel] = Inventory
    for field_name in parent[0::2]:
        field = model.model_fields.get(str(field_name))
        args = getattr(field.annotation, "__args__", ()) if field else ()
        inner = args[-1] if args else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    return None if len(parent) % 2 else model


def _field_description(loc: Path_) -> str | None:
    model = _model_at(loc[:-1]) if loc else None
    field = model.model_fields.get(str(loc[-1])) if model else None
    return field.description if field else None


def _known_keys(parent: Path_) -> list[str]:
    model = _model_at(parent)
    return sorted(f.alias or name for name, f in model.model_fields.items()) if model else []  # for_: for


# libyaml when PyYAML was built with it (the wheels are): parsing 1,000 entries takes 0.1 s instead of 1 s
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """Parse once: the node tree (for line numbers) and the data built from it; a duplicate key is an error."""
    return parse_yaml(text, _LOADER)


def loads(text: str, source: str = "<inventory>", env: Mapping[str, str] | None = None) -> Inventory:
    """Parse and validate an inventory from text; raise :class:`InventoryError` on any problem."""
    env = os.environ if env is None else env
    try:
        node, data = _parse(text)
    except Exception as e:
        raise InventoryError(yaml_problem(e, source, "a YAML mapping")) from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise InventoryError(
            f"{source}:1: (top level): expected a mapping with 'environment:' and target sections, got {got}. "
            "Fix: start from examples/sandbox.yaml."
        )
    lines = _Lines(node)
    secrets: set[str] = set()
    missing: list[Path_] = []
    try:
        data = _interpolate(data, env, (), secrets, missing, {})
    except RecursionError:
        raise InventoryError(f"{source}:1: (top level): nesting too deep. Fix: flatten the file.") from None
    except InterpolationCycle as e:
        raise InventoryError(f"{source}:{_line(e.path, lines)}: {_format_loc(e.path)}: environment variables refer "
                             f"to each other in a cycle: {e}. Fix: give one of them a plain value.") from None
    if missing:
        path = missing[0][:-1]
        var = missing[0][-1]
        line = lines.get(path, 1)
        raise InventoryError(
            f"{source}:{line}: {_format_loc(path)}: environment variable ${{{var}}} is not set. "
            f"Fix: export {var}=… before running, or write ${{{var}:-default}}."
        )
    try:
        inv = Inventory.model_validate(data)
    except ValidationError as e:
        problems = [_masked(_describe(err, source, lines), secrets) for err in e.errors()]
        head = f"{source}: {len(problems)} problem(s) in the inventory:\n  " if len(problems) > 1 else ""
        raise InventoryError(head + "\n  ".join(problems)) from None
    except RecursionError:
        raise InventoryError(f"{source}:1: (top level): nesting too deep. Fix: flatten the file.") from None
    inv._source = source
    inv._secrets = frozenset(secrets | _collect_secrets(inv))
    return inv


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Inventory:
    return loads(read_text(path, "inventory", InventoryError), str(Path(path)), env)
