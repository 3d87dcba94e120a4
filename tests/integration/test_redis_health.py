"""Redis clients, latency and persistence, broken for real: connections really held open and clients really blocked
(BLPOP), round trips really slowed (a fault proxy in front of the sandbox's Redis), and redis-servers of the test's
own started with another configuration. Each time exactly the check that should fail fails, naming the target,
what it observed and what it expected."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from redis_servers import failing, results, servers
from support import SandboxHelper, run_suite
from test_smoke_sandbox import message

from opsproof.util.poll import wait_until
from opsproof.util.process import free_port

pytestmark = pytest.mark.integration


@contextmanager
def held(helper: SandboxHelper, over: int, blocked: int) -> Iterator[None]:
    """Connections opened until ``connected_clients`` exceeds ``over``, ``blocked`` of them blocked in a BLPOP."""
    opened: list[redis.Connection] = []
    pw = helper.box.meta["passwords"]["redis"]
    try:
        with helper.redis() as c:
            needed = over + 1 - int(c.info("clients")["connected_clients"]) + 1  # + 1: opsproof's own connection
        for i in range(max(needed, blocked)):
            conn = redis.Connection(host="127.0.0.1", port=helper.box.port("redis"), password=pw, socket_timeout=3)
            conn.connect()
            if i < blocked:
                conn.send_command("BLPOP", "opsproof-test:never", 60)  # its answer is never read: it stays blocked
            opened.append(conn)
        with helper.redis() as c:
            wait_until(lambda: int(c.info("clients")["blocked_clients"]) >= blocked, 5, f"{blocked} clients blocked")
        yield
    finally:
        for conn in opened:
            conn.disconnect()


@contextmanager
def slow_proxy(upstream: int, latency_ms: int) -> Iterator[int]:
    """The sandbox's fault proxy, a process of this test's own, adding ``latency_ms`` to every answer."""
    listen, control = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "opsproof.sandbox.faultproxy", "--listen", str(listen),
                             "--upstream", f"127.0.0.1:{upstream}", "--control", str(control)])
    try:
        url = f"http://127.0.0.1:{control}"
        wait_until(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, 10, "the fault proxy answering")
        httpx.put(f"{url}/fault", json={"mode": "latency", "latency_ms": latency_ms}, timeout=3).raise_for_status()
        yield listen
    finally:
        proc.kill()
        proc.wait(10)


def test_clients_held_and_round_trips_slowed(healthy: SandboxHelper, tmp_path: Path) -> None:
    """The sandbox allows 100 connected clients, 5 blocked and a median PING of 20 ms: 6 blocked clients among more
    than 100, and 30 ms added to every answer, fail exactly redis.clients and redis.latency."""
    pw = healthy.box.meta["passwords"]["redis"]
    with slow_proxy(healthy.box.port("redis"), 30) as port, held(healthy, 100, 6):
        inventory = healthy.derive(tmp_path, {"redis.cache.url": f"redis://:{pw}@127.0.0.1:{port}/0",
                                              "redis.cache.timeout_s": 10})  # room for every check's 30 ms trips
        run = run_suite(inventory, tmp_path)
    assert run.failed_checks == {"redis.clients", "redis.latency"}, run.output
    clients = message(run, "redis.clients")
    assert re.match(r"^redis\[cache\]: 10[1-9] connected clients, 6 blocked, "
                    r"expected at most 100 connected clients, at most 5 blocked$", clients), clients
    latency = message(run, "redis.latency")
    assert re.match(r"^redis\[cache\]: PING round trip median (3\d|[4-9]\d|\d{3,})\.\d\d ms, slowest \d+\.\d\d ms "
                    r"over 20 samples, expected PING round trip median ≤ 20 ms$", latency), latency
    assert pw not in run.output


CONFIGS = {
    # the runbook says "AOF enabled, everysec, no RDB snapshots"; this one fsyncs always and snapshots
    "aof": 'appendonly yes\nappendfsync always\nsave "60 1000"\n',
    # a managed Redis: CONFIG renamed away
    "managed": 'save ""\nappendonly no\nrename-command CONFIG ""\n',
    # snapshots into a folder that is gone by the time BGSAVE runs
    "diskless": 'save ""\nappendonly no\n',
}
EXPECT = {"aof": "{appendonly: true, appendfsync: everysec, save: ''}",
          "managed": "{appendonly: false, save: ''}, eviction_policy: noeviction",
          "diskless": "{appendonly: false, save: ''}"}


def test_persistence_settings_and_status(tmp_path: Path) -> None:
    with servers(tmp_path, CONFIGS) as redises:
        with redises["diskless"].client() as c:
            shutil.rmtree(redises["diskless"].conf.parent)  # its dir: the snapshot's temp file cannot be made
            c.bgsave()
            wait_until(lambda: c.info("persistence")["rdb_last_bgsave_status"] == "err", 10, "BGSAVE failing")
        inventory = "environment: t\nredis:\n" + "".join(
            f"  {name}: {{url: 'redis://127.0.0.1:{s.port}/0', persistence: {EXPECT[name]}}}\n"
            for name, s in redises.items())
        found = results(inventory)
    assert failing(found["aof"]) == {"redis.persistence": (
        'redis[aof]: save "60 1000", appendonly yes, appendfsync always (differs: save, appendfsync), '
        'expected save "", appendonly yes, appendfsync everysec')}
    managed = failing(found["managed"])
    assert set(managed) == {"redis.persistence", "redis.eviction_policy"}  # both read CONFIG; nothing else does
    assert managed["redis.persistence"].startswith(
        "redis[managed]: CONFIG GET is not available to this client (unknown command 'CONFIG', with args beginning "
        "with: 'GET' 'save'): the persistence settings cannot be read. Fix: ")
    assert managed["redis.persistence"].endswith('expected save "", appendonly no')
    assert managed["redis.eviction_policy"] == (
        "redis[managed]: CONFIG GET is not available to this client (unknown command 'CONFIG', with args beginning "
        "with: 'GET' 'maxmemory-policy'): maxmemory-policy cannot be read. Fix: grant +config|get to the check's "
        "user, or verify it in the provider's console and remove eviction_policy, expected maxmemory-policy "
        "noeviction")
    assert found["managed"]["redis.persistence_status"].ok, found["managed"]["redis.persistence_status"]
    assert failing(found["diskless"]) == {"redis.persistence_status": (
        "redis[diskless]: last RDB save failed (rdb_last_bgsave_status err), "
        "expected last RDB save and AOF write succeeded")}


def test_latency_events_recorded_by_the_server(tmp_path: Path) -> None:
    """A command that really took 50 ms (DEBUG SLEEP, on a Redis of the test's own whose monitor records spikes
    from 1 ms) fails redis.latency on the event; a server whose monitor is off fails it on that. PING itself, on
    loopback, stays well within its bound on both."""
    configs = {"spiky": "latency-monitor-threshold 1\nenable-debug-command local\n", "unmonitored": ""}
    with servers(tmp_path, configs) as redises:
        with redises["spiky"].client() as c:
            c.execute_command("DEBUG", "SLEEP", "0.05")
        found = results("environment: t\nredis:\n" + "".join(
            f"  {name}: {{url: 'redis://127.0.0.1:{s.port}/0', latency: {{max_median_ms: 20, max_event_ms: 20}}}}\n"
            for name, s in redises.items()))
    [(check, spiky)] = failing(found["spiky"]).items()
    assert check == "redis.latency"
    assert re.match(r"^redis\[spiky\]: PING round trip median \d\.\d\d ms, slowest \d+\.\d\d ms over 20 samples; "
                    r"LATENCY LATEST: command 5\d ms [1-9]s ago \(worst 5\d ms\), "
                    r"expected PING round trip median ≤ 20 ms; no latency event over 20 ms in the last 1h$",
                    spiky), spiky
    [(check, off)] = failing(found["unmonitored"]).items()
    assert check == "redis.latency"
    assert "; latency monitor off (latency-monitor-threshold 0): LATENCY LATEST records nothing. Fix: " in off


# the ACL user of the README ("Rights"): every Redis check of a server runs under it
ACL = "-@all +ping +info +time +config|get +latency|latest +llen +client|setname %R~celery"


def test_the_documented_acl_user_runs_every_check(tmp_path: Path) -> None:
    config = f'save ""\nlatency-monitor-threshold 100\nuser default on nopass ~* &* +@all\nuser opsproof on >pw {ACL}\n'
    with servers(tmp_path, {"acl": config}) as redises:
        entry = (f"{{url: 'redis://opsproof:pw@127.0.0.1:{redises['acl'].port}/0', eviction_policy: noeviction, "
                 "min_hit_rate: 0.5, min_lookups: 0, queues: {celery: 5}, clients: {max_connected: 50}, "
                 "latency: {max_median_ms: 20, max_event_ms: 100}, persistence: {save: '', appendonly: false}}")
        with redises["acl"].client() as c:
            c.set("k", "v")
            c.get("k")  # a lookup: the hit rate has data
        found = results(f"environment: t\nredis:\n  acl: {entry}\n")["acl"]
    assert len(found) == 9  # every Redis check but the Sentinel ones
    assert {check: r.observed for check, r in found.items() if not r.ok} == {
        "redis.memory": "maxmemory is 0 (no limit), used_memory "
                        f"{found['redis.memory'].evidence['used_memory_human']}: no ratio to judge"}
