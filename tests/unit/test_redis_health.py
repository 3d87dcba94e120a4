"""Redis clients, latency, persistence and Sentinel: the inventory's keys and errors, and the judging of what the
servers answered (no server: the answers are what Redis 7.0 sends, as redis-py parses them)."""

from __future__ import annotations

import re

import pytest
import redis

from opsproof.inventory import InventoryError, loads
from opsproof.inventory.redis_checks import RedisClients, RedisLatency, RedisPersistence, Sentinel, host_port
from opsproof.probes import redis_health
from opsproof.probes.sentinel import judge_addresses, judge_quorum, master_url

ENTRY = """environment: t
redis:
  cache:
    url: redis://:pw@cache:6379/0
"""


def entry(extra: str) -> str:
    return ENTRY + "".join(f"    {line}\n" for line in extra.strip().splitlines())


def test_the_keys_load_typed() -> None:
    inv = loads(entry("""
clients: {max_connected: 50, max_blocked: 2}
latency: {max_median_ms: 5, max_ms: 50}
persistence: {appendonly: true, appendfsync: everysec, save: '3600  1 300 100', max_save_age: 2h}
sentinel: {master: mymaster, quorum: 2, sentinels: ['s1:26379', 's2:26379', '[::1]:26380']}"""), "st.yaml")
    cfg = inv.redis["cache"]
    assert cfg.clients == RedisClients(max_connected=50, max_blocked=2)
    assert cfg.latency is not None
    assert cfg.latency.samples == 20
    assert cfg.persistence is not None
    assert cfg.persistence.max_save_age == 7200
    assert cfg.persistence.settings == {"save": "3600 1 300 100", "appendonly": "yes", "appendfsync": "everysec"}
    assert cfg.sentinel is not None
    assert [host_port(s) for s in cfg.sentinel.sentinels][2] == ("::1", 26380)


@pytest.mark.parametrize(("extra", "error"), [
    ("sentinel: {master: m, quorum: 3, sentinels: ['a:26379', 'b:26379']}",
     r"^st\.yaml:5: redis\.cache\.sentinel: quorum 3 but only 2 sentinel\(s\) listed: no failover could ever be "
     r"agreed\. Fix: list every sentinel, or correct the quorum\.$"),
    ("sentinel: {master: m, quorum: 1, sentinels: ['a:26379', 'a:26379']}",
     r"^st\.yaml:5: redis\.cache\.sentinel\.sentinels: a:26379 listed twice\. Fix: list each sentinel once\.$"),
    ("sentinel: {master: m, quorum: 1, sentinels: ['a:26379'], username: probe}",
     r"^st\.yaml:5: redis\.cache\.sentinel: username without a password\. Fix: add password: \$\{SENTINEL_PASSWORD\}, "
     r"or drop username\.$"),
    ("sentinel: {master: m, quorum: 1, sentinels: ['a:99999']}",
     r"^st\.yaml:5: redis\.cache\.sentinel\.sentinels\.0: 'a:99999' is not host:port\. Fix: write e\.g\. "),
    ("persistence: {save: '3600'}",
     r"^st\.yaml:5: redis\.cache\.persistence\.save: save '3600' is not pairs of seconds and changes\. Fix: "),
    ("persistence: {appendfsync: sometimes}",
     r"^st\.yaml:5: redis\.cache\.persistence\.appendfsync: Input should be 'always', 'everysec' or 'no' "),
    ("persistence: {max_save_age: soon}",
     r"^st\.yaml:5: redis\.cache\.persistence\.max_save_age: .*'soon' is not a duration"),
    ("clients: {max_connected: 0}",
     r"^st\.yaml:5: redis\.cache\.clients\.max_connected: Input should be greater than or equal to 1"),
])
def test_a_bad_value_names_file_line_key_and_fix(extra: str, error: str) -> None:
    with pytest.raises(InventoryError) as caught:
        loads(entry(extra), "st.yaml")
    [line] = [ln.strip() for ln in str(caught.value).splitlines() if "redis.cache" in ln]
    assert re.match(error, line), line


def test_clients_over_the_ceiling() -> None:
    cfg = RedisClients(max_connected=50, max_blocked=2)
    out = redis_health.judge_clients(cfg, {"connected_clients": 57, "blocked_clients": 3, "maxclients": 10000},
                                     {"rejected_connections": 0})
    assert (out.ok, out.observed) == (False, "57 connected clients, 3 blocked")
    ok = redis_health.judge_clients(RedisClients(max_connected=50), {"connected_clients": 50}, {})
    assert (ok.ok, ok.observed) == (True, "50 connected clients")
    rejected = redis_health.judge_clients(RedisClients(max_connected=50), {"connected_clients": 5, "maxclients": 5},
                                          {"rejected_connections": 7})
    assert rejected.observed == "5 connected clients (7 connections rejected since start, maxclients 5)"


def test_latency_is_judged_unrounded_on_median_and_slowest() -> None:
    cfg = RedisLatency(samples=5, max_median_ms=1, max_ms=10)
    fast = redis_health.judge_latency(cfg, [0.0001, 0.0002, 0.0001, 0.0003, 0.0099])
    assert (fast.ok, fast.observed) == (True, "PING round trip median 0.20 ms, slowest 9.90 ms over 5 samples")
    just_over = redis_health.judge_latency(cfg, [0.001001] * 5)
    assert just_over.ok is False  # 1.001 ms > 1 ms, although shown as 1.00
    spike = redis_health.judge_latency(cfg, [0.0001] * 4 + [0.0101])
    assert (spike.ok, spike.evidence["max_ms"]) == (False, 10.1)


def test_persistence_settings() -> None:
    cfg = RedisPersistence(appendonly=True, appendfsync="everysec", save="3600 1 300 100")
    same = redis_health.judge_settings(cfg, {"appendonly": "yes", "appendfsync": "everysec", "save": "300 100 3600 1"})
    assert (same.ok, same.observed) == (True, 'save "300 100 3600 1", appendonly yes, appendfsync everysec')
    other = redis_health.judge_settings(cfg, {"appendonly": "no", "appendfsync": "always", "save": ""})
    assert (other.ok, other.observed) == (
        False, 'save "", appendonly no, appendfsync always (differs: save, appendonly, appendfsync)')


def test_config_renamed_is_a_finding_with_its_reason() -> None:
    out = redis_health.config_unavailable(redis.exceptions.ResponseError(
        "unknown command 'CONFIG', with args beginning with: 'GET' 'save' "))
    assert out.ok is False
    assert out.observed.startswith("CONFIG GET is not available to this client (unknown command 'CONFIG', with args "
                                   "beginning with: 'GET' 'save'): the persistence settings cannot be read. Fix: grant "
                                   "+config|get to the check's user, or verify it in the provider's console and remove "
                                   "persistence.save/appendonly/appendfsync")


INFO = {"rdb_last_bgsave_status": "ok", "rdb_last_save_time": 1000, "rdb_saves": 2, "aof_enabled": 1,
        "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok", "rdb_changes_since_last_save": 40}


def test_persistence_status() -> None:
    cfg = RedisPersistence(max_save_age=3600)
    assert redis_health.judge_status(cfg, INFO, 1012).observed == (
        "last RDB save ok 12s ago (2 since start), AOF on, last write ok")
    failed = redis_health.judge_status(cfg, INFO | {"rdb_last_bgsave_status": "err", "aof_last_write_status": "err"},
                                       1012)
    assert (failed.ok, failed.observed) == (False, "last RDB save failed (rdb_last_bgsave_status err); last AOF "
                                                   "write failed (aof_last_write_status err)")
    old = redis_health.judge_status(cfg, INFO, 1000 + 7200)
    assert (old.ok, old.observed) == (False, "newest RDB snapshot is 2h old, 40 changes since")
    aof_off = redis_health.judge_status(RedisPersistence(), INFO | {"aof_enabled": 0, "aof_last_write_status": "err"},
                                        1000.5)
    assert (aof_off.ok, aof_off.observed) == (True, "last RDB save ok 0.5s ago (2 since start), AOF off")
    never = redis_health.judge_status(RedisPersistence(), INFO | {"rdb_saves": 0}, 1000 + 90)
    assert never.observed == "no RDB save since the server started 90s ago, AOF on, last write ok"


SENT = Sentinel(master="mymaster", quorum=2, sentinels=["a:1", "b:2", "c:3"])


def master(quorum: int = 2, others: int = 2) -> dict[str, str]:
    return {"name": "mymaster", "quorum": str(quorum), "num-other-sentinels": str(others), "flags": "master"}


def test_sentinel_quorum() -> None:
    ok = judge_quorum(SENT, {a: master() for a in SENT.sentinels}, dict.fromkeys(SENT.sentinels, "OK 3 usable"), {})
    assert (ok.ok, ok.observed) == (True, "3 of 3 sentinels answer for mymaster, quorum 2 on each, each knowing "
                                          "all of them, ckquorum OK")
    two_down = judge_quorum(SENT, {"a:1": master()}, {"a:1": "OK 3 usable"},
                            {"b:2": "ConnectionError: refused", "c:3": "ConnectionError: refused"})
    assert (two_down.ok, two_down.observed) == (False, (
        "sentinel b:2 unreachable (ConnectionError: refused); sentinel c:3 unreachable (ConnectionError: refused); "
        "1 of 3 sentinels answer for mymaster, fewer than quorum 2: no failover can be agreed"))
    wrong = judge_quorum(SENT, {"a:1": master(quorum=1), "b:2": redis.exceptions.ResponseError(
        "No such master with that name"), "c:3": master()},
        {"a:1": "OK", "c:3": redis.exceptions.ResponseError("NOQUORUM 1 usable Sentinels.")}, {})
    assert wrong.observed == ("sentinel a:1 has quorum 1; sentinel b:2 does not monitor mymaster (No such master "
                              "with that name); sentinel c:3: NOQUORUM 1 usable Sentinels.")
    alone = judge_quorum(SENT, {a: master(others=0) for a in SENT.sentinels}, dict.fromkeys(SENT.sentinels, "OK"), {})
    assert (alone.ok, alone.observed.split("; ")[0]) == (
        False, "sentinel a:1 knows 1 of the 3 sentinels listed (itself included)")


def test_sentinel_addresses() -> None:
    agreed, none = judge_addresses(SENT, {key: ["10.0.0.1", "6379"] for key in ["a:1", "b:2"]}, {"c:3": "refused"})
    assert (agreed, none) == (("10.0.0.1", 6379), None)
    _, split = judge_addresses(SENT, {"a:1": ["10.0.0.1", "6379"], "b:2": ["10.0.0.2", "6379"], "c:3": None}, {})
    assert split is not None
    assert split.observed == (
        "sentinels disagree on mymaster: a:1 says 10.0.0.1:6379, b:2 says 10.0.0.2:6379, c:3 knows no mymaster")
    _, silent = judge_addresses(SENT, {}, {"a:1": "ConnectionError: x"})
    assert silent is not None
    assert silent.observed == (
        "no sentinel names a master for mymaster: sentinel a:1 unreachable (ConnectionError: x)")


def test_the_master_is_reached_with_the_entrys_credentials() -> None:
    assert master_url("redis://:pw@cache:6379/2", "10.0.0.1", 6380) == "redis://:pw@10.0.0.1:6380/2"
    assert master_url("rediss://u:p@cache/0?ssl_cert_reqs=none", "::1", 6380) == (
        "rediss://u:p@[::1]:6380/0?ssl_cert_reqs=none")
    assert master_url("redis://cache:6379", "h", 1) == "redis://h:1"


def test_latency_events() -> None:
    cfg = RedisLatency(max_event_ms=20, events_within=600)
    events = [["command", 9_000, 50, 80], ["fork", 9_990, 5, 30], ["expire-cycle", 1_000, 900, 900]]
    spike = redis_health.judge_events(cfg, events, 10_000, 1)
    # the command spike 1000 s ago is outside the 10 minutes, the fork one under the bound, the old one long gone
    assert (spike.ok, spike.observed) == (True, "no latency event over 20 ms in the last 10m (3 event kind(s) "
                                                "recorded)")
    recent = redis_health.judge_events(cfg, [["command", 9_990, 50, 80]], 10_000.4, 1)
    assert (recent.ok, recent.observed) == (False, "LATENCY LATEST: command 50 ms 10s ago (worst 80 ms)")
    off = redis_health.judge_events(cfg, [], 10_000, 0)
    assert off.ok is False
    assert off.observed.startswith("latency monitor off (latency-monitor-threshold 0): LATENCY LATEST records "
                                   "nothing. Fix: CONFIG SET latency-monitor-threshold 100")
    unknown = redis_health.judge_events(cfg, [], 10_000, None)  # CONFIG denied: the events alone are judged
    assert unknown.ok is True
