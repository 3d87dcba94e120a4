"""The pytest plugin's usage errors and its silence in plain runs, in-process (pytester): no target is probed, no
sandbox starts — the fast tier's guard would refuse either. The runs against live targets are in
tests/integration/test_plugin.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

REPO = Path(__file__).resolve().parents[2]


# In this process opsproof is imported already, so a run could not rewrite its asserts and would say so (a warning,
# hence an error): the runs assert plainly, and leave out hypothesis' plugin, which would import (and rewrite)
# hypothesis at the end of every run. No test of theirs needs either.
QUIET = ("--assert=plain", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")


def run_smoke(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """``pytest smoke …`` in this process, with the repository's configuration (addopts, conftest)."""
    return pytester.runpytest_inprocess(str(REPO / "smoke"), "--opsproof-out", str(pytester.path / "out"),
                                        *QUIET, *args)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("environment: s\npostgres:\n  main:\n    dsn: postgresql://h/db\n    max_conection_ratio: 0.5\n",
         r"ERROR: .*inventory.yaml:5: postgres.main.max_conection_ratio: unknown key 'max_conection_ratio'. "
         r"Fix: did you mean 'max_connection_ratio'"),
        ("environment: s\nredis:\n  cache:\n    url: ${NOT_SET_ANYWHERE}\n",
         r"ERROR: .*inventory.yaml:4: redis.cache.url: environment variable \$\{NOT_SET_ANYWHERE\} is not set"),
        ("environment: s\nhttp: [\n", r"ERROR: .*inventory.yaml:3: not valid YAML"),
    ],
)
def test_broken_inventory_is_a_usage_error(pytester: pytest.Pytester, text: str, message: str) -> None:
    inventory = pytester.path / "inventory.yaml"
    inventory.write_text(text)
    run = run_smoke(pytester, "--inventory", str(inventory))
    output = run.stdout.str() + run.stderr.str()
    assert run.ret == pytest.ExitCode.USAGE_ERROR  # nothing was collected or run
    assert "Traceback" not in output
    assert re.search(message, output), output


def test_no_inventory_and_no_sandbox_is_a_usage_error(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSPROOF_INVENTORY", raising=False)
    run = run_smoke(pytester, "--no-sandbox")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "no --inventory given (and --no-sandbox). Fix: pass --inventory FILE." in run.stderr.str()


def test_engine_tests_do_not_start_a_sandbox(pytester: pytest.Pytester) -> None:
    """The plugin is loaded in every pytest run; it acts only for tests that declare a check (a sandbox it
    started would be a process, which the guard refuses)."""
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    run = pytester.runpytest_inprocess(*QUIET, "-p", "no:kmock", "-p", "no:locust", "-q")
    assert run.ret == pytest.ExitCode.OK, run.stdout.str()
    run.assert_outcomes(passed=1)
    assert "sandbox" not in run.stdout.str()
