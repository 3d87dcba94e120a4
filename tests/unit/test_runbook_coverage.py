"""The runbook coverage maps (``docs/runbooks/*.md``) stay true, and the README's table is computed from them.

Each map lists every verifiable step of one founding runbook as a table row — ``| lines | step | verdict |`` —
whose verdict is one of:

- covered: one or more `` `check.id` / `example.key` `` pairs: the check exists (the probe registry, or a DR
  drill phase), the key exists in the example, and the example configures that check there (the probe
  ``applies`` to the entry, the named query/rule/Celery app is one of its items, the backups entry is drillable);
- ``planned (hNN): <capability>`` — opsproof lacks it, another change is building it;
- ``missing: <capability>`` — a machine could verify it, opsproof has no such check and none is planned;
- ``not verifiable by a machine: <why>`` — an action, a human decision.

Covered share = covered / (covered + planned + missing). Run this file (``python
tests/unit/test_runbook_coverage.py``) to print the README table. No service is contacted.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt

from opsproof.drill import drillable
from opsproof.drill.phases import PHASES
from opsproof.inventory import Inventory, load
from opsproof.probes import ALL, ProbeSpec
from tests.unit.test_examples import dummy_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "runbooks"
README = ROOT / "README.md"
# system (doc name) → (runbook file, example)
RUNBOOKS = {
    "magicsaas": ("000_39e3d7eb3b8aece9.txt", "examples/magicsaas-production.yaml"),
    "sophia-ai": ("001_56ffa78bc8d2b136.txt", "examples/sophia-ai-production.yaml"),
    "smartcloudops": ("002_0b7da04a00b34e0c.txt", "examples/smartcloudops-staging.yaml"),
    "vibethink": ("003_c100c275d5d3553b.txt", "examples/vibethink-production.yaml"),
    "signx-apex": ("004_c5697c093fa1bf1e.txt", "examples/signx-apex-production.yaml"),
}
# where the runbooks themselves are (not part of the repository): next to the checkout, or next to its worktree
SEEDS = next((p for p in (ROOT.parent / "shared" / "seeds", ROOT.parent.parent / "shared" / "seeds")
              if p.is_dir()), None)
HEADER = ["lines", "step", "verdict"]
LINES = re.compile(r"^\d+(-\d+)?(, \d+(-\d+)?)*$")
REF = re.compile(r"`([a-z_]+\.[a-z0-9_]+)` / `([^`]+)`")
PLANNED = re.compile(r"^planned( \(h\d+\))?: \S")
MANUAL = "not verifiable by a machine: "
MISSING = "missing: "
START, END = "<!-- runbook-coverage -->", "<!-- /runbook-coverage -->"


@dataclass(frozen=True)
class Row:
    doc: str
    section: str
    lines: str
    step: str
    verdict: str

    @property
    def where(self) -> str:
        return f"docs/runbooks/{self.doc}.md [{self.section}] l. {self.lines} ({self.step[:40]})"

    @property
    def refs(self) -> list[tuple[str, str]]:
        return REF.findall(self.verdict)

    @property
    def kind(self) -> str:
        """covered | planned | missing | manual | '' (no verdict)."""
        if PLANNED.match(self.verdict):
            return "planned"
        if self.verdict.startswith(MISSING) and len(self.verdict) > len(MISSING):
            return "missing"
        if self.verdict.startswith(MANUAL) and len(self.verdict) > len(MANUAL):
            return "manual"
        return "covered" if self.refs else ""


@dataclass
class Map:
    doc: str
    runbook: str
    example: str
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.rows if r.kind == kind)

    @property
    def verifiable(self) -> int:
        return self.count("covered") + self.count("planned") + self.count("missing")


MARKDOWN = MarkdownIt("commonmark").enable("table")


def parse(path: Path) -> Map:
    """A coverage map: its header lines (``- runbook: `…` ``, ``- example: `…` ``) and every row of its tables,
    each with the ``##``/``###`` heading it is under — read by markdown-it-py (CommonMark + GFM tables). A table
    whose header is not ``lines | step | verdict`` is a problem (so that no step hides in a table the count skips)."""
    source = path.read_text(encoding="utf-8")
    found = {k: re.search(rf"^- {k}: `([^`]+)`", source, re.M) for k in ("runbook", "example")}
    runbook, example_path = (f.group(1) if f else "" for f in found.values())
    m = Map(path.stem, runbook, example_path)
    m.problems += [f"{path.name}: no '- {k}: `…`' line" for k, f in found.items() if f is None]
    section, in_heading, line = "", False, 0
    header: list[str] | None = None
    row: list[str] | None = None
    for tok in MARKDOWN.parse(source):
        if tok.type in ("heading_open", "heading_close"):
            in_heading = tok.type == "heading_open"
        elif tok.type == "inline" and in_heading:
            section = tok.content
        elif tok.type == "tr_open":
            row, line = [], (tok.map[0] + 1 if tok.map else 0)
        elif tok.type == "inline" and row is not None:
            row.append(tok.content.strip().replace("\\|", "|"))  # a code span's literal pipe is written \|
        elif tok.type == "tr_close" and row is not None:
            if header is None:
                header = [c.lower() for c in row]
                if header != HEADER:
                    m.problems.append(f"{path.name}:{line}: table header {header}, expected {HEADER}")
            elif len(row) != 3:
                m.problems.append(f"{path.name}:{line}: {len(row)} cells, expected 3 (lines | step | verdict)")
            else:
                m.rows.append(Row(path.stem, section, *row))
            row = None
        elif tok.type == "table_close":
            header = None
    return m


@cache
def maps() -> dict[str, Map]:
    return {p.stem: parse(p) for p in sorted(DOCS.glob("*.md")) if p.name != "README.md"}


@cache
def example(name: str) -> tuple[Inventory, dict[str, Any]]:
    path = ROOT / name
    return load(path, env=dummy_env(path)), yaml.safe_load(path.read_text(encoding="utf-8"))


def resolve(raw: dict[str, Any], key: str) -> list[str] | None:
    """The key's segments as the YAML has them (a segment may hold dots: the longest existing one wins)."""
    parts, node, out = key.split("."), raw, []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            seg = ".".join(parts[i:j])
            if isinstance(node, dict) and seg in node:
                node, i = node[seg], j
                out.append(seg)
                break
        else:
            return None
    return out


REGISTRY: dict[str, ProbeSpec] = {p.check: p for p in ALL}
DRILL = {f"drill.{p}" for p in PHASES}


def problem(check: str, key: str, example_name: str) -> str | None:
    """Why ``key`` of the example does not configure ``check`` (None: it does)."""
    if check not in REGISTRY and check not in DRILL:
        return f"{check} is not a check opsproof has (probe registry or drill phase)"
    inv, raw = example(example_name)
    path = resolve(raw, key)
    if path is None:
        return f"{key} is not a key of {example_name}"
    kind = "backups" if check in DRILL else REGISTRY[check].kind
    if path[0] != kind or len(path) < 2:
        return f"{check} is a check of {kind} entries: {key} does not name one"
    entry = inv.targets(kind).get(path[1])
    if entry is None:
        return f"{kind}.{path[1]} is not an entry of {example_name}"
    if check in DRILL:
        return None if path[1] in drillable(inv) else f"backups.{path[1]} names no datastore: no drill runs"
    spec = REGISTRY[check]
    targets = spec.targets(path[1], entry)  # the entry, or (a check per named item) each of its items
    if spec.each is not None:
        targets = [t for t in targets if t.part is not None and len(path) > 3 and t.part[1] == path[3]]
        if not targets:
            names = sorted(spec.each[1](entry))
            return f"{check} runs once per item of {kind}.{path[1]}: {key} names none of {names}"
    if not spec.applies(targets[0].config):
        return f"{check} is not configured by {key} (deselected)"
    return None


def table(all_maps: dict[str, Map]) -> str:
    """The README's per-runbook table."""
    out = ["| runbook (coverage map) | steps | machine-verifiable | covered by a configured check | planned "
           "| missing | not verifiable by a machine | covered |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for doc, (runbook, _) in RUNBOOKS.items():
        m = all_maps[doc]
        share = f"{100 * m.count('covered') / m.verifiable:.0f} %" if m.verifiable else "—"
        out.append(f"| [{doc}](docs/runbooks/{doc}.md) ({runbook[:3]}) | {len(m.rows)} | {m.verifiable} "
                   f"| {m.count('covered')} | {m.count('planned')} | {m.count('missing')} | {m.count('manual')} "
                   f"| {share} |")
    rows = [r for m in all_maps.values() for r in m.rows]
    covered = sum(1 for r in rows if r.kind == "covered")
    verifiable = sum(1 for r in rows if r.kind in ("covered", "planned", "missing"))
    out.append(f"| **all five** | {len(rows)} | {verifiable} | {covered} "
               f"| {sum(1 for r in rows if r.kind == 'planned')} | {sum(1 for r in rows if r.kind == 'missing')} "
               f"| {sum(1 for r in rows if r.kind == 'manual')} | {100 * covered / max(verifiable, 1):.0f} % |")
    return "\n".join(out)


def test_one_map_per_runbook_naming_its_runbook_and_example() -> None:
    assert sorted(maps()) == sorted(RUNBOOKS)
    for doc, m in maps().items():
        assert m.problems == []
        assert (m.runbook, m.example) == RUNBOOKS[doc], f"docs/runbooks/{doc}.md names the wrong runbook/example"
        assert m.rows, f"docs/runbooks/{doc}.md has no steps"


@pytest.mark.parametrize("doc", sorted(RUNBOOKS))
def test_every_row_has_a_verdict_and_the_lines_it_maps(doc: str) -> None:
    bad = [f"{r.where}: verdict {r.verdict!r} is none of `check` / `key`, 'planned (hNN): …', 'missing: …', "
           f"'{MANUAL}…'" for r in maps()[doc].rows if not r.kind]
    bad += [f"{r.where}: lines {r.lines!r} (write 61, 61-62 or 61, 523)" for r in maps()[doc].rows
            if not LINES.match(r.lines)]
    bad += [f"{r.where}: a planned or unverifiable step names a check ({r.refs})" for r in maps()[doc].rows
            if r.kind != "covered" and r.refs]
    assert bad == []


@pytest.mark.parametrize("doc", sorted(RUNBOOKS))
def test_every_check_named_exists_and_is_configured_by_the_example(doc: str) -> None:
    m = maps()[doc]
    bad = [f"{r.where}: {why}" for r in m.rows for check, key in r.refs
           if (why := problem(check, key, m.example)) is not None]
    assert bad == []


@pytest.mark.skipif(SEEDS is None, reason="the founding runbooks are not next to this checkout")
@pytest.mark.parametrize("doc", sorted(RUNBOOKS))
def test_the_lines_cited_are_lines_of_the_runbook(doc: str) -> None:
    assert SEEDS is not None
    text = (SEEDS / RUNBOOKS[doc][0]).read_text(encoding="utf-8").splitlines()
    bad = []
    for r in maps()[doc].rows:
        for a, b in re.findall(r"(\d+)(?:-(\d+))?", r.lines):
            first, last = int(a), int(b or a)
            if not 1 <= first <= last <= len(text) or not any(t.strip() for t in text[first - 1:last]):
                bad.append(f"{r.where}: l. {a}{'-' + b if b else ''} is no text of {RUNBOOKS[doc][0]}")
    assert bad == []


def test_the_checker_refuses_what_is_not_configured() -> None:
    """``problem`` finds each kind of wrong reference (so that the test above passing means something)."""
    name = RUNBOOKS["signx-apex"][1]
    assert problem("postgres.connections", "postgres.main.max_connection_ratio", name) is None
    assert "not a check" in (problem("postgres.nonsense", "postgres.main", name) or "")
    assert "not a key" in (problem("postgres.connections", "postgres.nowhere", name) or "")
    assert "check of redis" in (problem("redis.ping", "postgres.main", name) or "")
    assert "deselected" in (problem("postgres.rls", "postgres.main", name) or "")
    assert "per item" in (problem("postgres.query", "postgres.main.max_query_s", name) or "")
    row = Row("x", "s", "1", "step", "looks fine")
    assert row.kind == ""
    assert Row("x", "s", "1", "s", "planned (h35): WAL").kind == "planned"


def test_the_parser_reads_rows_sections_and_bad_tables(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# X\n\n- runbook: `r.txt`\n- example: `e.yaml`\n\nProse | with a pipe.\n\n## A section\n\n"
                   "| lines | step | verdict |\n|---|---|---|\n| 1 | `a \\| b` | x |\n\n"
                   "## B\n\n| line | what |\n|---|---|\n| 2 | y |\n", encoding="utf-8")
    m = parse(doc)
    assert (m.runbook, m.example) == ("r.txt", "e.yaml")
    assert m.rows == [Row("x", "A section", "1", "`a | b`", "x")]
    assert m.problems == ["x.md:16: table header ['line', 'what'], expected ['lines', 'step', 'verdict']",
                          "x.md:18: 2 cells, expected 3 (lines | step | verdict)"]


def test_the_readme_table_is_computed_from_the_maps() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text, f"README.md: the table goes between {START} and {END}"
    assert END in text, f"README.md: the table goes between {START} and {END}"
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    expected = table(maps())
    assert shown == expected, f"README.md's runbook coverage table is stale; it is:\n{expected}"


if __name__ == "__main__":
    sys.stdout.write(table(maps()) + "\n")
