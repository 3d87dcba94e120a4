"""Every experiment in chaos/experiments, run for real against the sandbox: it completes without deviating from
its steady state, every expected alert fires within the budget computed from the live configuration (reported
beside the measured time), the system recovers within the experiment's target, the rollbacks leave nothing
behind, and the timeline is saved as JSON evidence.

With ``--inventory FILE`` (and ``--experiments PATH``): the experiments run against that inventory instead; each is
first validated against it (a fault whose backend the inventory lacks fails with validate's finding, before
anything is touched), then it must pass, complete without deviating, and leave the audit clean.

With ``--load SCENARIO``: each experiment runs with that load scenario of the inventory in the background
(``opsproof.load.underchaos``); the load's thresholds must hold too, and the evidence shows what users felt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsproof.chaos import runner
from opsproof.plugin import output_root
from opsproof.report import allure_steps

EXPERIMENTS = sorted((Path(__file__).parent / "experiments").glob("*.yaml"))
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("chaos")]


def _experiments(config: pytest.Config) -> list[Path]:
    given = config.getoption("experiments") or []
    found: list[Path] = []
    inventory = config.getoption("inventory")
    for item in map(Path, given):
        found += sorted(item.glob("*.yaml")) if item.is_dir() else [item]
    return [p for p in found if not (inventory and p.resolve() == Path(inventory).resolve())] or EXPERIMENTS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "path" in metafunc.fixturenames:
        paths = _experiments(metafunc.config)
        metafunc.parametrize("path", paths, ids=[p.stem for p in paths])


def test_experiment(path: Path, chaos_env: Any, pytestconfig: pytest.Config) -> None:
    if chaos_env.helper is None:
        _on_the_inventory(path, chaos_env, pytestconfig)
        return
    chaos_sandbox = chaos_env.helper
    chaos_sandbox.wait_healthy()
    outcome = _run(path, None, chaos_sandbox.box.dir, pytestconfig)
    assert outcome.ok, outcome.summary()
    assert outcome.status == "completed"
    assert not outcome.journal["deviated"]
    assert outcome.evidence["detections"], "an experiment proves at least one alert"
    for d in outcome.evidence["detections"]:
        assert d["truth_s"] <= d["budget_s"], f"{d['alert']}: fired {d['truth_s']} s, budget {d['budget_s']} s"
        assert abs(d["detected_s"] - d["truth_s"]) <= 1.0, d
        assert set(d["scrapes"]) == set(d["budget"]["jobs"]), d  # what Prometheus saw of the rule's jobs
        # recorded for each job (a 5 s job may have no scrape stamped after the fault's mark: the scrape that saw
        # the fault can start while the fault is being injected)
        assert all(set(f) == {"scrapes", "failed", "slowest_s"} for f in d["scrapes"].values()), d
    recovery = outcome.evidence["recovery"]
    assert recovery["recovery_s"] <= recovery["target_s"], recovery
    assert outcome.evidence["audit"] == {"clean": True, "checked": outcome.evidence["audit"]["checked"],
                                         "problems": []}
    assert outcome.evidence_path is not None
    saved = json.loads(outcome.evidence_path.read_text())
    events = [m["event"] for m in saved["timeline"]]
    for event in ("fault_injected", "pending", "firing", "delivered", "remediated", "recovered", "resolved"):
        assert event in events, f"{event} missing from the timeline {events}"
    for secret in chaos_sandbox.box.meta["passwords"].values():
        assert secret not in outcome.evidence_path.read_text()


def _on_the_inventory(path: Path, env: Any, pytestconfig: pytest.Config) -> None:
    from opsproof.chaos.validate import problems
    from opsproof.inventory import load

    assert env.inventory is not None
    found = problems(path, load(env.inventory), sandbox=env.sandbox_dir is not None)
    assert not found, f"{path} is not valid for {env.inventory}:\n  " + "\n  ".join(found)
    outcome = _run(path, env.inventory, env.sandbox_dir, pytestconfig)
    assert outcome.ok, outcome.summary()
    assert outcome.status == "completed"
    assert not outcome.journal["deviated"]
    assert outcome.evidence["audit"]["problems"] == []


def _run(path: Path, inventory: Path | None, sandbox_dir: Path | None, config: pytest.Config) -> runner.Outcome:
    scenario = config.getoption("load")
    if not scenario:
        outcome = runner.run(path, inventory=inventory, sandbox_dir=sandbox_dir, out=output_root(config))
        print(outcome.summary())
        _to_allure(outcome, config)
        return outcome
    from opsproof.load import underchaos

    loaded = underchaos.run(path, scenario, inventory=inventory, sandbox_dir=sandbox_dir, out=output_root(config))
    print(loaded.summary())
    _to_allure(loaded.outcome, config)
    assert loaded.ok, loaded.summary()
    return loaded.outcome


def _to_allure(outcome: runner.Outcome, config: pytest.Config) -> None:
    """With ``--alluredir``: the timeline's stages as steps (judged against the budget), the evidence attached."""
    if allure_steps.active(config):
        allure_steps.write(allure_steps.chaos_steps(outcome.evidence))
        allure_steps.attach_json(outcome.evidence, f"chaos evidence {outcome.evidence.get('experiment')}")
