"""examples/k8s/readiness-jobs.yaml, the README's "one Kubernetes Job per cluster, one report": it parses, every
command line names real options (pytest's with the opsproof and xdist plugins, in-process; `opsproof report`'s
argparse), every file it names is mounted, the report reads the folders the gate Jobs write, and its policy is
valid."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from opsproof.cli import build_parser
from opsproof.report.policy import loads_policy

pytest_plugins = ("pytester",)

MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "k8s" / "readiness-jobs.yaml"


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def containers(kind: str, component: str) -> list[dict[str, Any]]:
    jobs = [d for d in documents() if d["kind"] == kind
            and d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    assert jobs, f"no {kind} of component {component} in {MANIFEST}"
    return [c for job in jobs for c in job["spec"]["template"]["spec"]["containers"]]


def command_line(container: dict[str, Any]) -> list[str]:
    line = [str(a) for a in [*container.get("command", []), *container.get("args", [])]]
    assert all(isinstance(a, str) for a in [*container.get("command", []), *container.get("args", [])]), \
        "every argument is a string (a YAML number in args is rejected by the API server)"
    return line


def option_value(line: list[str], option: str) -> str:
    return line[line.index(option) + 1]


def test_the_manifest_holds_the_gate_jobs_the_report_job_and_the_policy() -> None:
    kinds = [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in documents()]
    assert kinds == [("batch/v1", "Job", "opsproof-gate-eu"), ("batch/v1", "Job", "opsproof-readiness"),
                     ("v1", "ConfigMap", "opsproof-readiness-policy")]
    for job in (d for d in documents() if d["kind"] == "Job"):
        spec = job["spec"]
        assert spec["backoffLimit"] == 0, "a failed gate is a verdict: not retried"
        assert spec["template"]["spec"]["restartPolicy"] == "Never"
        pod = spec["template"]["spec"]
        defined = {v["name"] for v in pod["volumes"]}
        for c in pod["containers"]:
            assert {m["name"] for m in c["volumeMounts"]} <= defined


def test_the_gate_names_real_pytest_options(pytester: pytest.Pytester) -> None:
    [gate] = containers("Job", "gate")
    line = command_line(gate)
    assert line[:3] == ["python", "-m", "pytest"]
    options = [a for a in line[3:] if a.startswith("-")]
    assert {"--inventory", "--opsproof-out", "--fail-on", "-n"} <= set(options)
    # pytest's own parser, with the plugins installed here (opsproof, xdist): an unknown option is a UsageError
    config = pytester.parseconfig(*line[3:], "-p", "no:kmock", "-p", "no:locust")
    assert config.getoption("inventory") == option_value(line, "--inventory")
    assert config.getoption("opsproof_out") == option_value(line, "--opsproof-out")
    assert config.getoption("fail_on") == option_value(line, "--fail-on")
    assert config.getoption("numprocesses") == int(option_value(line, "-n"))
    assert config.getoption("time_budget") == float(option_value(line, "--time-budget"))
    assert config.getoption("xmlpath") == option_value(line, "--junitxml")
    assert config.getoption("no_sandbox") is True
    with pytest.raises(pytest.UsageError, match="unrecognized arguments: --opsproof-outt"):
        pytester.parseconfig("--opsproof-outt", "/x", "-p", "no:kmock", "-p", "no:locust")  # the check can fail
    mounts = {m["mountPath"] for m in gate["volumeMounts"]}
    for option in ("--inventory", "--opsproof-out", "--junitxml"):
        path = PurePosixPath(option_value(line, option))
        assert any(path.is_relative_to(m) for m in mounts), f"{option} {path}: on no mounted volume"


def test_the_report_parses_with_the_cli_and_reads_what_the_gates_write() -> None:
    [report] = containers("Job", "report")
    line = command_line(report)
    assert line[0] == "opsproof"
    args = build_parser().parse_args(line[1:])  # exits (SystemExit) on an option the CLI does not have
    assert args.command == "report"
    [gate] = containers("Job", "gate")
    written = PurePosixPath(option_value(command_line(gate), "--opsproof-out"))
    assert written in {PurePosixPath(p) for p in args.paths}, "the report reads the folder the gate writes"
    assert len(args.paths) >= 2, "one folder per cluster"
    mounts = {m["mountPath"] for m in report["volumeMounts"]}
    for path in [args.policy, args.report_dir, *map(str, args.paths)]:
        assert any(PurePosixPath(path).is_relative_to(m) for m in mounts), f"{path}: on no mounted volume"


def test_the_policy_it_mounts_is_valid() -> None:
    [config] = [d for d in documents() if d["kind"] == "ConfigMap"]
    policy = loads_policy(config["data"]["policy.yaml"], "policy.yaml")
    assert set(policy.rules()) == {"gates", "dr-drill"}
