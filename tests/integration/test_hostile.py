"""Hung and hostile targets (tests/integration/hostile.py): every check that talks to one ends at its deadline —
the entry's timeout_s for the whole check, whatever the server does — or at its answer-size cap, with a finding
that says what happened; the connection it used is closed (the server sees it), and its record is written.

The bound is asserted as behaviour, not by the clock: run() has returned (in the test's own thread, so nothing is
left reading), the server saw every connection closed before the clients were torn down, no connect thread is
left, and an endless body was read to the cap plus one chunk. How long it took is bench/bench_unreachable.py's.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile import HostileServer
from support import run_suite

from opsproof.inventory import Inventory, loads
from opsproof.probes import ALL, Connections, ProbeSpec, Target, run
from opsproof.result import Result
from opsproof.util.poll import wait_until

pytestmark = pytest.mark.xdist_group("hostile")

TIMEOUT = 2  # timeout_s of every entry: the deadline of each check (2 s: the hostile servers answer on a busy machine)
CAP = 1 << 20
NOTHING = r"^no answer within 2 s \(the server sent nothing\)$"
STALLED = r"^no complete answer within 2 s \(the server sent 49 bytes, then nothing for \d\.\d s\)$"
TRICKLED = r"^no complete answer within 2 s \(the server sent \d+ bytes, then trickled\)$"
TOO_LARGE = r"^answer larger than 1 MiB \(GET /\S* stopped after 1,\d{3},\d{3} bytes\)$"
# the entry's one Redis connection was held, at the deadline, by another of its checks (one in flight per entry)
WAITED = (r"^no answer within 2 s \(waited for the entry's connection, in use by another of its checks\)$"
          r"|, \d\.\d s of it waiting for the entry's connection$")
HUNG = r"^no answer within 2 s \(connected; the server answered no query\)$"  # PostgreSQL, after its startup
HTTP_KINDS = ("http", "prometheus", "alertmanager", "slo")
# behaviour → kind → the finding of each of that kind's checks
EXPECT: dict[str, dict[str, str]] = {
    "silent": {**dict.fromkeys(HTTP_KINDS, NOTHING), "redis": f"{NOTHING}|{WAITED}",
               "postgres": r"^no connection within 2 s \(connect\)$", "tls": r"^no TLS handshake within 2 s$"},
    "header_then_stall": dict.fromkeys(HTTP_KINDS, STALLED),
    "trickle": dict.fromkeys(HTTP_KINDS, TRICKLED),
    "endless_body": dict.fromkeys(HTTP_KINDS, TOO_LARGE),
    "redis_trickle": {"redis": f"{TRICKLED}|{WAITED}"},
    "pg_hang": {"postgres": f"{HUNG}|{WAITED}"},
    "gzip_bomb": dict.fromkeys(HTTP_KINDS, TOO_LARGE),  # the cap counts decoded bytes
}


def entries(ports: dict[str, int]) -> dict[str, object]:
    """One entry per kind, each on its own hostile server (``ports``: kind → port), timeout_s 2, cap 1 MiB."""
    def http(kind: str) -> dict[str, object]:
        return {"url": f"http://127.0.0.1:{ports[kind]}", "timeout_s": TIMEOUT, "max_answer_bytes": CAP}

    make = {
        "http": lambda: {"api": http("http")},
        "prometheus": lambda: {"main": {**http("prometheus"), "jobs_up": ["app"], "rules": ["ServiceDown"]}},
        "alertmanager": lambda: {"main": {**http("alertmanager"), "receivers": ["oncall"]}},
        "slo": lambda: {"api": {"prometheus": "main"}},
        "redis": lambda: {"cache": {"url": f"redis://:canary@127.0.0.1:{ports['redis']}/0", "timeout_s": TIMEOUT,
                                    "eviction_policy": "noeviction", "min_hit_rate": 0.5, "queues": {"celery": 10}}},
        "postgres": lambda: {"main": {"dsn": f"postgresql://opsproof:canary@127.0.0.1:{ports['postgres']}/app",
                                      "connect_timeout_s": TIMEOUT, "rls_tables": ["items"], "extensions": ["pg_trgm"],
                                      "count_tables": ["items"]}},
        "tls": lambda: {"api": {"host": "127.0.0.1", "port": ports["tls"], "timeout_s": TIMEOUT}},
    }
    return {"environment": "hostile", **{kind: make[kind]() for kind in ports}}


def inventory(ports: dict[str, int]) -> Inventory:
    return loads(json.dumps(entries(ports)), "hostile.yaml")  # JSON is YAML


def served(behaviour: str) -> list[str]:
    """The kinds with a server of their own (an slo entry is read from its prometheus entry's)."""
    kinds = [kind for kind in EXPECT[behaviour] if kind != "slo"]
    return [*kinds, "prometheus"] if "slo" in EXPECT[behaviour] and "prometheus" not in kinds else kinds


def ports(behaviour: str, servers: dict[str, HostileServer] | None = None) -> dict[str, int]:
    given = {kind: servers[kind].port if servers else 1 for kind in served(behaviour)}
    return {**given, **({"slo": 0} if "slo" in EXPECT[behaviour] else {})}


def checks(behaviour: str) -> list[tuple[ProbeSpec, str, object]]:
    inv = inventory(ports(behaviour))
    return [(spec, name, cfg) for spec in ALL if spec.kind in EXPECT[behaviour]
            for name, cfg in inv.targets(spec.kind).items() if spec.applies(cfg)]


@dataclass
class Ran:
    results: dict[str, Result]
    servers: dict[str, HostileServer]
    closed: dict[str, int]  # per kind: connections the server saw closed while the clients were still open
    accepted: dict[str, int]


@pytest.fixture(scope="module")
def ran() -> Iterator[dict[str, Ran]]:
    """Each behaviour's checks, run once and all at once (each in its own thread, as the plugin's pool does)."""
    class Lazy(dict[str, Ran]):
        def __missing__(self, behaviour: str) -> Ran:
            self[behaviour] = _run(behaviour)
            return self[behaviour]

    done = Lazy()
    yield done
    for r in done.values():
        for server in r.servers.values():
            server.stop()


def _run(behaviour: str) -> Ran:
    servers = {kind: HostileServer(behaviour, interval=0.1) for kind in served(behaviour)}
    inv = inventory(ports(behaviour, servers))
    jobs = [(spec, Target(spec.kind, name, inv.targets(spec.kind)[name])) for spec, name, _cfg in checks(behaviour)]
    with Connections() as conns, ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = dict(zip([f"{s.check} {t.id}" for s, t in jobs],
                           pool.map(lambda job: run(job[0], job[1], conns), jobs), strict=True))
        for server in servers.values():  # before the clients are closed: what the deadline closed, not the teardown
            wait_until(lambda s=server: s.closed == s.accepted, 10, f"{behaviour}: every connection closed")
        wait_until(lambda: not [t for t in threading.enumerate() if t.name == "opsproof-pg-connect"], 10,
                   "psycopg's connect threads ended (on psycopg's own 2 s bound)")
        closed = {kind: s.closed for kind, s in servers.items()}
        accepted = {kind: s.accepted for kind, s in servers.items()}
    return Ran(results, servers, closed, accepted)


CASES = [(behaviour, spec.check, f"{spec.kind}[{name}]") for behaviour in EXPECT for spec, name, _ in checks(behaviour)]


@pytest.mark.parametrize(("behaviour", "check", "target"), CASES, ids=[f"{b}-{c}" for b, c, _ in CASES])
def test_the_check_ends_with_what_the_server_did(ran: dict[str, Ran], behaviour: str, check: str, target: str) -> None:
    result = ran[behaviour].results[f"{check} {target}"]
    kind = target.split("[")[0]
    assert result.ok is False
    assert (result.check, result.target) == (check, target)
    assert re.search(EXPECT[behaviour][kind], result.observed), result.observed
    assert result.explain().startswith(f"{target}: {result.observed}, expected ")


@pytest.mark.parametrize("behaviour", list(EXPECT))
def test_the_server_saw_every_connection_closed(ran: dict[str, Ran], behaviour: str) -> None:
    r = ran[behaviour]
    assert all(r.accepted.values()), r.accepted
    assert r.closed == r.accepted  # closed by the checks' deadlines and caps, while the clients were still open


def test_an_unreachable_postgresql_costs_one_connect_for_all_its_checks(ran: dict[str, Ran]) -> None:
    r = ran["silent"]
    pg = [res for key, res in r.results.items() if key.startswith("postgres.")]
    assert len(pg) >= 6
    assert r.accepted["postgres"] == 1
    assert {res.observed for res in pg} == {"no connection within 2 s (connect)"}


def test_a_hung_postgresql_costs_one_deadline_for_all_its_checks(ran: dict[str, Ran]) -> None:
    """Connected, then no answer: the session's socket is shut at the deadline and the entry is not tried again."""
    r = ran["pg_hang"]
    assert len(r.results) >= 6
    assert r.accepted["postgres"] == 1
    assert any(re.search(HUNG, res.observed) for res in r.results.values()), r.results


def test_an_endless_body_is_read_to_the_cap_and_one_chunk(ran: dict[str, Ran]) -> None:
    for key, result in ran["endless_body"].results.items():
        assert CAP < result.evidence["bytes_read"] <= CAP + 65536, (key, dict(result.evidence))


def test_a_gzip_bomb_is_decoded_to_the_cap_only(ran: dict[str, Ran]) -> None:
    """65 KiB on the wire, 64 MiB decoded: decoding stops one byte past the cap (httpx decodes a chunk whole)."""
    for key, result in ran["gzip_bomb"].results.items():
        assert result.evidence["bytes_read"] == CAP + 1, (key, dict(result.evidence))
        assert result.evidence["encoding"] == "gzip"


def test_each_hostile_target_gets_its_record(tmp_path: Path) -> None:
    """Through the plugin: every check of a hostile inventory has its record, each root check the finding."""
    servers = {"http": HostileServer("trickle", 0.1), "prometheus": HostileServer("header_then_stall"),
               "alertmanager": HostileServer("endless_body"), "redis": HostileServer("redis_trickle", 0.1),
               "postgres": HostileServer("silent")}
    try:
        inv = tmp_path / "hostile.yaml"
        inv.write_text(json.dumps(entries({kind: s.port for kind, s in servers.items()})))
        suite = run_suite(inv, tmp_path, timeout=120)
    finally:
        for server in servers.values():
            server.stop()
    assert suite.code == 1, suite.output
    by_check = {r["check"]: r for r in suite.records}
    expect = {"http.health": TRICKLED, "prometheus.ready": STALLED, "alertmanager.ready": TOO_LARGE,
              "redis.ping": TRICKLED, "postgres.ready": r"^no connection within 2 s \(connect\)$"}
    for check, pattern in expect.items():
        assert re.search(pattern, by_check[check]["observed"]), by_check[check]
    assert {r["target"] for r in suite.records} == {"http[api]", "prometheus[main]", "alertmanager[main]",
                                                    "redis[cache]", "postgres[main]"}


def _run_kind(kind: str, name: str, cfg: object) -> dict[str, Result]:
    """Every check of one entry, all at once (as the plugin's pool runs them)."""
    specs = [spec for spec in ALL if spec.kind == kind and spec.applies(cfg)]
    with Connections() as conns, ThreadPoolExecutor(max_workers=len(specs)) as pool:
        return dict(zip([s.check for s in specs],
                        pool.map(lambda s: run(s, Target(kind, name, cfg), conns), specs), strict=True))  # type: ignore[arg-type]


def test_a_rediss_handshake_that_never_completes_ends_at_the_deadline() -> None:
    """rediss://: the server reads the ClientHello and trickles a TLS record that never ends."""
    with HostileServer("tls_trickle", interval=0.1) as server:
        inv = loads(json.dumps({"environment": "hostile", "redis": {"cache": {
            "url": f"rediss://:canary@127.0.0.1:{server.port}/0", "timeout_s": TIMEOUT, "queues": {"celery": 10}}}}),
            "hostile.yaml")
        results = _run_kind("redis", "cache", inv.targets("redis")["cache"])
        wait_until(lambda: server.closed == server.accepted, 10, "rediss: every connection closed")
    assert server.accepted >= 1
    for check, result in results.items():
        assert result.ok is False, check
        assert re.search(rf"^no TLS handshake within 2 s$|{WAITED}", result.observed), (check, result.observed)
    assert any(r.observed == "no TLS handshake within 2 s" for r in results.values()), results


def test_a_kubernetes_api_that_trickles_its_answer_ends_at_the_deadline(tmp_path: Path) -> None:
    """The API server accepts every LIST and trickles its answer (headers included) one byte at a time: urllib3's
    read timeout never trips; each check ends at its deadline, naming the API server."""
    from test_kubernetes import write_kubeconfig

    with HostileServer("trickle", interval=0.1) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        inv = loads(json.dumps({"environment": "hostile", "kubernetes": {"app": {
            "namespace": "app", "kubeconfig": str(kubeconfig), "timeout_s": TIMEOUT, "deployments": {"api": {}},
            "hpa": {"api": {"min_replicas": 1, "max_replicas": 3}}, "jobs": ["migrate"],
            "logs": {"deployment/api": {}}}}}), "hostile.yaml")
        results = _run_kind("kubernetes", "app", inv.targets("kubernetes")["app"])
        wait_until(lambda: server.closed == server.accepted, 10, "kubernetes: every connection closed")
    assert len(results) >= 4
    assert server.accepted >= 1
    for check, result in results.items():
        assert result.ok is False, check
        assert result.observed == f"API server {server.url}: timed out, no answer within 2 s", (check, result.observed)
        assert result.explain().startswith("kubernetes[app]: API server http://127.0.0.1:"), result.explain()


def test_an_s3_api_that_trickles_its_answer_ends_at_the_deadline() -> None:
    """Object storage that accepts every request and trickles its answer (headers included) one byte at a time:
    botocore's connect and read timeouts each bound one wait and never trip; each check ends at its deadline,
    naming the endpoint and the operation, and the connection is closed."""
    with HostileServer("trickle", interval=0.1) as server:
        inv = loads(json.dumps({"environment": "hostile", "backups": {"offsite": {"s3": {
            "endpoint": server.url, "bucket": "backups-bkt", "access_key": "AKIAEXAMPLE", "secret_key": "canary",
            "timeout_s": TIMEOUT, "max_bytes": "1GiB", "lifecycle": True}}}}), "hostile.yaml")
        results = _run_kind("backups", "offsite", inv.targets("backups")["offsite"])
        wait_until(lambda: server.closed == server.accepted, 10, "s3: every connection closed")
    assert set(results) == {"backups.s3_recent", "backups.s3_quota", "backups.s3_lifecycle"}
    assert server.accepted >= 3
    for check, result in results.items():
        operation = "GetBucketLifecycleConfiguration" if check == "backups.s3_lifecycle" else "ListObjectsV2"
        assert result.ok is False, check
        assert result.observed == (f"no complete answer within 2 s from {server.url} ({operation}; the check's "
                                   "deadline)"), (check, result.observed)
        assert result.explain().startswith(f"backups[offsite]: no complete answer within 2 s from {server.url}")
