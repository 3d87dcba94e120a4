"""Benchmark: 500 HTTP health checks through opsproof vs the same checks in plain pytest.

Run by hand from the repository root:  .venv/bin/python bench/bench_http.py  [--repeat 3]

A local ThreadingHTTPServer (a thread of this process) answers every GET after 50 ms with {"status":"ok"}.
Each figure is the wall time of a fresh pytest subprocess (median of --repeat runs). Results are printed
and written to bench/results.json; see bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DELAY_S = 0.05
BODY = b'{"status":"ok"}'
TIMEOUT_S = 600  # per pytest subprocess
# The plain baseline runs outside the project (no pyproject addopts): keep out opsproof, and the plugins the
# project's addopts disable too — kmock's needs pytest-asyncio (exit 3 without it), locust's patches with gevent.
PLAIN_PLUGINS_OFF = ["-p", "no:opsproof", "-p", "no:kmock", "-p", "no:locust"]
# Both sides run as on a user's install, which has no hypothesis: it is a dev dependency of opsproof's own tests,
# and its pytest plugin imports all of hypothesis at the end of every run (0.66 G instructions, ≈ 0.2 s: its
# pytest_terminal_summary imports hypothesis.internal.observability unconditionally, in hypothesis 6.170).
DEV_PLUGINS_OFF = ["-p", "no:hypothesispytest"]

# Targets from the issue.
TARGET_WALL_S = 2.0  # verdict for 500 checks at 50 ms each (the fleet-scale issue's goal)
TARGET_SPEEDUP = 5.0  # vs the plain serial baseline
TARGET_COLLECT_S = 1.0  # collecting 1,000 parametrized checks


# --- the server -------------------------------------------------------------------------------------------
class Stats:
    """Requests served, the peak number answered at once, first arrival and last answer (time.time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = self.in_flight = self.peak = 0
            self.first = self.last = float("nan")

    def enter(self) -> None:
        with self.lock:
            if not self.requests:
                self.first = time.time()
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1
            self.last = time.time()


STATS = Stats()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        STATS.enter()
        try:
            time.sleep(DELAY_S)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        finally:
            STATS.leave()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


# --- inputs -----------------------------------------------------------------------------------------------
def write_inventory(path: Path, base: str, n: int) -> None:
    lines = ["environment: bench", "http:"]
    lines += [
        f'  svc{i:04d}: {{url: "{base}/s/{i}", health: /health, ready: null, expect_status: 200, '
        f"expect_json: {{status: ok}}, latency_budget_ms: 1000, timeout_s: 5}}"
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


PLAIN_HTTP = '''\
from collections.abc import Iterator

import httpx
import pytest

URLS = {urls!r}


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


@pytest.mark.parametrize("url", URLS, ids=[f"svc{{i:04d}}" for i in range(len(URLS))])
def test_health(client: httpx.Client, url: str) -> None:
    response = client.get(url, timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
'''

PLAIN_TRIVIAL = '''\
import pytest


@pytest.mark.parametrize("n", range({n}))
def test_trivial(n: int) -> None:
    assert n >= 0
'''


# --- measuring --------------------------------------------------------------------------------------------
@dataclass
class Figure:
    name: str
    what: str
    args: list[str]  # after `python -m pytest`
    cwd: str
    samples_s: list[float] = field(default_factory=list)  # wall
    cpu_s: list[float] = field(default_factory=list)  # user + system, subprocess and its children
    pytest_reported_s: list[float] = field(default_factory=list)  # pytest's own "... in X.XXs"
    summary: str = ""  # pytest's last line, from the last run
    requests: int = 0  # HTTP requests the server answered, last run
    peak_concurrency: int = 0  # most requests in flight at once, last run
    ok: bool = True  # every run exited 0

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s) if self.samples_s else float("nan")

    @property
    def min_s(self) -> float:
        return min(self.samples_s) if self.samples_s else float("nan")


def child_env(pycache: Path, **extra: str) -> dict[str, str]:
    """The environment of a pytest subprocess. Bytecode, and the modules pytest rewrites (its plugins', opsproof
    included), are cached under ``pycache``: a temp folder, warmed before timing, so runs start like they do
    on a developer's machine and nothing is written outside it. PYTHONDONTWRITEBYTECODE is dropped."""
    skip = ("PYTEST_", "OPSPROOF_", "BENCH_", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    e = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    e["NO_PROXY"] = e["no_proxy"] = "127.0.0.1,localhost"
    e["PYTHONPYCACHEPREFIX"] = str(pycache)
    return e | extra


@dataclass
class Outcome:
    wall_s: float
    cpu_s: float  # user + system of the subprocess and its children (xdist workers)
    code: int
    out: str


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(args: list[str], cwd: str | Path, env: dict[str, str]) -> Outcome:
    """One pytest subprocess, timed; its whole process group is killed on timeout."""
    cmd = [sys.executable, "-m", "pytest", *args]
    cpu = cpu_of_children()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env | {"BENCH_T0": repr(time.time())}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out, code = out + f"\nTIMEOUT after {TIMEOUT_S} s", -1
    except BaseException:  # Ctrl-C: its own session does not get the SIGINT, so stop it here
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Outcome(time.perf_counter() - start, cpu_of_children() - cpu, code, out)


def measure_once(fig: Figure, pycache: Path) -> None:
    STATS.reset()
    res = run_once(fig.args, fig.cwd, child_env(pycache))
    fig.samples_s.append(res.wall_s)
    fig.cpu_s.append(res.cpu_s)
    lines = [ln for ln in res.out.strip().splitlines() if ln.strip()]
    fig.summary = lines[-1] if lines else ""
    m = re.search(r" in ([\d.]+)s", fig.summary)
    if m:
        fig.pytest_reported_s.append(float(m.group(1)))
    fig.requests, fig.peak_concurrency = STATS.requests, STATS.peak
    if res.code != 0:
        fig.ok = False
        print(f"  !! {fig.name}: exit {res.code}\n" + "\n".join(lines[-15:]), file=sys.stderr)
    print(f"  {fig.name:<18} {res.wall_s:6.2f} s wall {res.cpu_s:6.2f} s cpu  ({fig.summary})", flush=True)


# (phase, from mark, to mark) of bench_phases.py; "exit" is its atexit mark, after pytest_unconfigure.
PHASES: list[tuple[str, str, str]] = [
    ("interpreter + import pytest", "spawn", "plugin_imported"),
    ("plugins, ini, conftests", "plugin_imported", "configure_start"),
    ("pytest_configure", "configure_start", "sessionstart"),
    ("collection", "collection_start", "collection_end"),
    ("runtestloop", "runtestloop_start", "runtestloop_end"),
    ("sessionfinish + summary", "sessionfinish_start", "sessionfinish_end"),
    ("unconfigure", "unconfigure_start", "exit"),
]


def breakdown(fig: Figure, tmp: Path, pycache: Path) -> dict[str, float]:
    """One extra run with the bench_phases plugin: seconds spent in each phase of pytest."""
    out = tmp / "phases.json"
    out.unlink(missing_ok=True)
    STATS.reset()
    env = child_env(pycache, PYTHONPATH=str(Path(__file__).resolve().parent), BENCH_PHASES_OUT=str(out))
    res = run_once([*fig.args, "-p", "bench_phases"], fig.cwd, env)
    end = time.time()
    if not out.exists():
        return {"total (wall)": res.wall_s}
    marks: dict[str, float] = json.loads(out.read_text(encoding="utf-8"))
    result = {name: marks[b] - marks[a] for name, a, b in PHASES if a in marks and b in marks}
    result["interpreter exit"] = end - marks["exit"]
    result["total (wall)"] = end - marks["spawn"]
    result["requests served"] = float(STATS.requests)
    if STATS.requests and "runtestloop_start" in marks:
        result["  loop start → 1st request"] = STATS.first - marks["runtestloop_start"]
        result["  1st request → last answer"] = STATS.last - STATS.first
        result["  last answer → loop end"] = marks["runtestloop_end"] - STATS.last
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    parser.add_argument("--checks", type=int, default=500, help="HTTP checks to run (default 500)")
    parser.add_argument("--collect", type=int, default=1000, help="checks to collect (default 1000)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON output (default bench/results.json)")
    opts = parser.parse_args()
    n, nc = opts.checks, opts.collect
    load_before = os.getloadavg()

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-http", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory(prefix="opsproof-bench-") as tmp_name:
            tmp = Path(tmp_name)
            pycache = tmp / "pycache"
            inv, inv_collect = tmp / "inventory.yaml", tmp / "inventory-collect.yaml"
            write_inventory(inv, base, n)
            write_inventory(inv_collect, base, nc)
            plain = tmp / "plain"
            plain.mkdir()
            urls = [f"{base}/s/{i}/health" for i in range(n)]
            (plain / "test_plain_http.py").write_text(PLAIN_HTTP.format(urls=urls), encoding="utf-8")
            (plain / "test_plain_trivial.py").write_text(PLAIN_TRIVIAL.format(n=nc), encoding="utf-8")

            quiet = ["-q", "-p", "no:cacheprovider", *DEV_PLUGINS_OFF]
            ops = ["smoke/test_http.py::test_health", *quiet, "--opsproof-record", str(tmp / "results.jsonl")]
            ops_run = [*ops, "--inventory", str(inv)]
            ops_collect = [*ops, "--collect-only", "--inventory", str(inv_collect)]
            plain_run = ["test_plain_http.py", *quiet, *PLAIN_PLUGINS_OFF]
            plain_collect = ["test_plain_trivial.py", *quiet, *PLAIN_PLUGINS_OFF, "--collect-only"]
            root, pl = str(ROOT), str(plain)
            figs = [
                Figure("opsproof", f"opsproof, {n} checks, default concurrency (32)", ops_run, root),
                Figure("plain", f"plain pytest, {n} checks one after another", plain_run, pl),
                Figure("opsproof_c1", "opsproof --opsproof-concurrency 1 (info)",
                       [*ops_run, "--opsproof-concurrency", "1"], root),
                Figure("plain_n2", "plain pytest -n 2 (info)", [*plain_run, "-n", "2"], pl),
                Figure("plain_n16", "plain pytest -n 16 (info)", [*plain_run, "-n", "16"], pl),
                Figure("collect_opsproof", f"opsproof --collect-only, {nc} checks", ops_collect, root),
                Figure("collect_plain", f"plain pytest --collect-only, {nc} trivial tests", plain_collect, pl),
            ]
            print("warming the bytecode cache (one test of each kind, untimed) …", flush=True)
            one = ["-k", "svc0000"]
            for args, cwd in [([*ops_run, *one], root), (ops_collect, root), ([*plain_run, *one], pl),
                              ([*plain_run, *one, "-n", "2"], pl), (plain_collect, pl)]:
                run_once(args, cwd, child_env(pycache))
            for i in range(opts.repeat):  # rounds, so a change of background load hits every figure alike
                print(f"round {i + 1}/{opts.repeat} …", flush=True)
                for fig in figs:
                    measure_once(fig, pycache)
            print("phase breakdowns (one extra run each, with -p bench_phases) …", flush=True)
            phases = {f.name: breakdown(f, tmp, pycache) for f in figs
                      if f.name in ("opsproof", "collect_opsproof", "collect_plain")}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    by = {f.name: f for f in figs}
    ops_, plain_, coll, plain_coll = by["opsproof"], by["plain"], by["collect_opsproof"], by["collect_plain"]
    speedup = plain_.median_s / ops_.median_s
    targets = [
        (f"opsproof wall, {n} checks", f"{ops_.median_s:.2f} s", f"< {TARGET_WALL_S:.0f} s",
         ops_.ok and ops_.median_s < TARGET_WALL_S),
        ("speed-up vs plain serial", f"{speedup:.1f}x", f">= {TARGET_SPEEDUP:.0f}x",
         ops_.ok and plain_.ok and speedup >= TARGET_SPEEDUP),
        # what collecting the checks costs: opsproof's --collect-only wall minus plain pytest's for as many
        # trivial tests (the interpreter and pytest start-up both pay); the absolute wall is printed as info
        (f"collect {nc} checks (cost over plain pytest)", f"{coll.median_s - plain_coll.median_s:.2f} s",
         f"< {TARGET_COLLECT_S:.0f} s", coll.ok and coll.median_s - plain_coll.median_s < TARGET_COLLECT_S),
    ]

    print(f"\n{'figure':<18} {'wall s':>7} {'min s':>6} {'pytest s':>8} {'cpu s':>6} {'reqs':>5} {'peak':>5}  what")
    for f in figs:
        rep = f"{statistics.median(f.pytest_reported_s):.2f}" if f.pytest_reported_s else "-"
        flag = "" if f.ok else "  [NONZERO EXIT]"
        print(f"{f.name:<18} {f.median_s:7.2f} {f.min_s:6.2f} {rep:>8} {statistics.median(f.cpu_s):6.2f} "
              f"{f.requests:5d} {f.peak_concurrency:5d}  {f.what}{flag}")
    names = list(phases)
    print(f"\n{'phase, s':<30}" + "".join(f"{name:>18}" for name in names))
    for phase in dict.fromkeys(k for p in phases.values() for k in p):
        cells = [phases[name].get(phase) for name in names]
        digits = 0 if phase == "requests served" else 3
        print(f"{phase:<30}" + "".join(f"{c:18.{digits}f}" if c is not None else f"{'-':>18}" for c in cells))
    print()
    for label, got, want, passed in targets:
        print(f"{'PASS' if passed else 'FAIL'}  {label}: {got} (target {want})")
    print(f"info  collect {nc} checks, absolute wall: {coll.median_s:.2f} s "
          f"(plain pytest: {plain_coll.median_s:.2f} s)")
    if coll.pytest_reported_s:  # starts at pytest_sessionstart: no startup, no imports, no inventory loading
        reported = statistics.median(coll.pytest_reported_s)
        print(f"info  pytest's own 'collected in' for {nc} checks: {reported:.2f} s "
              f"({'under' if reported < TARGET_COLLECT_S else 'over'} {TARGET_COLLECT_S:.0f} s; excludes startup, "
              "plugin imports and pytest_configure, where opsproof loads the inventory)")

    report = json.dumps({
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "config": {"checks": n, "collect": nc, "repeat": opts.repeat, "server_delay_s": DELAY_S},
        "figures": {f.name: {**asdict(f), "median_s": round(f.median_s, 3), "min_s": round(f.min_s, 3),
                             "cpu_median_s": round(statistics.median(f.cpu_s), 3)}
                    for f in figs},
        "phases_s": {name: {k: round(v, 3) for k, v in p.items()} for name, p in phases.items()},
        "speedup_vs_plain": round(speedup, 2),
        "targets": [{"target": t, "measured": g, "goal": w, "pass": p} for t, g, w, p in targets],
    }, indent=2)
    opts.out.write_text(report.replace(tmp_name, "$TMP") + "\n", encoding="utf-8")  # the folder is gone by now
    print(f"\nwritten: {opts.out}")
    return 0 if all(p for *_, p in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
