"""The readiness report as a reviewer opens it: Debian's Chromium, headless, from a file:// path — it renders with
no console error and with the verdict and every section in the page; the screenshot is kept as an artifact
(reports/artifacts/readiness.png)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import REPO

from opsproof.cli import main

pytestmark = pytest.mark.integration
DATA = REPO / "tests" / "unit" / "data" / "report"


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is not installed (make services installs it)"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", *args], capture_output=True, text=True, timeout=60)


def test_the_report_renders_in_a_browser_with_every_section(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    for folder, name in (("runs", "smoke.jsonl"), ("drills", "drill.json"), ("chaos", "chaos.json"),
                         ("load", "load.json")):
        (root / folder).mkdir(parents=True)
        shutil.copy(DATA / name, root / folder / name)
    assert main(["report", "--out", str(root), "--change", "CHG-9"]) == 0
    page = (root / "readiness" / "readiness.html").as_uri()
    dom = chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr
    assert "Readiness: GO — sandbox, change CHG-9" in dom.stdout
    for section in ("gates", "post-maintenance", "dr-drill", "chaos", "load", "evidence"):
        assert f'<section id="{section}">' in dom.stdout
    assert "<svg" in dom.stdout  # the chaos timeline
    artifacts = REPO / "reports" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = chromium(f"--screenshot={artifacts / 'readiness.png'}", "--window-size=1300,1500", page)
    assert shot.returncode == 0, shot.stderr
    assert (artifacts / "readiness.png").stat().st_size > 10_000
    console = [line for line in dom.stderr.splitlines() + shot.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
