"""A tiny Celery app for tests/integration/test_celery.py's worker (`celery -A celery_app worker`): its broker is
``$OPSPROOF_TEST_BROKER``. Not a test module."""

import os

from celery import Celery

app = Celery("opsproof_test", broker=os.environ["OPSPROOF_TEST_BROKER"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True, result_backend=None)


@app.task(name="opsproof.noop")
def noop() -> None:
    """Nothing: the queues the test fills are ones no worker consumes."""
