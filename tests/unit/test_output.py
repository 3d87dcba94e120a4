"""One rule for where every kind of output goes (opsproof.output): one root, one layout, one naming."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsproof import output


def test_the_root_is_the_option_else_the_environment_else_reports(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.delenv(output.ENV, raising=False)
    assert output.root(None, tmp_path) == tmp_path / "reports"
    monkeypatch.setenv(output.ENV, "from-env")
    assert output.root(None, tmp_path) == tmp_path / "from-env"
    assert output.root("given", tmp_path) == tmp_path / "given"
    assert output.root("/abs/out", tmp_path) == Path("/abs/out")


def test_a_relative_path_resolves_against_the_working_directory(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(output.ENV, raising=False)
    assert output.root() == tmp_path / "reports"  # like --junitxml: not the repository, not the package
    assert output.resolve("gate.jsonl") == tmp_path / "gate.jsonl"
    assert output.resolve("~/x.json") == Path.home() / "x.json"


def test_every_kind_of_output_has_its_place_under_the_root() -> None:
    out = Path("/o")
    assert output.results(out) == Path("/o/results.jsonl")
    assert output.baseline(out, "pre-maint") == Path("/o/baselines/pre-maint.json")
    assert output.baseline_diff(out, "pre-maint") == Path("/o/baseline-diff-pre-maint.json")
    assert output.drills(out) == Path("/o/drills")
    assert output.chaos(out) == Path("/o/chaos")


def test_evidence_files_are_named_by_slug_and_utc_time_and_never_overwrite(tmp_path: Path) -> None:
    assert output.slug("Application killed, restarted by its supervisor") == \
        "application-killed-restarted-by-its-supervisor"
    assert output.slug("word " * 30, limit=12) == "word-word"  # cut at a word
    assert output.slug("!!!") == "experiment"
    first = output.stamped(tmp_path / "chaos", "redis-down", 1764670500.25)
    again = output.stamped(tmp_path / "chaos", "redis-down", 1764670500.75)
    assert first.name == "redis-down-20251202T101500Z.json"
    assert again.name == "redis-down-20251202T101500Z-2.json"
    assert re.fullmatch(r"redis-down-\d{8}T\d{6}Z\.json", output.stamped(tmp_path, "redis-down").name)
