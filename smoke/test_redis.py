"""Redis — the `redis-cli` lines of the runbooks (read commands only)."""

import pytest

from opsproof import verify
from opsproof.probes import redis, redis_health, sentinel
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(redis.ping)
def test_ping(result: Result) -> None:
    """`redis-cli ping` — answers PONG."""
    verify(result)


@pytest.mark.check(redis.memory)
def test_memory_below_ceiling(result: Result) -> None:
    """`redis-cli info memory` — used_memory stays below the ceiling of maxmemory."""
    verify(result)


@pytest.mark.check(redis.eviction_policy)
def test_eviction_policy(result: Result) -> None:
    """`redis-cli config get maxmemory-policy` — the eviction policy the application expects."""
    verify(result)


@pytest.mark.check(redis.hit_rate)
def test_keyspace_hit_rate(result: Result) -> None:
    """`redis-cli info stats` — keyspace_hits / (hits + misses) is above the floor."""
    verify(result)


@pytest.mark.check(redis.queues)
def test_queue_lengths(result: Result) -> None:
    """`redis-cli llen celery` — work queues are not backing up."""
    verify(result)


@pytest.mark.check(redis_health.clients)
def test_connected_clients(result: Result) -> None:
    """`redis-cli info clients` — connected (and blocked) clients below their ceilings."""
    verify(result)


@pytest.mark.check(redis_health.latency)
def test_ping_latency(result: Result) -> None:
    """`redis-cli --latency` — the PING round trip, median (and slowest) within bounds."""
    verify(result)


@pytest.mark.check(redis_health.persistence)
def test_persistence_settings(result: Result) -> None:
    """`redis-cli config get appendonly` (save, appendfsync) — persistence as the runbook states it."""
    verify(result)


@pytest.mark.check(redis_health.persistence_status)
def test_persistence_status(result: Result) -> None:
    """`redis-cli info persistence` — the last RDB save and AOF write succeeded; the snapshot is recent."""
    verify(result)


@pytest.mark.check(sentinel.sentinel_quorum)
def test_sentinel_quorum(result: Result) -> None:
    """`redis-cli -p 26379 sentinel ckquorum NAME` — every sentinel answers, with the expected quorum."""
    verify(result)


@pytest.mark.check(sentinel.sentinel_master)
def test_sentinel_master(result: Result) -> None:
    """`sentinel get-master-addr-by-name NAME` — the sentinels agree, and the master they name is the master."""
    verify(result)
