"""Bad input as a user meets it (issue 10): pytest and the `opsproof` command on a device, a FIFO, a blanket
waiver and hostile experiments — a clear message and a usage error, never a traceback, a hang or a side effect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from support import REPO, run_suite

HEALTH = "smoke/test_http.py::test_health"


def opsproof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsproof.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_pytest_refuses_a_device_and_a_fifo_as_the_inventory(tmp_path: Path) -> None:
    fifo = tmp_path / "inventory.yaml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        run = run_suite(path, tmp_path, suite=HEALTH, timeout=60)  # a FIFO used to wait for a writer forever
        assert run.code == 4, run.output
        assert "not a regular file). Fix: name the inventory file itself." in run.output
        assert "INTERNALERROR" not in run.output
        assert "Traceback" not in run.output


def test_a_blanket_waiver_is_warned_about_at_the_end_of_the_run(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("environment: st\nhttp:\n  web: {url: 'http://127.0.0.1:9', ready: null, timeout_s: 1}\n")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("- {check: '*', reason: r, owner: alice, ticket: OPS-1, expires: 9999-12-31}\n")
    run = run_suite(inventory, tmp_path, "--waivers", str(waivers), suite=HEALTH)
    assert run.code == 0, run.output  # the waiver applies; the warnings say what it costs
    assert (f"opsproof: warning: {waivers}: [0].check: '*' matches every check: it waives any failure, known or not "
            "(alice, OPS-1)") in run.output
    assert f"opsproof: warning: {waivers}: [0].expires: 9999-12-31 is more than a year away" in run.output


def test_chaos_validate_imports_nothing_outside_the_extension(tmp_path: Path) -> None:
    experiment = yaml.safe_load((REPO / "chaos" / "experiments" / "redis-down.yaml").read_text())
    experiment["method"][0]["provider"].update(module="this", func="x")
    zen = tmp_path / "zen.yaml"
    zen.write_text(yaml.safe_dump(experiment))
    listed = tmp_path / "list.yaml"
    listed.write_text("- title: x\n")
    done = opsproof("chaos", "validate", str(zen), str(listed), str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Beautiful is better than ugly" not in done.stdout  # `import this` never ran
    assert "module 'this' is not part of the opsproof chaos extension, so it was not imported" in done.stdout
    assert f"{listed}:1: (top level): expected a mapping" in done.stdout
    assert f"{tmp_path}: cannot read the experiment (a directory, not a regular file)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
