"""One rule for where output goes, as users meet it: paths relative to the working directory (like --junitxml),
and the same evidence naming from `opsproof chaos run` and Chaos Toolkit's own `chaos run`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, SandboxHelper

pytestmark = pytest.mark.integration

TINY = """version: 1.0.0
title: Output naming, no fault
description: The app answers; nothing is injected. Only the evidence it writes matters here.
configuration:
  opsproof_sandbox_dir: {type: env, key: OPSPROOF_SANDBOX_DIR, default: ""}
  opsproof_out: {type: env, key: OPSPROOF_OUT, default: ""}
runtime:
  rollbacks: {strategy: always}
controls:
  - name: opsproof
    provider: {type: python, module: opsproof.chaos.control}
method:
  - type: probe
    name: app-healthy
    provider: {type: python, module: opsproof.chaos.probes, func: check, arguments: {check: http.health, target: app}}
"""
NAMED = re.compile(r"output-naming-no-fault-\d{8}T\d{6}Z\.json")


def test_both_chaos_entry_points_write_the_same_naming_under_the_output_root(healthy: SandboxHelper,
                                                                             tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yaml"
    experiment.write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != "OPSPROOF_OUT"}
    ours = subprocess.run([sys.executable, "-m", "opsproof.cli", "chaos", "run", str(experiment),
                           "--sandbox-dir", str(healthy.box.dir), "--out", "ours"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert ours.returncode == 0, ours.stdout + ours.stderr
    plain = subprocess.run([str(Path(sys.executable).parent / "chaos"), "run", str(experiment)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120,
                           env={**env, "OPSPROOF_SANDBOX_DIR": str(healthy.box.dir), "OPSPROOF_OUT": "plain"})
    assert plain.returncode == 0, plain.stdout + plain.stderr
    [mine] = list((tmp_path / "ours" / "chaos").iterdir())
    [theirs] = list((tmp_path / "plain" / "chaos").iterdir())
    assert NAMED.fullmatch(mine.name), mine
    assert NAMED.fullmatch(theirs.name), theirs
    assert json.loads(mine.read_text())["ok"]
    assert json.loads(theirs.read_text())["ok"]


def smoke_from(cwd: Path, helper: SandboxHelper, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "OPSPROOF_OUT"}
    return subprocess.run([sys.executable, "-m", "pytest", str(REPO / "smoke" / "test_http.py::test_health"),
                           "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"), "-p", "no:cacheprovider",
                           "-q", "--inventory", str(helper.inventory), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_a_relative_record_resolves_against_the_working_directory_like_junitxml(healthy: SandboxHelper,
                                                                                tmp_path: Path) -> None:
    work = tmp_path / "work"
    done = smoke_from(work, healthy, "--opsproof-record", "rel/gate.jsonl", "--junitxml", "rel/gate.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (work / "rel" / "gate.jsonl").exists()
    assert (work / "rel" / "gate.xml").exists()
    assert not (REPO / "rel").exists()
    done = smoke_from(work, healthy)  # no option: the default root, ./reports
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((work / "reports" / "results.jsonl").read_text().splitlines()[0])["check"] == "http.health"
