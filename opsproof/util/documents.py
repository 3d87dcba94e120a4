"""YAML and JSON documents in which a duplicate key is an error, naming both lines.

YAML loaders and ``json.loads`` keep the last of two equal keys and drop the first without a word: a second
``http:`` in an inventory would drop every entry of the first, a ``check: '*'`` after a ``check: x`` would waive
every failure. :func:`parse_yaml` and :func:`parse_json` raise :class:`DuplicateKeyError` instead.
"""

from __future__ import annotations

import bisect
import json
import re
from typing import Any

import yaml

MAX_DEPTH = 100  # deeper keys are not looked at (a hand-written document is far shallower)
_MERGE = "tag:yaml.org,2002:merge"  # `<<: *base` followed by a key that overrides it is no duplicate


class DuplicateKeyError(ValueError):
    """The same key twice in one mapping: ``path`` is where (``http.api.url``, ``[0].check``)."""

    def __init__(self, path: tuple[Any, ...], line: int, first_line: int, language: str = "YAML") -> None:
        self.path, self.line, self.first_line, self.language = path, line, first_line, language
        super().__init__(self.message("<document>"))

    @property
    def where(self) -> str:
        return "".join(f"[{p}]" if type(p) is int else f".{p}" for p in self.path).lstrip(".")

    def message(self, source: str) -> str:
        who = "YAML keeps only the last one and drops" if self.language == "YAML" else \
            "JSON parsers keep only the last one and drop"
        return (f"{source}:{self.line}: {self.where}: duplicate key {str(self.path[-1])!r}, also at line "
                f"{self.first_line}: {who} the other without a word. Fix: merge the two into one, or remove one.")


def scalar_key(constructor: yaml.constructor.BaseConstructor, key: yaml.Node) -> Any:
    """A mapping key as the data has it (``1:`` is the int 1); a non-scalar key by its line."""
    if not isinstance(key, yaml.ScalarNode):
        return f"<line {key.start_mark.line + 1}>"
    if key.tag == "tag:yaml.org,2002:str":  # most keys: their text is their value
        return key.value
    try:
        return constructor.construct_object(key)
    except Exception:  # `!!int x:` and the like: the document's own construction reports it
        return key.value


def _duplicate_in(node: yaml.Node) -> DuplicateKeyError | None:
    """The first duplicate key (by line) of a composed document; aliased nodes are visited once."""
    constructor = yaml.SafeLoader("")
    found: DuplicateKeyError | None = None
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if id(current) in seen or len(path) > MAX_DEPTH:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key, value in current.value:
                k = scalar_key(constructor, key) if key.tag != _MERGE else object()
                line = key.start_mark.line + 1
                try:
                    if k in lines and (found is None or line < found.line):
                        found = DuplicateKeyError((*path, k), line, lines[k])
                    lines.setdefault(k, line)
                except TypeError:  # an unhashable key: the document's own construction reports it
                    pass
                stack.append((value, (*path, k)))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(current.value))
    return found


def yaml_problem(exc: Exception, source: str, expected: str) -> str:
    """The one-line finding for a document :func:`parse_yaml` refused, ``source:line: … Fix: …``; ``expected`` is
    what the file holds at the top (``a YAML mapping``)."""
    if isinstance(exc, DuplicateKeyError):
        return exc.message(source)
    problem = (exc.problem or exc.context or "invalid YAML") if isinstance(exc, yaml.MarkedYAMLError) else ""
    if isinstance(exc, RecursionError) or "nesting depth" in problem:  # Python's or libyaml's guard
        return f"{source}:1: not valid YAML: nesting too deep. Fix: flatten the file."
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return (f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {problem}. "
                "Fix: check indentation and quoting on that line.")
    # PyYAML's constructors raise more than YAMLError: `!!bool foo` (KeyError), `!!int ''` (IndexError),
    # `!!timestamp x` (AttributeError), `2001-02-30` (ValueError), a ReaderError for control characters, ...
    return f"{source}:1: not valid YAML: {type(exc).__name__}. Fix: write {expected}."


def parse_yaml(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> tuple[yaml.Node | None, Any]:
    """Parse once: the node tree (for line numbers) and the data built from it. Raises the loader's errors, and
    :class:`DuplicateKeyError`."""
    parser = loader(text)
    try:
        node = parser.get_single_node()
        if node is None:
            return None, None
        duplicate = _duplicate_in(node)
        if duplicate is not None:
            raise duplicate
        return node, parser.construct_document(node)
    finally:
        parser.dispose()


class _Duplicate(Exception):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate
        out[key] = value
    return out


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]')


def _json_duplicate(text: str) -> DuplicateKeyError:
    """Where the duplicate of a JSON text (known to have one) is: its objects' keys followed with their lines."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    # per open object or array: its keys → line (None for an array), its path, the key or index being read
    frames: list[tuple[dict[str, int] | None, tuple[Any, ...], list[Any]]] = []
    expect_key = False
    label: list[Any] = [None]
    for m in _TOKEN.finditer(text):
        token = m.group()
        keys, path, label = frames[-1] if frames else (None, (), label)
        if token in "{[":
            frames.append(({} if token == "{" else None, (*path, label[0]) if frames else (), [0]))
            expect_key = token == "{"
        elif token in "}]":
            frames.pop()
        elif token == ",":
            expect_key = keys is not None
            if keys is None:
                label[0] += 1
        elif token == ":":
            expect_key = False
        elif keys is not None and expect_key:
            key: str = json.loads(token)
            label[0], line = key, bisect.bisect_left(newlines, m.start()) + 1
            if key in keys:
                return DuplicateKeyError((*path, key), line, keys[key], "JSON")
            keys[key] = line
    raise AssertionError("no duplicate key found")  # pragma: no cover - only called when json.loads found one


def parse_json(text: str) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` for a key given twice in one object."""
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except _Duplicate:
        raise _json_duplicate(text) from None
