"""Sandbox profiles (issue 14, item 4): an example inventory, unchanged, runs for real on its profile.

One sandbox with the profiles signx, sophia and vibethink combined (`--profile signx,sophia,vibethink`: one start
for all), its own (the faults would break the session's shared one). Each example's post-deploy gate (which runs the
smoke suite too), with nothing but profile.env's variables: every configured check passes. Then real faults, and
exactly the checks that read them fail, each naming target, observed and expected: Sophia's Redis loses its
eviction policy (l. 262: allkeys-lru); VibeThink's companies table loses row-level security (l. 154-155); SIGN X's
alembic_version holds a second revision (a migration branch left unmerged, l. 845-849) and its API is stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from support import REPO, SuiteRun, run_suite

from opsproof.sandbox import profile_setup
from opsproof.sandbox.control import Sandbox
from opsproof.sandbox.profiles import Profile, load

pytestmark = pytest.mark.integration
EXAMPLE = REPO / "examples" / "signx-apex-production.yaml"
SOPHIA = REPO / "examples" / "sophia-ai-production.yaml"
VIBETHINK = REPO / "examples" / "vibethink-production.yaml"
PROFILES = "signx,sophia,vibethink"  # one sandbox, one start, for all three
GATE = "checks/post_deploy"
# the celery apex-worker's depth is sampled over the example's 30 s window (l. 815-816): the healthy run proves it;
# the fault run leaves it out (neither fault touches Redis or the worker) — 30 s of a ≈ 45 s test
DEPTH = "checks/post_deploy/test_02_smoke.py::test_celery_queue_depth"


@pytest.fixture(scope="module")
def profile_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, str], float]]:
    box = Sandbox(Path("/tmp") / f"opsproof-profile-{tmp_path_factory.getbasetemp().name}", ephemeral=True,
                  profile=PROFILES)
    started = time.monotonic()
    try:
        box.up()
        took = time.monotonic() - started
        yield box, dict(profile_setup.env(box, load(PROFILES))), took
    finally:
        box.down()


def green(example: Path, out: Path, env: dict[str, str], checks: int) -> tuple[set[str], str]:
    """The example's gate on the healthy profile: every configured check once, and all of them pass but those its
    profile says it cannot emulate (``not_emulated``), which must fail; ``check@target`` of each, and the output."""
    profile = profile_of(example)
    run = run_suite(example, out, suite=GATE, env=env)
    ran = {f"{r['check']}@{r['target']}" for r in run.records}
    assert len(ran) == len(run.records) == checks, sorted(ran)
    not_passed = {f"{r['check']}@{r['target']}" for r in run.records if r["verdict"] != "pass"}
    assert not_passed == set(profile.not_emulated), run.output
    assert run.code == (1 if profile.not_emulated else 0), run.output
    return ran, run.output


def profile_of(example: Path) -> Profile:
    [profile] = [p for p in map(load, PROFILES.split(",")) if REPO / p.example == example]
    return profile


def findings(run: SuiteRun, example: Path) -> dict[str, str]:
    """Each failed check's finding, but those the example's profile cannot emulate (they fail healthy too)."""
    gaps = profile_of(example).not_emulated
    return {f"{r['check']}@{r['target']}": f"{r['target']}: {r['observed']}, expected {r['expected']}"
            for r in run.records if r["outcome"] == "failed" and f"{r['check']}@{r['target']}" not in gaps}


def test_sophia_example_green_on_its_profile_and_a_real_fault_fails_exactly_its_check(
        profile_box: tuple[Sandbox, dict[str, str], float], tmp_path: Path) -> None:
    box, env, _ = profile_box
    ran, _ = green(SOPHIA, tmp_path / "healthy", env, 33)
    assert {f"http.health@http[{s}]" for s in ("mcp-research", "mcp-business", "sophia-dashboard", "grafana")} | {
        "prometheus.targets@prometheus[main]", "kubernetes.hpa_metrics@kubernetes[sophia]",
        "redis.eviction_policy@redis[cache]", "tls.expiry@tls[www]"} <= ran, sorted(ran)

    cache = redis.Redis(port=box.port("redis"), password=box.meta["passwords"]["redis"], socket_timeout=3)
    cache.config_set("maxmemory-policy", "noeviction")
    try:
        broken = run_suite(SOPHIA, tmp_path / "broken", suite=GATE, env=env)
    finally:
        cache.config_set("maxmemory-policy", "allkeys-lru")
        cache.close()
    assert broken.code == 1, broken.output
    assert findings(broken, SOPHIA) == {
        "redis.eviction_policy@redis[cache]": "redis[cache]: maxmemory-policy noeviction, expected maxmemory-policy "
                                              "allkeys-lru"}
    assert len(broken.records) == 33, broken.output


def test_vibethink_example_green_on_its_profile_and_a_real_fault_fails_exactly_its_check(
        profile_box: tuple[Sandbox, dict[str, str], float], tmp_path: Path) -> None:
    box, env, _ = profile_box
    ran, _ = green(VIBETHINK, tmp_path / "healthy", env, 22)
    assert {"http.health@http[app-db]", "http.health@http[openai]", "postgres.rls@postgres[supabase]",
            "postgres.extensions@postgres[supabase]", "kubernetes.blue_green@kubernetes[production]",
            "tls.hostname@tls[app]"} <= ran, sorted(ran)

    with psycopg.connect(box.dsn(db="postgres"), autocommit=True) as conn:
        conn.execute("ALTER TABLE companies DISABLE ROW LEVEL SECURITY")
        try:
            broken = run_suite(VIBETHINK, tmp_path / "broken", suite=GATE, env=env)
        finally:
            conn.execute("ALTER TABLE companies ENABLE ROW LEVEL SECURITY")
    assert broken.code == 1, broken.output
    assert findings(broken, VIBETHINK) == {
        "postgres.rls@postgres[supabase]": "postgres[supabase]: companies: RLS disabled, expected row-level security "
                                           "enabled on companies"}
    assert len(broken.records) == 22, broken.output


def test_signx_example_green_on_its_profile_and_a_real_fault_fails_exactly_its_checks(
        profile_box: tuple[Sandbox, dict[str, str], float], tmp_path: Path) -> None:
    box, env, took = profile_box
    print(f"profiles {PROFILES} up in {took:.1f} s")
    assert (box.dir / "profile.env").stat().st_mode & 0o077 == 0  # it holds the sandbox's passwords

    ran, output = green(EXAMPLE, tmp_path / "healthy", env, 32)
    assert {"http.health@http[api]", "http.ready@http[api]", "http.health@http[api-metrics]", "tls.expiry@tls[api]",
            "postgres.ready@postgres[main]", "postgres.query@postgres[main] query alembic_current",
            "redis.queues@redis[main]", "celery.ping@redis[main] celery apex-worker",
            "celery.queues@redis[main] celery apex-worker", "celery.depth@redis[main] celery apex-worker",
            "alertmanager.receivers@alertmanager[main]", "kubernetes.rollout@kubernetes[apex]",
            "kubernetes.scaled_objects@kubernetes[apex]", "kubernetes.cronjobs@kubernetes[apex]",
            "kubernetes.load_balancers@kubernetes[apex]"} <= ran, sorted(ran)

    with psycopg.connect(box.dsn(db="apex"), autocommit=True) as conn:  # a second head: a branch left unmerged
        conn.execute("INSERT INTO alembic_version VALUES ('ffe0a1b2c3d4')")
    box.stop_service("app")  # the API (and its /metrics, and its TLS port) stops answering
    try:
        broken = run_suite(EXAMPLE, tmp_path / "broken", "--deselect", DEPTH, suite=GATE, env=env)
    finally:  # mended, whatever test runs next on this sandbox
        box.start_service("app")
        with psycopg.connect(box.dsn(db="apex"), autocommit=True) as conn:
            conn.execute("DELETE FROM alembic_version WHERE version_num = 'ffe0a1b2c3d4'")
    assert broken.code == 1, broken.output
    gaps = profile_of(EXAMPLE).not_emulated
    verdicts = {f"{r['check']}@{r['target']}": r["verdict"] for r in broken.records
                if r["verdict"] != "pass" and f"{r['check']}@{r['target']}" not in gaps}
    # an unreachable target is one root cause: its first failed check; its other checks are blocked by it
    assert verdicts == {"postgres.query@postgres[main] query alembic_current": "fail",
                        "http.health@http[api]": "fail", "http.ready@http[api]": "blocked",
                        "http.latency@http[api]": "blocked", "http.health@http[api-metrics]": "fail",
                        "http.latency@http[api-metrics]": "blocked", "tls.hostname@tls[api]": "fail",
                        "tls.expiry@tls[api]": "blocked"}, verdicts
    assert len(broken.records) == 31, broken.output  # the rest ran, and passed
    got = findings(broken, EXAMPLE)
    assert got == {
        "postgres.query@postgres[main] query alembic_current":
            "postgres[main] query alembic_current: 2 rows (first: c5697c093fa1), expected rows == 1",
        "http.health@http[api]": "http[api]: unreachable (ConnectError: [Errno 111] Connection refused), "
                                 "expected HTTP 200",
        "http.health@http[api-metrics]": "http[api-metrics]: unreachable (ConnectError: [Errno 111] Connection "
                                         "refused), expected HTTP 200",
        "tls.hostname@tls[api]": "tls[api]: unreachable (ConnectionRefusedError: [Errno 111] Connection refused), "
                                 "expected a trusted chain valid for 127.0.0.1"}, got
    for secret in (box.meta["passwords"]["opsproof_ro"], box.meta["passwords"]["redis"]):
        assert secret not in output + broken.output
