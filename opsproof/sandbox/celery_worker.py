"""The Celery app of a sandbox profile's workers (`celery -A opsproof.sandbox.celery_worker worker -Q …`): its
broker is ``$OPSPROOF_CELERY_BROKER`` (the sandbox's Redis; the password in the environment, never argv). It
registers one task that does nothing: the profile checks that its workers answer and consume their queues."""

import os

from celery import Celery

app = Celery("opsproof_sandbox", broker=os.environ["OPSPROOF_CELERY_BROKER"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True, result_backend=None,
                worker_send_task_events=False)


@app.task(name="opsproof.sandbox.noop")  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing."""
