"""bench/bench_http.py's plain-pytest baseline runs on a fresh install (issue 9: kmock's plugin made it exit 3)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_http.py"


def test_the_plain_baseline_arguments_run_a_plain_test_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_http", BENCH)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_http", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert True\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "test_plain.py", "-q", "-p", "no:cacheprovider",
                          *bench.PLAIN_PLUGINS_OFF], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
