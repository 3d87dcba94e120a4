"""The smoke suite against a real sandbox: it passes when healthy, and each fault made for real fails exactly
the checks that should fail, with a message naming the target, what was observed and what was expected."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from support import SandboxHelper, run_suite, traffic

from opsproof.sandbox import configs
from opsproof.sandbox.process import wait_for

pytestmark = pytest.mark.integration

ALL_CHECKS = {
    "http.health", "http.ready", "http.latency", "tls.expiry", "tls.hostname", "postgres.ready",
    "postgres.connections", "postgres.long_queries", "postgres.cache_hit", "postgres.rls", "postgres.extensions",
    "postgres.replica_lag", "redis.ping", "redis.memory", "redis.eviction_policy", "redis.hit_rate",
    "redis.queues", "redis.clients", "redis.latency", "redis.persistence", "redis.persistence_status",
    "prometheus.ready", "prometheus.targets", "prometheus.rules", "prometheus.alerts",
    "alertmanager.ready", "alertmanager.receivers", "prometheus.query", "postgres.query", "prometheus.rule_content",
}
REDIS_CHECKS = {"redis.ping", "redis.memory", "redis.eviction_policy", "redis.hit_rate", "redis.queues",
                "redis.clients", "redis.latency", "redis.persistence", "redis.persistence_status"}


def message(run: Any, check: str) -> str:
    """The failure text pytest printed for a check (what a CI log shows)."""
    record = run.record(check)
    return f"{record['target']}: {record['observed']}, expected {record['expected']}"


def test_healthy_sandbox_passes_every_check(healthy: SandboxHelper, tmp_path: Path) -> None:
    traffic(healthy.box.url("app"), 2)  # cache lookups to judge, whatever earlier tests did to Redis's stats
    run = run_suite(healthy.inventory, tmp_path)
    assert run.code == 0, run.output
    checks = {r["check"] for r in run.records}
    assert checks == ALL_CHECKS, f"every check kind runs against the sandbox: {ALL_CHECKS - checks} missing"
    assert all(r["outcome"] in ("passed", "skipped") for r in run.records)
    # the sandbox warms its cache, so even the hit rate has data to judge
    assert {r["check"] for r in run.records if r["outcome"] == "passed"} == ALL_CHECKS


def test_no_verdict_is_a_skip_with_its_reason(healthy: SandboxHelper, tmp_path: Path) -> None:
    """Too little data to judge is never a pass: the check is skipped, and says why."""
    inventory = healthy.derive(tmp_path, {"redis.cache.min_lookups": 10**9})
    run = run_suite(inventory, tmp_path, "-rs")
    assert run.code == 0, run.output
    rec = run.record("redis.hit_rate")
    assert rec["outcome"] == "skipped"
    assert rec["verdict"] == "no-data"
    assert "redis[cache]: redis.hit_rate: no verdict — only " in run.output
    assert "keyspace lookups since restart (need 1000000000)" in run.output
    assert "<skipped" in run.junit


def test_redis_stopped(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.box.stop_service("redis")
    run = run_suite(healthy.inventory, tmp_path)
    assert run.code == 1
    # the app keeps serving from PostgreSQL and reports itself degraded: its health check fails on the body
    # one root cause: redis.ping fails, the other Redis checks are reported as blocked by it
    assert run.failed_checks == {"redis.ping", "http.health"}, run.output
    assert run.blocked == dict.fromkeys(REDIS_CHECKS - {"redis.ping"}, "redis[cache]")
    assert "redis[cache]: unreachable (ConnectionError" in message(run, "redis.ping")
    assert message(run, "http.health") == (
        "http[app]: GET /health → status='degraded', expected HTTP 200 with status='ok'")
    assert "redis[cache]: unreachable" in run.output
    assert "expected PONG" in run.output


def test_postgres_stopped_fires_a_critical_alert(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.box.stop_service("postgres")
    healthy.wait_firing("PostgresDown")
    run = run_suite(healthy.inventory, tmp_path)
    pg = {"postgres.ready", "postgres.connections", "postgres.long_queries", "postgres.cache_hit", "postgres.rls",
          "postgres.extensions", "postgres.query"}  # the named queries too: blocked as their entry is
    assert run.failed_checks == {"postgres.ready", "prometheus.alerts"}, run.output
    # the app depends on PostgreSQL (depends_on in the sandbox inventory): its failures are that outage
    assert run.blocked == dict.fromkeys(pg - {"postgres.ready"} | {"http.health", "http.ready"}, "postgres[main]")
    assert message(run, "postgres.ready").startswith("postgres[main]: unreachable (OperationalError: connection")
    assert "PostgresDown (critical" in message(run, "prometheus.alerts")
    assert message(run, "prometheus.alerts").endswith("expected no alert firing at severity ≥ critical")


def test_app_stopped(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.box.stop_service("app")
    healthy.wait_firing("ServiceDown")
    run = run_suite(healthy.inventory, tmp_path)
    assert run.failed_checks == {"http.health", "tls.hostname", "prometheus.targets", "prometheus.alerts"}, run.output
    assert run.blocked == {"http.ready": "http[app]", "http.latency": "http[app]", "tls.expiry": "tls[app]"}
    assert "http[app]: unreachable (ConnectError" in message(run, "http.health")
    assert "job app target 127.0.0.1:" in message(run, "prometheus.targets")
    assert "ServiceDown (critical" in message(run, "prometheus.alerts")


def test_redis_filled_past_its_memory_ceiling(healthy: SandboxHelper, tmp_path: Path) -> None:
    r = healthy.redis()
    try:
        chunk = "x" * 100_000
        i = 0
        while True:
            info = r.info("memory")
            if int(info["used_memory"]) / int(info["maxmemory"]) > 0.95:
                break
            with r.pipeline(transaction=False) as pipe:
                for _ in range(20):
                    pipe.set(f"fill:{i}", chunk)
                    i += 1
                pipe.execute()
        run = run_suite(healthy.inventory, tmp_path)
        assert run.failed_checks == {"redis.memory"}, run.output
        assert re.match(r"^redis\[cache\]: used_memory is (9\d|100)% of maxmemory \(\d+ of 33554432 bytes\), "
                        r"expected ≤ 90%$", message(run, "redis.memory"))
    finally:
        for key in r.scan_iter("fill:*", count=1000):
            r.unlink(key)
        r.close()


@contextmanager
def held_connections(helper: SandboxHelper, ratio: float) -> Iterator[None]:
    conns: list[psycopg.Connection[Any]] = []
    try:
        with helper.superuser() as c:
            [(used, limit)] = c.execute("SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                                        " 'client backend'), current_setting('max_connections')::int").fetchall()
        conns = [helper.superuser() for _ in range(int(limit * ratio) - used + 1)]
        yield
    finally:
        for c in conns:
            c.close()


def test_connections_held_past_the_ratio(healthy: SandboxHelper, tmp_path: Path) -> None:
    with held_connections(healthy, 0.85):
        run = run_suite(healthy.inventory, tmp_path)
    assert run.failed_checks == {"postgres.connections"}, run.output
    text = message(run, "postgres.connections")
    assert re.match(r"^postgres\[main\]: 3\d of max_connections 40 in use \((8[1-9]|9\d)%\)", text), text
    assert text.endswith("expected ≤ 80%")


def test_long_running_query(healthy: SandboxHelper, tmp_path: Path) -> None:
    inventory = healthy.derive(tmp_path, {"postgres.main.max_query_s": 1})
    conn = healthy.superuser()
    pid = conn.info.backend_pid
    sleeper = threading.Thread(target=lambda: _swallow(conn.execute, "SELECT pg_sleep(60)"), daemon=True)
    sleeper.start()
    try:
        with healthy.superuser() as c:
            wait_for(lambda: c.execute("SELECT now() - query_start > interval '1.5 s' FROM pg_stat_activity"
                                       " WHERE pid = %s", (pid,)).fetchone() == (True,), 10, "query not running")
        run = run_suite(inventory, tmp_path)
    finally:
        with healthy.superuser() as c:
            c.execute("SELECT pg_cancel_backend(%s)", (pid,))
        sleeper.join(10)
        conn.close()
    assert run.failed_checks == {"postgres.long_queries"}, run.output
    text = message(run, "postgres.long_queries")
    assert text.startswith(f"postgres[main]: 1 query(ies) running too long; longest pid {pid} (postgres) for ")
    assert text.endswith("'SELECT pg_sleep(60)', expected no query running longer than 1 s")


def _swallow(fn: Any, *args: Any) -> None:
    with contextlib.suppress(psycopg.Error):  # cancelled by the test, as intended
        fn(*args)


def test_table_without_row_level_security(healthy: SandboxHelper, tmp_path: Path) -> None:
    with healthy.superuser() as c:
        c.execute("ALTER TABLE items DISABLE ROW LEVEL SECURITY")
    try:
        run = run_suite(healthy.inventory, tmp_path)
    finally:
        with healthy.superuser() as c:
            c.execute("ALTER TABLE items ENABLE ROW LEVEL SECURITY")
    assert run.failed_checks == {"postgres.rls"}, run.output
    assert message(run, "postgres.rls") == (
        "postgres[main]: public.items: RLS disabled,"
        " expected row-level security enabled on public.tenants, public.items")


def test_missing_extension_and_cache_floor(healthy: SandboxHelper, tmp_path: Path) -> None:
    """`vector` (pgvector) is not in Debian 12: a real missing extension. The cache floor of 100% fails on the
    reads the server really did since start."""
    inventory = healthy.derive(tmp_path, {"postgres.main.extensions": ["pg_trgm", "vector"],
                                          "postgres.main.min_cache_hit_ratio": 1.0})
    run = run_suite(inventory, tmp_path)
    assert run.failed_checks == {"postgres.extensions", "postgres.cache_hit"}, run.output
    assert message(run, "postgres.extensions") == "postgres[main]: missing: vector, expected installed: pg_trgm, vector"
    assert message(run, "postgres.cache_hit").endswith("reads), expected ≥ 100%")


def replayed_a_commit(primary: psycopg.Connection[Any], replica: psycopg.Connection[Any], line: str) -> None:
    """A fresh replica has replayed no commit yet (no replay timestamp, so no lag to see): give it one."""
    primary.execute("INSERT INTO audit_log (line) VALUES (%s)", (line,))
    wait_for(lambda: replica.execute("SELECT pg_last_xact_replay_timestamp() IS NOT NULL").fetchone() == (True,),
             15, "the replica replaying a first commit")


def test_replica_lagging(healthy: SandboxHelper, tmp_path: Path) -> None:
    inventory = healthy.derive(tmp_path, {"postgres.main.replicas.replica.max_lag_s": 1})
    with healthy.superuser("replica") as replica, healthy.superuser() as primary:
        replayed_a_commit(primary, replica, "replica lag drill")
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            primary.execute("INSERT INTO audit_log (line) VALUES ('replica lag drill')")
            wait_for(lambda: replica.execute(
                "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
                " AND now() - pg_last_xact_replay_timestamp() > interval '1.5 s'").fetchone() == (True,),
                15, "replica not lagging")
            run = run_suite(inventory, tmp_path)
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
            primary.execute("DELETE FROM audit_log WHERE line = 'replica lag drill'")
    assert run.failed_checks == {"postgres.replica_lag"}, run.output
    text = message(run, "postgres.replica_lag")
    assert text.startswith("postgres[main]: replica replica lags ")
    assert text.endswith("(ceiling 1 s), replay paused, expected each replica within its lag ceiling")


def test_wal_arriving_after_an_idle_spell_is_not_lag(healthy: SandboxHelper, tmp_path: Path) -> None:
    """The primary was idle longer than the ceiling, then commits: for a moment the replica has received WAL it has
    not replayed, and now() − last replayed commit is the whole idle spell. A replica that replays it at once
    (here 0.4 s of apply delay) is not lagging; CI once saw this read as "lags 150.6 s"."""
    from opsproof.inventory import load
    from opsproof.probes import Connections, Target
    from opsproof.probes.postgres import replica_lag

    inventory = load(healthy.derive(tmp_path, {"postgres.main.replicas.replica.max_lag_s": 2}))
    with healthy.superuser("replica") as replica, healthy.superuser() as primary:
        replica.execute("ALTER SYSTEM SET recovery_min_apply_delay = '400ms'")
        replica.execute("SELECT pg_reload_conf()")
        conns = Connections()
        try:
            replayed_a_commit(primary, replica, "after an idle spell")
            wait_for(lambda: replica.execute("SELECT now() - pg_last_xact_replay_timestamp() > interval '2.5 s'")
                     .fetchone() == (True,), 30, "an idle spell on the primary")
            primary.execute("INSERT INTO audit_log (line) VALUES ('after an idle spell')")
            wait_for(lambda: replica.execute("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()")
                     .fetchone() == (True,), 2, "the commit received, not yet replayed")
            result = replica_lag(Target("postgres", "main", inventory.postgres["main"]), conns)
        finally:
            conns.close()
            replica.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
            replica.execute("SELECT pg_reload_conf()")
            primary.execute("DELETE FROM audit_log WHERE line = 'after an idle spell'")
    assert result.ok, result.explain()
    assert result.observed.startswith("replica lag "), result.evidence  # caught up within its ceiling: no lag


def test_redis_policy_queue_and_hit_rate(healthy: SandboxHelper, tmp_path: Path) -> None:
    r = healthy.redis()
    try:
        r.config_set("maxmemory-policy", "noeviction")
        r.rpush("celery", *[f"task-{i}" for i in range(150)])
        stats = r.info("stats")
        needed = int(stats["keyspace_hits"]) - int(stats["keyspace_misses"]) + 500
        with r.pipeline(transaction=False) as pipe:  # real misses push the hit rate under its floor
            for i in range(needed):
                pipe.get(f"missing:{i}")
            pipe.execute()
        run = run_suite(healthy.inventory, tmp_path)
    finally:
        r.config_set("maxmemory-policy", "allkeys-lru")
        r.delete("celery")
        r.config_resetstat()
        r.close()
    assert run.failed_checks == {"redis.eviction_policy", "redis.queues", "redis.hit_rate"}, run.output
    assert message(run, "redis.eviction_policy") == (
        "redis[cache]: maxmemory-policy noeviction, expected maxmemory-policy allkeys-lru")
    assert message(run, "redis.queues") == "redis[cache]: celery has 150 (ceiling 100), expected celery ≤ 100"
    assert message(run, "redis.hit_rate").startswith("redis[cache]: keyspace hit rate ")
    assert message(run, "redis.hit_rate").endswith("misses), expected ≥ 50%")


def test_prometheus_target_down(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.box.stop_service("redis_exporter")
    wait_for(lambda: healthy.target_health("redis") == "down", 15, "Prometheus did not see the exporter down")
    run = run_suite(healthy.inventory, tmp_path)
    assert run.failed_checks == {"prometheus.targets"}, run.output
    assert "prometheus[main]: job redis target 127.0.0.1:" in message(run, "prometheus.targets")
    assert " is down (" in message(run, "prometheus.targets")


def test_alert_rule_missing(healthy: SandboxHelper, tmp_path: Path) -> None:
    rules = healthy.box.dir / "prometheus" / "rules.yml"
    original = rules.read_text()

    def reload(text: str, expect_present: bool) -> None:
        rules.write_text(text)
        httpx.post(healthy.box.url("prometheus") + "/-/reload", timeout=5).raise_for_status()
        wait_for(lambda: ("RedisDown" in str(healthy.prometheus("/api/v1/rules"))) == expect_present, 10,
                 "rules not reloaded")

    reload(configs.rules_yaml([r for r in configs.RULES if r["alert"] != "RedisDown"]), expect_present=False)
    try:
        run = run_suite(healthy.inventory, tmp_path)
    finally:
        reload(original, expect_present=True)
    assert run.failed_checks == {"prometheus.rules"}, run.output
    assert message(run, "prometheus.rules").startswith("prometheus[main]: not loaded: RedisDown, expected loaded: ")


def test_alertmanager_stopped_and_receiver_missing(healthy: SandboxHelper, tmp_path: Path) -> None:
    inventory = healthy.derive(tmp_path, {"alertmanager.main.receivers": ["sandbox-webhook", "pagerduty-oncall"]})
    run = run_suite(inventory, tmp_path / "receiver")
    assert run.failed_checks == {"alertmanager.receivers"}, run.output
    assert message(run, "alertmanager.receivers") == (
        "alertmanager[main]: missing receivers: pagerduty-oncall (configured: sandbox-webhook),"
        " expected receivers sandbox-webhook, pagerduty-oncall configured")

    healthy.box.stop_service("alertmanager")
    wait_for(lambda: healthy.target_health("alertmanager") == "down", 15, "Prometheus did not see Alertmanager down")
    run = run_suite(healthy.inventory, tmp_path / "stopped")
    assert run.failed_checks == {"alertmanager.ready", "prometheus.targets"}, run.output
    assert run.blocked == {"alertmanager.receivers": "alertmanager[main]"}
    assert message(run, "alertmanager.ready").startswith("alertmanager[main]: unreachable (ConnectError")


def test_prometheus_stopped(healthy: SandboxHelper, tmp_path: Path) -> None:
    healthy.box.stop_service("prometheus")
    try:
        run = run_suite(healthy.inventory, tmp_path)
    finally:
        healthy.box.start_service("prometheus")
    assert run.failed_checks == {"prometheus.ready"}, run.output
    assert run.blocked == dict.fromkeys({"prometheus.targets", "prometheus.rules", "prometheus.alerts",
                                         "prometheus.query", "prometheus.rule_content"},
                                        "prometheus[main]")  # its named queries and rules too
    assert message(run, "prometheus.ready").startswith("prometheus[main]: unreachable (ConnectError")


def test_secrets_never_appear_in_any_output(healthy: SandboxHelper, tmp_path: Path) -> None:
    """With PostgreSQL and Redis down, the DSN and URL are all over the errors a naive tool would print."""
    healthy.box.stop_service("redis")
    healthy.box.stop_service("postgres")
    run = run_suite(healthy.inventory, tmp_path, "-vv", "--tb=long")
    assert run.code == 1
    record_text = (tmp_path / "results.jsonl").read_text()
    for secret in healthy.box.meta["passwords"].values():
        assert secret not in run.output
        assert secret not in run.junit
        assert secret not in record_text


def test_no_lookups_at_all_is_no_data_even_with_min_lookups_0(healthy: SandboxHelper, tmp_path: Path) -> None:
    """With ``min_lookups: 0`` and no lookup since the stats were reset, the hit rate was 0/0: the check said the
    target was unreachable (ZeroDivisionError). Nothing to judge is no data."""
    from opsproof.inventory import load
    from opsproof.probes import Connections, Target
    from opsproof.probes import redis as redis_probes

    inventory = load(healthy.derive(tmp_path, {"redis.cache.min_lookups": 0}))
    client = healthy.redis()
    try:
        client.config_resetstat()
        with Connections() as conns:
            result = redis_probes.hit_rate(Target("redis", "cache", inventory.redis["cache"]), conns)
    finally:
        client.close()
    assert (result.ok, result.observed) == (None, "no keyspace lookup since restart: no hit rate to judge")
