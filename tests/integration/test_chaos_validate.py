"""`opsproof chaos validate`: every shipped experiment is valid, and each kind of mistake is named — without a
sandbox and without injecting anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from support import REPO

EXPERIMENTS = REPO / "chaos" / "experiments"


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsproof.cli", "chaos", "validate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_shipped_experiments_are_valid() -> None:
    done = validate()
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = sorted(EXPERIMENTS.glob("*.yaml"))
    assert len(shipped) == 5
    for path in shipped:
        assert f"{path.relative_to(REPO)}: valid" in done.stdout
    assert done.stdout.endswith("5 experiment(s) checked against the sandbox's inventory shape: 0 invalid "
                                "(nothing was injected)\n")


def test_each_mistake_is_named(tmp_path: Path) -> None:
    experiment = yaml.safe_load((EXPERIMENTS / "redis-down.yaml").read_text())
    experiment["controls"] = []
    experiment["rollbacks"] = []
    experiment["runtime"]["rollbacks"]["strategy"] = "default"
    method = experiment["method"]
    method[0]["provider"]["arguments"]["service"] = "memcached"
    method[1]["provider"]["arguments"]["name"] = "RedisGone"
    method[3]["provider"]["arguments"]["target"] = "web"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(experiment))
    done = validate(str(broken))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{broken}: INVALID",
        "  - the opsproof control (opsproof.chaos.control) is not declared: plain `chaos run` would have no "
        "production refusal, no SIGTERM rollback and no audit",
        "  - runtime.rollbacks.strategy is default, expected always: with Chaos Toolkit's default, plain `chaos run` "
        "skips the rollbacks of an interrupted or failed run",
        "  - the method has actions but the experiment has no rollbacks",
        "  - method 'kill-redis': service 'memcached' is not a sandbox service (postgres, replica, redis, webhook, "
        "alertmanager, postgres_exporter, redis_exporter, proxy, pgproxy, app, prometheus)",
        "  - method 'redis-down-fires': alert 'RedisGone' is not among the inventory's Prometheus rules",
        "  - method 'app-degraded': http[web] is not in the inventory (app)",
        "1 experiment(s) checked against the sandbox's inventory shape: 1 invalid (nothing was injected)",
    ]


def test_chaos_toolkit_schema_errors_are_reported(tmp_path: Path) -> None:
    experiment = yaml.safe_load((EXPERIMENTS / "app-killed.yaml").read_text())
    experiment["method"][0]["provider"]["arguments"]["signal_name"] = "SIGKILL"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(experiment))
    done = validate(str(bad))
    assert done.returncode == 1
    assert ("  - Chaos Toolkit: argument 'signal_name' is not part of the function signature in activity "
            "'kill_service'") in done.stdout
