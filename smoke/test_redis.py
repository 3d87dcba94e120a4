"""Redis — the `redis-cli` lines of the runbooks (read commands only)."""

import pytest

from opsproof import verify
from opsproof.probes import redis
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
