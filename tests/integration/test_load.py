"""The load suite for real: ``pytest load`` runs Locust against the sandbox app, once, with four scenarios — a
healthy one that passes, a p95 threshold below the app's real latency that fails exactly that threshold, real
404s and a request that never runs that fail the error rate and the request's threshold, and ``--processes 2``
whose merged histogram counts exactly the requests Locust itself counted; and Ctrl-C leaves no Locust process.
The open model (a constant arrival rate) holds its rate on the app, and against a loopback server slower than
its users can keep up with it counts the late sends and fails its rps threshold, with latency measured from each
request's due time; an abort_on_fail threshold stops a 60 s run once its grace period is over."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO, SandboxHelper, SuiteRun, http_server, interruptible, respond, run_suite

from opsproof.util.poll import wait_until
from opsproof.util.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("load")]

ITEMS = [{"name": "item", "path": "/items/7", "weight": 4}, {"name": "list", "path": "/items", "weight": 1}]
COMMON = {"service": "app", "users": 3, "duration": "3s", "think_time": "20ms"}
SCENARIOS = {
    "healthy": {**COMMON, "requests": ITEMS,
                "thresholds": ["p(95) < 2s", "error_rate < 1%", "requests >= 20"]},
    "slow": {**COMMON, "requests": ITEMS, "thresholds": ["p(95) < 50us", "error_rate < 1%"]},
    "broken": {**COMMON, "thresholds": ["error_rate < 1%"], "requests": [
        {"name": "item", "path": "/items/7", "weight": 2, "thresholds": ["p(99) < 5s"]},
        {"name": "missing", "path": "/no-such-page", "weight": 1},
        {"name": "never", "path": "/items/8", "weight": 0, "thresholds": ["p(95) < 5s"]}]},
    "two-procs": {**COMMON, "processes": 2, "requests": ITEMS, "thresholds": ["p(95) < 2s", "requests >= 20"]},
    # the hard bound on requests ends the run long before its duration
    "bounded": {**COMMON, "duration": "60s", "max_requests": 40, "requests": ITEMS, "thresholds": ["requests >= 40"]},
    # a locustfile of the user's own; a threshold on a misspelled request name
    "own-file": {**COMMON, "locustfile": str(REPO / "load" / "locustfiles" / "catalogue.py"),
                 "request_thresholds": {"item": ["p(95) < 2s"], "itme": ["p(95) < 2s"]}},
    # a fleet: this run is the master; two workers, started apart as on other machines, generate the load
    "fleet": {**COMMON, "duration": "2s", "workers": 2, "master_port": 0, "requests": ITEMS,
              "thresholds": ["p(95) < 2s", "requests >= 20"]},
    # the open model on the app: 40 requests/s whatever the answers take, at most 8 in flight
    "open": {"service": "app", "arrival_rate": 40, "users": 8, "duration": "2s", "requests": ITEMS,
             "thresholds": ["rps >= 30", "p(95) < 2s", "error_rate < 1%"]},
    # 50/s asked of a server that answers in 100 ms, with 2 in flight: at most 20/s can go out on time
    "overrun": {"service": "slow", "arrival_rate": 50, "users": 2, "duration": "2s",
                "requests": [{"name": "slow", "path": "/"}], "thresholds": ["rps >= 5", "p(95) < 30s"]},
    # a 60 s run whose p95 is breached from the first answer: stopped once the 1 s grace period is over
    "abort": {"service": "slow", "users": 4, "duration": "60s", "requests": [{"name": "slow", "path": "/"}],
              "thresholds": [{"threshold": "p(95) < 50ms", "abort_on_fail": True, "grace": "1s"},
                             "error_rate < 1%"]},
}
SLOW_S = 0.1


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(SLOW_S)  # the server under test is slow: this is its service time, not a wait of the test
        respond(self, 200, b"{}")

    def log_message(self, *args: Any) -> None:
        pass


class Runs:
    def __init__(self, run: SuiteRun, out: Path) -> None:
        self.run, self.out = run, out

    def outcome(self, scenario: str) -> str:
        [record] = [r for r in self.run.records if r["target"] == f"load[{scenario}]"]
        return str(record["outcome"])

    def record(self, scenario: str) -> dict[str, Any]:
        [path] = (self.out / "load").glob(f"{scenario}-*[0-9]Z.json")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def verdicts(self, scenario: str) -> dict[str, tuple[str, str]]:
        return {f"{v['subject']} {v['threshold']}": (v["verdict"], v["message"])
                for v in self.record(scenario)["verdicts"]}


def _run_the_suite(sandbox: SandboxHelper, out: Path) -> SuiteRun:
    sandbox.wait_healthy()
    scenarios = {**SCENARIOS, "fleet": {**SCENARIOS["fleet"], "master_port": free_port()}}
    raw = out / "raw"
    raw.mkdir()  # every sample, as a side log, one file per Locust process (the plugin's OPSPROOF_LOAD_RAW)
    env = {**os.environ, "OPSPROOF_LOAD_RAW": str(raw)}
    with http_server(_Slow) as slow:
        inventory = sandbox.derive(out, {"load": scenarios, "http.slow": {"url": slow}})
        worker = [sys.executable, "-c", "import sys; from opsproof.cli import main; sys.exit(main(sys.argv[1:]))",
                  "load", "--worker", "--master-host", "127.0.0.1", "--inventory", str(inventory), "fleet"]
        workers = [subprocess.Popen(worker, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
                   for _ in range(2)]  # they wait for the master (Locust retries for 5 minutes)
        try:
            return run_suite(inventory, out, "-rA", suite="load", timeout=240, env={"OPSPROOF_LOAD_RAW": str(raw)})
        finally:
            for proc in workers:  # the master's quit ended them; one that did not connect is ended here
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


@pytest.fixture(scope="module")
def runs(sandbox: SandboxHelper, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Runs:
    """The load suite, run once per session: under pytest-xdist the first worker to get here runs it and the
    other reads its results (the xdist_group mark does not keep a module on one worker with pytest 9.2 and
    xdist 3.8: xdist sets ``item._nodeid``, which pytest 9 no longer reads)."""
    if worker_id == "master":
        out = tmp_path_factory.mktemp("load")
        return Runs(_run_the_suite(sandbox, out), out)
    shared = tmp_path_factory.getbasetemp().parent / "load-suite"  # this session's, common to its workers
    shared.mkdir(exist_ok=True)
    done = shared / "run.json"
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here while the suite runs
        if not done.exists():
            run = _run_the_suite(sandbox, shared)
            done.write_text(json.dumps(dataclasses.asdict(run)))
    return Runs(SuiteRun(**json.loads(done.read_text())), shared)


def test_a_healthy_sandbox_passes_its_scenario(runs: Runs) -> None:
    assert runs.outcome("healthy") == "passed", runs.run.output
    record = runs.record("healthy")
    assert {v for v, _ in runs.verdicts("healthy").values()} == {"pass"}
    assert record["total"]["requests"] >= 20
    assert record["total"]["failures"] == 0
    assert set(record["names"]) == {"item", "list"}
    assert record["histograms_us"]["item"]  # the exact histogram, for the readiness report to read
    assert record["generator"]["runner"] == "local"
    assert record["generator"]["cpu_percent"] < 90, record["generator"]
    inventory = yaml.safe_load((runs.out / "inventory.yaml").read_text())
    assert record["command"][record["command"].index("--host") + 1] == inventory["http"]["app"]["url"].rstrip("/")


def test_a_p95_below_the_app_s_real_latency_fails_exactly_that_threshold(runs: Runs) -> None:
    assert runs.outcome("slow") == "failed"
    verdicts = runs.verdicts("slow")
    assert verdicts["load[slow] error_rate < 1%"][0] == "pass"
    verdict, message = verdicts["load[slow] p(95) < 50us"]
    assert verdict == "fail"
    assert re.fullmatch(r"load\[slow\]: p\(95\) [\d.,]+ (µs|ms|s) over [\d,]+ requests, expected < 50 µs", message)
    p95 = runs.record("slow")["total"]["us"]["p(95)"]
    assert p95 > 50
    assert message in runs.run.output  # the test's failure names it


def test_real_errors_and_a_request_that_never_ran_fail_with_their_reason(runs: Runs) -> None:
    assert runs.outcome("broken") == "failed"
    record = runs.record("broken")
    missing = record["names"]["missing"]
    assert missing["requests"] == missing["failures"] > 0  # every 404 counted as a failure
    assert "never" not in record["names"]
    verdicts = runs.verdicts("broken")
    verdict, message = verdicts["load[broken] error_rate < 1%"]
    assert verdict == "fail"
    assert re.fullmatch(rf"load\[broken\]: error_rate [\d.]+% \({missing['failures']:,} failed of "
                        rf"{record['total']['requests']:,} requests\), expected < 1%", message)
    assert verdicts["load[broken/never] p(95) < 5s"] == (
        "fail", "load[broken/never]: p(95): the request never ran (0 requests), expected < 5 s")
    assert verdicts["load[broken/item] p(99) < 5s"][0] == "pass"
    assert "2 of 3 thresholds breached" in runs.run.output


def test_the_request_bound_stops_a_run_before_its_duration(runs: Runs) -> None:
    assert runs.outcome("bounded") == "passed", runs.run.output
    record = runs.record("bounded")
    assert record["stopped_by"] == "max_requests"
    assert 40 <= record["total"]["requests"] < 200  # users × in-flight requests past the bound, not 60 s of load
    assert record["elapsed_s"] < 30


def test_a_locustfile_of_one_s_own_is_judged_by_its_request_names(runs: Runs) -> None:
    assert runs.outcome("own-file") == "failed"
    verdicts = runs.verdicts("own-file")
    assert verdicts["load[own-file/item] p(95) < 2s"][0] == "pass"
    assert verdicts["load[own-file/itme] p(95) < 2s"] == (
        "fail", "load[own-file/itme]: p(95): the request never ran (0 requests), expected < 2 s")
    assert set(runs.record("own-file")["names"]) == {"item", "list"}


def test_two_processes_give_one_verdict_over_every_request_locust_counted(runs: Runs) -> None:
    assert runs.outcome("two-procs") == "passed", runs.run.output
    record = runs.record("two-procs")
    assert record["generator"]["runner"] == "master"
    assert len(record["generator"]["workers"]) == 2
    assert "--processes" in record["command"]
    [stats] = (runs.out / "load").glob("two-procs-*_stats.csv")
    with stats.open() as f:
        locust = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(f)}
    assert record["total"]["requests"] == locust["Aggregated"] >= 20
    assert {n: s["requests"] for n, s in record["names"].items()} == {n: locust[n] for n in ("item", "list")}


def _rank(samples: list[int], pct: float) -> int:
    """HdrHistogram's rank rule (the value at rank round(N × p / 100), at least 1), on the raw samples."""
    ordered = sorted(samples)
    return ordered[max(int(pct * len(ordered) / 100 + 0.5), 1) - 1]


def test_merged_percentiles_equal_the_raw_samples_to_the_microsecond(runs: Runs) -> None:
    """Every sample also went to a side log, one file per Locust process: the two workers' samples of the
    ``--processes 2`` run give exactly the merged record's percentiles (all below 262 ms: kept to the µs)."""
    files = sorted((runs.out / "raw").glob("two-procs-*.tsv"))
    by_name: dict[str, list[int]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            name, us = line.split("\t")
            by_name.setdefault(name, []).append(int(us))
    assert len(files) == 2  # the workers generated the load, the master none
    record = runs.record("two-procs")
    every = [us for samples in by_name.values() for us in samples]
    assert len(every) == record["total"]["requests"]
    assert max(every) < 262_000
    for pct in (50, 90, 95, 99, 99.9, 100):
        assert record["total"]["us"][f"p({pct:g})"] == _rank(every, pct), pct
    for name, samples in by_name.items():
        assert record["names"][name]["us"]["p(95)"] == _rank(samples, 95), name


def test_a_master_and_two_workers_give_one_verdict_exact_to_the_microsecond(runs: Runs) -> None:
    """The fleet form: ``opsproof load`` as master, two ``opsproof load --worker`` processes started apart (as on
    two machines); the merged p95 equals that of every raw sample the workers wrote, and the count Locust's."""
    assert runs.outcome("fleet") == "passed", runs.run.output
    record = runs.record("fleet")
    assert record["generator"]["runner"] == "master"
    assert len(record["generator"]["workers"]) == 2
    assert "--expect-workers" in record["command"]
    files = sorted((runs.out / "raw").glob("fleet-worker-*.tsv"))
    assert len(files) == 2
    samples = [int(line.split("\t")[1]) for path in files for line in path.read_text().splitlines()]
    assert len(samples) == record["total"]["requests"] >= 20
    for pct in (50, 95, 99, 100):
        assert record["total"]["us"][f"p({pct:g})"] == _rank(samples, pct), pct
    [stats] = (runs.out / "load").glob("fleet-*_stats.csv")
    with stats.open() as f:
        assert {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(f)}["Aggregated"] == len(samples)


def _locust_p95_ms(stats: Path, name: str) -> float:
    with stats.open() as f:
        return float(next(row for row in csv.DictReader(f) if row["Name"] == name)["95%"])


def test_the_open_model_holds_its_rate_and_records_each_second(runs: Runs) -> None:
    assert runs.outcome("open") == "passed", runs.run.output
    record = runs.record("open")
    assert record["model"] == "open"
    plan = record["schedule"]
    assert plan["rate_per_s"] == 40
    assert plan["late"] + plan["unsent"] <= 0.01 * plan["due"], plan
    assert 0.8 * 40 * record["elapsed_s"] <= plan["due"] <= 40 * record["elapsed_s"] + 5, (plan, record["elapsed_s"])
    series = record["series"]
    assert sum(row["requests"] for row in series) == record["total"]["requests"]  # every answer in one second
    assert sum(row["failures"] for row in series) == record["total"]["failures"] == 0
    busy = [row for row in series if row["requests"]]
    assert all(row["p95_ms"] > 0 for row in busy)
    assert [row["t"] for row in series] == list(range(len(series)))
    for scenario in ("healthy", "two-procs"):  # the closed model's runs, and the merged one, have their seconds too
        seconds = runs.record(scenario)["series"]
        assert sum(row["requests"] for row in seconds) == runs.record(scenario)["total"]["requests"]


def test_a_rate_the_generator_could_not_hold_fails_rps_and_shows_in_latency(runs: Runs) -> None:
    """50/s asked, 20/s possible: the late sends are counted and the rps threshold fails although the rate
    reached meets its bound; latency, measured from each request's due time, holds the queue that built up —
    Locust's own p95 (from when each request left) sees only the server's 100 ms."""
    assert runs.outcome("overrun") == "failed"
    record = runs.record("overrun")
    plan = record["schedule"]
    assert plan["late"] + plan["unsent"] > 0.3 * plan["due"], plan
    verdict, message = runs.verdicts("overrun")["load[overrun] rps >= 5"]
    assert verdict == "fail"
    assert re.fullmatch(r"load\[overrun\]: rps [\d.]+/s over [\d,]+ requests, expected >= 5/s — the arrival rate "
                        r"was not held: [\d,]+ of [\d,]+ due requests sent late \(> 50 ms\) or never sent "
                        r"\([\d,]+\)", message), message
    assert record["total"]["requests"] / record["elapsed_s"] >= 5  # the figure alone would have passed
    assert runs.verdicts("overrun")["load[overrun] p(95) < 30s"][0] == "pass"
    [stats] = (runs.out / "load").glob("overrun-*_stats.csv")
    ours_ms = record["total"]["us"]["p(95)"] / 1000
    assert _locust_p95_ms(stats, "slow") < 3 * SLOW_S * 1000  # Locust: the service time
    assert ours_ms > 2 * _locust_p95_ms(stats, "slow")  # opsproof: from when each request was due
    assert sum(row["late"] for row in record["series"]) == plan["late"]


def test_abort_on_fail_stops_the_run_after_its_grace_period(runs: Runs) -> None:
    assert runs.outcome("abort") == "failed"
    record = runs.record("abort")
    assert record["stopped_by"] == "abort_on_fail"
    aborted = record["aborted"]
    assert (aborted["subject"], aborted["threshold"], aborted["grace_s"]) == ("load[abort]", "p(95) < 50ms", 1.0)
    assert 1.0 <= aborted["at_s"] < 10, aborted
    assert record["elapsed_s"] < 15  # of 60 s
    verdict, message = runs.verdicts("abort")["load[abort] p(95) < 50ms"]
    assert verdict == "fail"
    assert re.fullmatch(r"load\[abort\]: p\(95\) [\d.]+ ms over [\d,]+ requests, expected < 50 ms — aborted the "
                        r"run at [\d.]+ s \(abort_on_fail, grace 1 s\)", message), message
    assert runs.verdicts("abort")["load[abort] error_rate < 1%"][0] == "pass"
    assert message in runs.run.output


def _locust_processes(marker: str) -> list[int]:
    """Processes whose environment names this run's record (Locust, its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_ctrl_c_stops_every_locust_process(sandbox: SandboxHelper, tmp_path: Path) -> None:
    """A run interrupted while Locust and its two workers generate load leaves no Locust process behind."""
    inventory = sandbox.derive(tmp_path, {"load": {"long": {**SCENARIOS["two-procs"], "duration": "60s"}}})
    code = (f"from pathlib import Path; from opsproof.inventory import load; from opsproof.load import runner; "
            f"runner.run(load({str(inventory)!r}), 'long', Path({str(tmp_path)!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, preexec_fn=interruptible,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = str(tmp_path / "load")
    try:
        wait_until(lambda: any("All users spawned" in p.read_text() for p in (tmp_path / "load").glob("*.log")),
                   30, "Locust spawned its users")
        assert len(_locust_processes(marker)) == 3  # the master and its two workers
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert b"KeyboardInterrupt" in out
    try:
        wait_until(lambda: not _locust_processes(marker), 5, "every Locust process gone")
    finally:  # when the test fails, what it found is not left running
        for pid in _locust_processes(marker):
            os.kill(pid, signal.SIGKILL)
