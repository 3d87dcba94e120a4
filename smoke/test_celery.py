"""Celery — `celery inspect ping`, `celery inspect active_queues` and the queue depth, on the broker's Redis."""

import pytest

from opsproof import verify
from opsproof.probes import celery
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(celery.ping)
def test_celery_workers_answer(result: Result) -> None:
    """`celery -A app inspect ping` — the workers answer on the broker."""
    verify(result)


@pytest.mark.check(celery.queues)
def test_celery_queues_consumed(result: Result) -> None:
    """`celery -A app inspect active_queues` — every queue the runbook names has a consumer."""
    verify(result)


@pytest.mark.check(celery.depth)
def test_celery_queue_depth(result: Result) -> None:
    """`redis-cli llen QUEUE`, sampled over a window — no queue backs up past its ceiling."""
    verify(result)
