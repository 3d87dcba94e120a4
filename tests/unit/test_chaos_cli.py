"""`opsproof chaos`: options go anywhere on the command line, and an experiment whose faults act on the opsproof
sandbox is invalid for an inventory that has no sandbox (it would fail at run time with "no sandbox state")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opsproof.chaos.validate import SANDBOX_SHAPE
from opsproof.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "chaos" / "experiments"
REDIS_DOWN, LATENCY = str(EXPERIMENTS / "redis-down.yaml"), str(EXPERIMENTS / "added-latency.yaml")


def inventory(folder: Path, *, sandbox: bool) -> str:
    """The sandbox's shape as a file; with the sandbox's marker beside it, or as a stack of the user's."""
    folder.mkdir(exist_ok=True)
    (folder / "inventory.yaml").write_text(SANDBOX_SHAPE)
    if sandbox:
        (folder / "sandbox.json").write_text("{}")
    return str(folder / "inventory.yaml")


def test_options_go_anywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path / "box", sandbox=True)
    assert main(["chaos", "validate", "--inventory", inv, REDIS_DOWN]) == 0
    assert main(["chaos", "validate", REDIS_DOWN, "--inventory", inv, LATENCY]) == 0
    out = capsys.readouterr().out
    assert f"{REDIS_DOWN}: valid" in out
    assert f"{LATENCY}: valid" in out
    assert "2 experiment(s) checked" in out


def test_an_unknown_option_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["chaos", "validate", REDIS_DOWN, "--invetory", "x.yaml"])
    assert stop.value.code == 2
    assert "unrecognized arguments: --invetory x.yaml" in capsys.readouterr().err


def test_sandbox_faults_need_a_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path / "stack", sandbox=False)
    assert main(["chaos", "validate", "--inventory", inv, REDIS_DOWN, LATENCY]) == 1
    out = capsys.readouterr().out
    assert ("  - method 'kill-redis': faults.kill_service acts on the sandbox's processes (service 'redis'), and "
            "there is no sandbox: the inventory given is not a sandbox's (no sandbox.json beside it) and no "
            "--sandbox-dir was given. Fix: run it on the sandbox (--sandbox-dir DIR), or use an action of your own "
            "stack's (a Chaos Toolkit process action)") in out
    assert "method 'add-latency': proxy.proxy_fault acts on the sandbox's fault proxy 'pgproxy' (or " \
        "opsproof_pgproxy_url in the configuration)" in out
    assert "alerts.alert_delivered acts on the sandbox's webhook receiver" in out
    # a --sandbox-dir of a running sandbox gives the faults their backend
    box = tmp_path / "box"
    inventory(box, sandbox=True)
    assert main(["chaos", "validate", "--inventory", inv, "--sandbox-dir", str(box), REDIS_DOWN]) == 0


def test_a_stand_in_named_in_the_configuration_is_enough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiment = yaml.safe_load(Path(LATENCY).read_text())
    experiment["configuration"] |= {"opsproof_pgproxy_url": "http://127.0.0.1:9", "opsproof_webhook_url": "http://x"}
    path = tmp_path / "latency-own-proxy.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    inv = inventory(tmp_path / "stack", sandbox=False)
    assert main(["chaos", "validate", "--inventory", inv, str(path)]) == 0, capsys.readouterr().out


def test_the_own_stack_example_is_valid_without_a_sandbox(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/chaos: experiments for a stack of one's own (Docker Compose), checked against its inventory. Those
    acting through the docker backend need a Docker daemon, which unit tests do not reach: validation says so
    (tests/integration/test_chaos_compose_stack.py validates them against a live daemon)."""
    folder = EXPERIMENTS.parents[1] / "examples" / "chaos"
    experiments = sorted(str(p) for p in folder.glob("*.yaml") if p.name != "compose-stack.yaml")
    assert experiments
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code = main(["chaos", "validate", "--inventory", str(folder / "compose-stack.yaml"), *experiments])
    out = capsys.readouterr().out
    invalid = [line for line in out.splitlines() if line.endswith(": INVALID")]
    assert invalid == [f"{folder / 'container-paused.yaml'}: INVALID"], out
    problems = [line for line in out.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, out  # the pause, the unpause in the method, the rollback
    assert all("the docker backend cannot act for this inventory: no Docker daemon answers at DOCKER_HOST / the "
               "local socket (no socket /nonexistent/docker.sock)" in p for p in problems), out
    assert code == 1
