"""Supabase's managed backups (``backups.<name>.supabase``) against a local stand-in of the Management API's
``GET /v1/projects/{ref}/database/backups`` (tests/integration/supabase_api.py: the documented JSON, the bearer
token checked, 401 on a wrong one) — not the real service. One server, one suite run for every case; a server that
never answers is tests/integration/test_unreachable.py's case (these checks join it from the registry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from supabase_api import Project, StandIn, serving
from support import SuiteRun, run_suite

pytestmark = pytest.mark.integration

TOKEN = "sbp_" + "5e" * 20  # the CLI's format: sbp_ and 40 hex digits
WRONG = "sbp_" + "c0ffee" * 6 + "d00d"  # a token the stand-in refuses: in no output
H, D = 3600, 86400


def ref(name: str) -> str:
    return (name + "z" * 20)[:20]


PROJECTS = {
    # daily backups, the newest 1 h old; a FAILED one 10 days ago (outside failures_within); PITR 31 d, latest 60 s
    "fresh": Project([("COMPLETED", 1 * H, True), ("COMPLETED", 25 * H, True), ("FAILED", 10 * D, True)],
                     pitr=True, earliest_age_s=31 * D, latest_age_s=60),  # disk: 2 of 8 GiB used
    "full": Project([("COMPLETED", 1 * H, True)], disk=(8 * 2**30, 7 * 2**30)),
    "stale": Project([("COMPLETED", 30 * H, True), ("REMOVED", 60 * H, True)]),
    "failing": Project([("FAILED", 1 * H, True), ("COMPLETED", 20 * H, True)]),
    "nopitr": Project([("COMPLETED", 2 * H, True)], pitr=False, walg=True),
    "short": Project([], pitr=True, earliest_age_s=10 * D, latest_age_s=20 * 60),
    "pitronly": Project([], pitr=True, earliest_age_s=8 * D, latest_age_s=120),
}


def inventory(url: str) -> str:
    def entry(name: str, token: str = "${SUPABASE_TOKEN}", **extra: Any) -> str:
        return json.dumps({"project_ref": ref(name), "access_token": token, "api_url": url, "timeout_s": 5, **extra})

    pitr = {"pitr": True, "pitr_window": "30d", "pitr_rpo": "5m"}
    return f"""environment: supabase
backups:
  fresh: {{max_age: 24h, supabase: {entry("fresh", max_disk_ratio=0.85, **pitr)}}}
  full: {{max_age: 24h, supabase: {entry("full", max_disk_ratio=0.85)}}}
  stale: {{max_age: 24h, supabase: {entry("stale")}}}
  failing: {{max_age: 24h, supabase: {entry("failing")}}}
  nopitr: {{max_age: 24h, supabase: {entry("nopitr", pitr=True)}}}
  short: {{max_age: 24h, supabase: {entry("short", **pitr)}}}
  pitronly: {{max_age: 24h, supabase: {entry("pitronly", pitr_rpo="5m")}}}
  badtoken: {{max_age: 24h, supabase: {entry("fresh", "${SUPABASE_WRONG_TOKEN}", pitr=True)}}}
"""


@pytest.fixture(scope="module")
def api() -> Iterator[StandIn]:
    with serving(TOKEN, {ref(k): v for k, v in PROJECTS.items()}) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def run(api: StandIn, tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    folder = tmp_path_factory.mktemp("supabase")
    path = folder / "inventory.yaml"
    path.write_text(inventory(api.url))
    return run_suite(path, folder / "out", "-k", "managed", suite="checks/post_maintenance/test_30_backups.py",
                     env={"SUPABASE_TOKEN": TOKEN, "SUPABASE_WRONG_TOKEN": WRONG})


def outcomes(run: SuiteRun) -> dict[str, str]:
    return {f"{r['check'].removeprefix('backups.supabase_')}@{r['target']}": r["outcome"] for r in run.records}


def observed(run: SuiteRun, check: str, target: str) -> str:
    [record] = [r for r in run.records if r["check"] == f"backups.supabase_{check}" and r["target"] == target]
    return str(record["observed"])


def test_exactly_the_broken_checks_fail(run: SuiteRun, api: StandIn) -> None:
    got = outcomes(run)
    failed = {k for k, v in got.items() if v == "failed"}
    assert failed == {"recent@backups[stale]", "failures@backups[failing]", "pitr@backups[nopitr]",
                      "pitr@backups[short]", "disk@backups[full]", "recent@backups[badtoken]",
                      "failures@backups[badtoken]", "pitr@backups[badtoken]"}, run.output
    assert {k for k, v in got.items() if v == "passed"} == {
        "recent@backups[fresh]", "failures@backups[fresh]", "pitr@backups[fresh]", "recent@backups[failing]",
        "recent@backups[nopitr]", "failures@backups[nopitr]", "failures@backups[stale]", "recent@backups[short]",
        "failures@backups[short]", "recent@backups[pitronly]", "failures@backups[pitronly]",
        "pitr@backups[pitronly]", "disk@backups[fresh]", "recent@backups[full]", "failures@backups[full]"}, run.output
    assert run.code == 1
    # the token went as a bearer token, and only there
    assert f"Bearer {TOKEN}" in api.auth_seen
    assert f"Bearer {WRONG}" in api.auth_seen


def test_the_findings_name_what_was_seen(run: SuiteRun) -> None:
    assert observed(run, "recent", "backups[fresh]").startswith("newest COMPLETED backup (id 1000, ")
    assert observed(run, "recent", "backups[stale]").endswith(") is 30.0 h old")
    assert observed(run, "failures", "backups[failing]").startswith("1 FAILED backup(s) (the newest): id 1000 at ")
    assert observed(run, "failures", "backups[fresh]").startswith("3 backup(s) listed, newest COMPLETED")
    assert observed(run, "pitr", "backups[nopitr]") == (
        f"PITR is off on project {ref('nopitr')} (pitr_enabled: False, walg_enabled: True)")
    short = observed(run, "pitr", "backups[short]")
    assert short.startswith("restore points span 10.0 d"), short
    assert "; latest restore point is 20 min old" in short, short
    assert observed(run, "recent", "backups[pitronly]").startswith(
        "no daily backup listed (PITR on); latest PITR restore point (")
    assert observed(run, "disk", "backups[full]").startswith("88% of 8.0 GiB used (7.0 GiB, at ")
    assert observed(run, "disk", "backups[fresh]").startswith("25% of 8.0 GiB used (2.0 GiB, at ")
    [expected] = {r["expected"] for r in run.records if r["target"] == "backups[short]" and r["check"].endswith("pitr")}
    assert expected == (f"PITR enabled on Supabase project {ref('short')}, restore points spanning ≥ 30d "
                        "(pitr_window), the latest ≤ 5m old (pitr_rpo)")


def test_a_refused_token_is_unauthorized_and_never_shown(run: SuiteRun, api: StandIn) -> None:
    where = f"{api.url}/v1/projects/{ref('fresh')}/database/backups"
    for check in ("recent", "failures", "pitr"):
        assert observed(run, check, "backups[badtoken]") == (
            f"GET {where} → HTTP 401 unauthorized (the access token was refused)")
    text = run.output + run.junit + json.dumps(run.records)
    assert "backups[badtoken]" in run.output
    assert "unauthorized" in run.output
    assert WRONG not in text
    assert TOKEN not in text
    assert "c0ffee" not in text
