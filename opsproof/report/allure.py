"""Allure, done fully, when allure-pytest is active (``--alluredir DIR``).

Every check's test carries the labels a reviewer filters by — severity, the opsproof suite (``parentSuite``), the
check's kind (``suite``), the check, the target and the environment — and its evidence as a JSON attachment; drill
phases and chaos timeline stages become steps (:mod:`opsproof.report.allure_steps`). At the end of the run the
results folder gets ``environment.properties`` (environment, inventory, commit, versions; no URL, no secret) and
``categories.json`` (blocked, waived, timed out, no data, flaky), so Allure groups them as opsproof does. Render
without Java: ``npx allure@3 generate DIR -o OUT``.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsproof.report.records import suite_of
from opsproof.result import Result, Severity

SEVERITY = {"critical": "blocker", "high": "critical", "medium": "normal", "low": "minor"}

CATEGORIES = [
    {"name": "Blocked by a failing dependency (its root cause fails on its own)", "matchedStatuses": ["skipped"],
     "messageRegex": "(?s).*blocked by .*"},
    {"name": "Waived (known, with an owner, a ticket and an expiry)", "matchedStatuses": ["skipped"],
     "messageRegex": "(?s).*waived: .*"},
    {"name": "Expired waiver (the failure counts again)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*waiver for .* expired on .*"},
    {"name": "Timed out (the run's time budget was spent)", "matchedStatuses": ["failed"],
     "messageRegex": "(?s).*timed out.*"},
    {"name": "No data (no verdict: too little to judge)", "matchedStatuses": ["skipped"],
     "messageRegex": "(?s).*no verdict.*"},
    {"name": "Flaky (passed only after failing)", "matchedStatuses": ["passed"], "flaky": True},
    {"name": "Failed checks", "matchedStatuses": ["failed"]},
    {"name": "Broken tests (not a check's verdict)", "matchedStatuses": ["broken"]},
]


def label_check(res: Result, severity: Severity | None, nodeid: str, environment: str | None) -> None:
    """Labels and evidence of one check, on the running test (call phase)."""
    import allure

    dynamic: Any = allure.dynamic
    dynamic.label("severity", SEVERITY[severity.value if severity else "medium"])
    dynamic.label("opsproof_check", res.check)
    dynamic.parent_suite(suite_of(nodeid))
    dynamic.suite(res.check.split(".", 1)[0])
    dynamic.sub_suite(res.target)
    dynamic.tag(res.target)
    if environment:
        dynamic.label("environment", environment)
    allure.attach(json.dumps(res.to_record(), indent=2, default=str, ensure_ascii=False),
                  name=f"evidence {res.target}", attachment_type=allure.attachment_type.JSON)


def write_run_files(folder: Path, environment: str | None, inventory: str | None, commit: str | None,
                    redact: Callable[[str], str]) -> None:
    """``environment.properties`` and ``categories.json`` of the results folder."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    properties = {"environment": environment or "", "inventory": inventory or "(the sandbox)",
                  "commit": commit or "", "opsproof": version("opsproof"), "pytest": pytest.__version__,
                  "python": platform.python_version(), "host": platform.node()}
    (folder / "environment.properties").write_text(
        "".join(f"{key}={_escaped(redact(value))}\n" for key, value in properties.items()), encoding="utf-8")
    (folder / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")


def _escaped(value: str) -> str:
    """A Java properties value: backslashes, line breaks and leading spaces escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").lstrip()
