"""``--time-budget`` against hostile targets (tests/integration/hostile.py): the run ends at its budget whatever the
targets do. Checks whose result is ready keep their real verdict, each unfinished one names the target it was
waiting for, and the process exits with the gate's code while the hostile servers still hold their connections.

No wall-clock assertion: the servers below never finish an answer, so a run that waited for a probe in flight —
at the end of the session or in a thread join at interpreter exit — would never end, and ``run_suite``'s hang
guard (``timeout=``) would fail the test. The hostile entries' ``timeout_s`` is 300 s (the most an entry may
say): a probe that keeps to its own deadline still outlives the guard, so only the budget can end these runs.
How *fast* the process exits is measured in bench/bench_hostile.py.
"""

from __future__ import annotations

import re
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from hostile import Behaviour, HostileServer, _read_request
from support import SuiteRun, run_suite

# The budget counts from the process's start: this leaves start-up (1–4 s on a loaded machine) time enough to start
# the probes each test expects to have started
BUDGET = "8"
CANARY = "canary-pw-7f3a"  # a password in a hostile target's URL: never in any output

# A probe that ignores every deadline: it connects and waits for a byte with no timeout at all. The budget must
# hold even then (probes/ give each check a total deadline; this one is the probe that forgets to).
FOREVER = '''
import socket
from urllib.parse import urlsplit

import pytest

from opsproof import verify
from opsproof.probes.base import Outcome, probe
from opsproof.result import Result, Severity


@probe("hostile.forever", "http", Severity.HIGH, "nc HOST PORT (no deadline)", expected=lambda cfg: "an answer")
def forever(target, conns):
    url = urlsplit(target.config.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.settimeout(None)
        return Outcome(True, f"got {sock.recv(1)!r}")


@pytest.mark.check(forever)
def test_forever(result: Result) -> None:
    verify(result)
'''


def answer(status: int) -> Behaviour:
    """A behaviour for HostileServer that is not hostile: every request gets ``status`` with a JSON body."""

    def serve(conn: socket.socket, stop: threading.Event, interval: float) -> None:
        body = b'{"status": "%s"}' % (b"ok" if status == 200 else b"error")
        while _read_request(conn, stop):
            conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (status, len(body), body))

    return serve


@pytest.fixture
def servers() -> Iterator[dict[str, HostileServer]]:
    with ExitStack() as stack:
        found = {name: stack.enter_context(HostileServer(behaviour))
                 for name, behaviour in [("ok", answer(200)), ("broken", answer(500)), ("silent", "silent"),
                                         ("stalled", "header_then_stall"), ("trickle", "trickle"),
                                         ("redis", "redis_trickle")]}
        yield found


def inventory(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"environment: hostile\n{entries}")
    return path


def by_key(run: SuiteRun) -> dict[str, dict[str, object]]:
    return {f"{r['check']}@{r['target']}": r for r in run.records}


def alive(run: SuiteRun, *servers: HostileServer) -> None:
    """The run is over, and every server it talked to still holds its connections (none was stopped)."""
    for server in servers:
        assert server.accepted >= 1, f"{server.url} was never reached"
        assert not server.stopping.is_set()
    assert "Exception in thread" not in run.output, run.output
    assert "Fatal Python error" not in run.output, run.output


def junit_cases(run: SuiteRun) -> int:
    return len(ET.fromstring(run.junit).findall(".//testcase"))


def test_the_run_ends_at_its_budget_whatever_the_targets_do(servers: dict[str, HostileServer],
                                                            tmp_path: Path) -> None:
    """Two good targets, silent, stalled and trickling ones, and a probe blocked forever on every target: the checks
    that finished keep their verdicts, every other one names its target, and the run ends with the gate's code,
    its records and JUnit complete, while every server still serves (a thread join anywhere would never return)."""
    s = servers
    (tmp_path / "test_forever.py").write_text(FOREVER)
    inv = inventory(tmp_path, f"""http:
  ok: {{url: "{s['ok'].url}", timeout_s: 300}}
  broken: {{url: "{s['broken'].url}", timeout_s: 300}}
  silent: {{url: "{s['silent'].url}", timeout_s: 300}}
  stalled: {{url: "{s['stalled'].url}", timeout_s: 300}}
  trickle: {{url: "http://probe:{CANARY}@127.0.0.1:{s['trickle'].port}", timeout_s: 300}}
redis:
  slow: {{url: "redis://:{CANARY}@127.0.0.1:{s['redis'].port}/0", timeout_s: 300}}
""")
    run = run_suite(inv, tmp_path, "--time-budget", BUDGET, "smoke/test_redis.py", str(tmp_path / "test_forever.py"),
                    suite="smoke/test_http.py", timeout=90)
    alive(run, *s.values())
    assert run.code == 1, run.output
    got = by_key(run)
    # ready before their tests ran (the silent target's test used up the budget first): their own verdicts
    assert {k: r["verdict"] for k, r in got.items() if k.startswith("http.") and
            r["target"] in ("http[ok]", "http[broken]")} == {
        "http.health@http[ok]": "pass", "http.ready@http[ok]": "pass", "http.latency@http[ok]": "pass",
        "http.health@http[broken]": "fail", "http.ready@http[broken]": "fail", "http.latency@http[broken]": "no-data"
    }, run.output
    assert got["http.health@http[broken]"]["observed"] == "GET /health → HTTP 500"
    hung = {k: r for k, r in got.items() if r["verdict"] == "timed-out"}
    # http (health, ready, latency) × 3, redis (ping, memory: the configured ones), the probe that never ends × 5
    assert len(hung) == len(run.records) - 6 == 9 + 2 + 5
    where = {name: f"{name} ({url})" for name, url in [
        ("http[ok]", s["ok"].url), ("http[broken]", s["broken"].url), ("http[silent]", s["silent"].url),
        ("http[stalled]", s["stalled"].url), ("http[trickle]", f"http://probe:***@127.0.0.1:{s['trickle'].port}"),
        ("redis[slow]", f"redis://:***@127.0.0.1:{s['redis'].port}/0")]}
    for record in hung.values():
        assert re.fullmatch(rf"timed out: the gate's time budget of {BUDGET} s was exhausted: still waiting for "
                            rf"{re.escape(where[str(record['target'])])}, running for \d+\.\d s",
                            str(record["observed"])), record
    assert (f"http[stalled]: timed out: the gate's time budget of {BUDGET} s was exhausted: still waiting for "
            f"{where['http[stalled]']}, running for ") in run.output
    assert (f"opsproof: the gate's time budget of {BUDGET} s was exhausted: 16 check(s) timed out, on http[silent], "
            "http[stalled], http[trickle], redis[slow], http[ok], http[broken]") in run.output
    assert junit_cases(run) == len(run.records) == 22
    assert CANARY not in run.output + run.junit + str(run.records)


def test_a_check_the_pool_never_reached_says_so(servers: dict[str, HostileServer], tmp_path: Path) -> None:
    """Two probe threads, both taken by probes that never end: the two checks queued behind them never start."""
    silent = servers["silent"].url
    (tmp_path / "test_forever.py").write_text(FOREVER)
    entries = "".join(f'  {name}: {{url: "{silent}/{name}", timeout_s: 300}}\n' for name in "abcd")
    run = run_suite(inventory(tmp_path, f"http:\n{entries}"), tmp_path, "--time-budget", BUDGET,
                    "--opsproof-concurrency", "2", "-c", "pyproject.toml", suite=str(tmp_path / "test_forever.py"),
                    timeout=90)  # -c: the project's configuration, which a suite outside the repository would miss
    alive(run, servers["silent"])
    assert run.code == 1, run.output
    spent = f"timed out: the gate's time budget of {BUDGET} s was exhausted: "
    observed = {str(r["target"]): str(r["observed"]).removeprefix(spent) for r in run.records}
    assert re.fullmatch(rf"still waiting for http\[a\] \({re.escape(silent)}/a\), running for \d+\.\d s",
                        observed["http[a]"]), observed
    assert observed["http[b]"].startswith(f"still waiting for http[b] ({silent}/b), running for "), observed
    assert observed["http[c]"] == f"http[c] ({silent}/c) never started (queued behind 2 checks)"
    assert observed["http[d]"] == f"http[d] ({silent}/d) never started (queued behind 3 checks)"


def test_on_demand_probing_ends_at_the_budget_too(servers: dict[str, HostileServer], tmp_path: Path) -> None:
    """One probe at a time (no prefetch): the check asked for after the budget never starts."""
    s = servers
    inv = inventory(tmp_path, f"""http:
  ok: {{url: "{s['ok'].url}", timeout_s: 300, ready: null}}
  stalled: {{url: "{s['stalled'].url}", timeout_s: 300, ready: null}}
""")
    run = run_suite(inv, tmp_path, "--time-budget", BUDGET, "--opsproof-concurrency", "1", suite="smoke/test_http.py",
                    timeout=90)
    alive(run, s["ok"], s["stalled"])
    assert run.code == 1, run.output
    got = by_key(run)
    assert got["http.health@http[ok]"]["verdict"] == "pass"
    assert str(got["http.health@http[stalled]"]["observed"]).startswith(f"timed out: the gate's time budget of "
                                                                       f"{BUDGET} s was exhausted: still waiting for "
                                                                       f"http[stalled] ({s['stalled'].url})")
    assert got["http.latency@http[ok]"]["observed"] == (
        f"timed out: the gate's time budget of {BUDGET} s was exhausted: http[ok] ({s['ok'].url}) never started "
        "(queued behind 1 check)")
