"""``logs.errors`` as users run it (the post-deploy suite in a pytest subprocess): the noisy log fails with its
count, files and latest lines, a secret in a line masked; the quiet one passes. The probe itself: tests/unit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import run_suite

pytestmark = pytest.mark.integration

SECRET = "canary-log-pw-4Rt8"  # an inventory secret (a ${…_PASSWORD}) that the app wrote into a log line


def test_as_a_suite(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    line = f"{now:%Y-%m-%d %H:%M:%S},123 ERROR redis AUTH {SECRET} refused for db 0"
    (tmp_path / "noisy.log").write_text(f"{now:%Y-%m-%d %H:%M:%S} INFO started\n" + f"{line}\n" * 7)
    (tmp_path / "quiet.log").write_text(f"{now:%Y-%m-%d %H:%M:%S} INFO started\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"""environment: prod
redis:
  cache: {{url: "redis://:${{REDIS_PASSWORD}}@127.0.0.1:6379/0"}}
logs:
  noisy: {{path: "{tmp_path / 'noisy.log'}", pattern: "ERROR|FATAL", window: 10m, max_matches: 5, samples: 2}}
  quiet: {{path: "{tmp_path / 'quiet.log'}", window: 10m}}
""")
    run = run_suite(inventory, tmp_path / "out", suite="checks/post_deploy/test_06_logs.py",
                    env={"REDIS_PASSWORD": SECRET})
    assert run.code == 1, run.output
    assert run.failed == {"logs.errors@logs[noisy]"}, run.output
    assert {r["target"] for r in run.records if r["outcome"] == "passed"} == {"logs[quiet]"}
    masked = line.replace(SECRET, "***")
    assert (f"logs[noisy]: 7 lines matching ERROR|FATAL in the last 10m ({tmp_path / 'noisy.log'}); latest: "
            f"{masked} | {masked}, expected at most 5 lines matching ERROR|FATAL in the last 10m") in run.output
    written = run.output + run.junit + "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert SECRET not in written
