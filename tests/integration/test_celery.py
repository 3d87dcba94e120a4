"""Celery checks on a real worker (issue 14): one worker of a tiny app (celery_app.py, `--pool solo`), started for
the module on the sandbox's Redis in a database the sandbox does not use (/5). Healthy, the workers answer ping,
the listed queues are consumed and their depth stays under the ceiling; broken for real — a worker that does not
exist, a queue nobody consumes, jobs pushed into it during the window, then the worker stopped — exactly those
checks fail, naming the workers, the queue and the trend."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from support import SandboxHelper, SuiteRun, run_suite, stop_process

from opsproof.inventory import load
from opsproof.probes import Connections, celery
from opsproof.util.poll import wait_until

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
DB = 5  # the sandbox uses database 0; this one is the test's own, and only its keys are deleted
CELERY_CHECKS = ("-k", "test_celery")
WORKER = "opsproof-w1"


def broker_url(sandbox: SandboxHelper) -> str:
    return sandbox.box.redis_url().rsplit("/", 1)[0] + f"/{DB}"


@pytest.fixture(scope="module")
def worker(sandbox: SandboxHelper, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    """One real Celery worker consuming alpha and beta, up within 60 s, always stopped."""
    url = broker_url(sandbox)
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "solo", "-Q", "alpha,beta",
             "-n", f"{WORKER}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
            cwd=HERE, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "OPSPROOF_TEST_BROKER": url, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        inv = load(inventory(sandbox, log.parent, {"up": {"workers": [f"{WORKER}@*"]}}))
        target = celery.ping.targets("broker", inv.redis["broker"])[0]

        def answers() -> bool:
            assert process.poll() is None, log.read_text()
            with Connections() as conns:
                return celery.ping(target, conns).ok is True

        wait_until(answers, 60, f"the Celery worker answering ping ({log})")
        yield process
    finally:
        stop_process(process)
        keys = redis.Redis.from_url(url, socket_timeout=3)
        for key in ("alpha", "beta", "gamma"):
            keys.delete(key)
        keys.close()


def inventory(sandbox: SandboxHelper, out: Path, apps: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "celery.yaml"
    path.write_text(yaml.safe_dump({"environment": "celery", "redis": {
        "broker": {"url": broker_url(sandbox), "timeout_s": 3, "celery": apps}}}))
    return path


def message(run: SuiteRun, check: str, target: str) -> str:
    [record] = [r for r in run.records if r["check"] == check and r["target"] == target]
    return f"{record['target']}: {record['observed']}, expected {record['expected']}"


def test_a_healthy_worker_passes_and_what_is_broken_fails(sandbox: SandboxHelper, worker: Any,
                                                         tmp_path: Path) -> None:
    """One run: the app the worker serves passes its three checks; an app listing a second worker that does not
    exist, a queue nobody consumes, and that queue filling during the window fails exactly those three."""
    apps = {"tasks": {"workers": [f"{WORKER}@*"], "queues": ["alpha", "beta"], "depth": {"alpha": 5},
                      "window": "2s", "samples": 3},
            "exact": {"workers": [f"{WORKER}@{socket.gethostname()}"]},  # asked by name: no wait past its reply
            "orphan": {"workers": [f"{WORKER}@*", "opsproof-w2@*"], "queues": ["alpha", "gamma"],
                       "depth": {"gamma": 3}, "window": "3s", "samples": 4}}
    keys = redis.Redis.from_url(broker_url(sandbox), socket_timeout=3)
    keys.delete("gamma")
    stop_pushing = threading.Event()

    def push() -> None:  # jobs arriving in a queue nobody consumes, for the whole run
        while not stop_pushing.wait(0.25):
            keys.lpush("gamma", '{"task": "opsproof.noop"}')

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    try:
        run = run_suite(inventory(sandbox, tmp_path, apps), tmp_path, *CELERY_CHECKS)
    finally:
        stop_pushing.set()
        pusher.join(5)
        keys.delete("gamma")
        keys.close()
    assert run.failed == {"celery.ping@redis[broker] celery orphan", "celery.queues@redis[broker] celery orphan",
                          "celery.depth@redis[broker] celery orphan"}, run.output
    assert {f"{r['check']}@{r['target']}" for r in run.records if r["outcome"] == "passed"} == {
        "celery.ping@redis[broker] celery tasks", "celery.queues@redis[broker] celery tasks",
        "celery.depth@redis[broker] celery tasks", "celery.ping@redis[broker] celery exact"}, run.output
    ping = message(run, "celery.ping", "redis[broker] celery orphan")
    assert ping.startswith(f"redis[broker] celery orphan: no answer from opsproof-w2@* (1 answered: {WORKER}@"), ping
    assert ping.endswith(f"expected workers answer ping: {WORKER}@*, opsproof-w2@*"), ping
    queues = message(run, "celery.queues", "redis[broker] celery orphan")
    assert queues.startswith("redis[broker] celery orphan: no worker consumes gamma (1 worker(s) answered; "
                             f"consumed: alpha by {WORKER}@"), queues
    assert queues.endswith("expected each consumed by ≥ 1 worker: alpha, gamma"), queues
    depth = message(run, "celery.depth", "redis[broker] celery orphan")
    assert re.fullmatch(r"redis\[broker\] celery orphan: gamma \d+( → \d+){3} \(max \d+, rising\), ceiling 3 over "
                        r"3\.\d s, expected gamma ≤ 3 over 3 s \(not above it at the end, nor above it while rising\)",
                        depth), depth
    samples = next(r for r in run.records if r["check"] == "celery.depth" and "orphan" in r["target"])
    gamma = samples["evidence"]["samples"]["gamma"]
    assert len(gamma) == 4, gamma
    assert gamma[-1] > max(gamma[0], 3), gamma
    assert "Traceback" not in run.output
    assert sandbox.box.meta["passwords"]["redis"] not in run.output + run.junit


def test_without_celery_the_checks_say_how_to_install_it(sandbox: SandboxHelper, worker: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    inv = load(inventory(sandbox, tmp_path, {"tasks": {"queues": ["alpha"]}}))
    monkeypatch.setitem(sys.modules, "celery", None)  # `import celery` raises ImportError
    with Connections() as conns:
        results = [spec(spec.targets("broker", inv.redis["broker"])[0], conns) for spec in (celery.ping,
                                                                                                celery.queues)]
    assert [(r.ok, r.observed) for r in results] == [(False, celery.NOT_INSTALLED)] * 2


def test_the_worker_stopped_fails_ping_naming_it(sandbox: SandboxHelper, worker: subprocess.Popen[bytes],
                                                 tmp_path: Path) -> None:
    """Last: the module's worker is stopped for real; ping names the worker that no longer answers, and the
    queues it consumed have no consumer."""
    stop_process(worker)
    apps = {"tasks": {"workers": [f"{WORKER}@*"], "queues": ["alpha"], "reply_timeout": "1s"}}
    run = run_suite(inventory(sandbox, tmp_path, apps), tmp_path, *CELERY_CHECKS)
    assert run.failed == {"celery.ping@redis[broker] celery tasks", "celery.queues@redis[broker] celery tasks"}, \
        run.output
    assert message(run, "celery.ping", "redis[broker] celery tasks") == (
        f"redis[broker] celery tasks: no answer from {WORKER}@* (no worker answered within 1 s), expected workers "
        f"answer ping: {WORKER}@*")
    assert message(run, "celery.queues", "redis[broker] celery tasks") == (
        "redis[broker] celery tasks: no worker consumes alpha (no worker answered within 1 s), expected each "
        "consumed by ≥ 1 worker: alpha")
