"""Benchmark: the cost and the exactness of opsproof's Locust plugin.

Run by hand from the repository root:  .venv/bin/python bench/bench_load.py  [--seconds 10] [--rounds 2]

1. Throughput: the same locustfile (one FastHttpUser class, 20 users, no wait) against a trivial loopback server
   (asyncio, a fixed keep-alive answer: it outruns one Locust process), one Locust process, with and without
   opsproof's plugin, in alternating rounds (a change in the machine's load hits both alike). Figure: Locust's own
   Aggregated "Requests/s"; gate: with the plugin ≥ 95 % of bare Locust (the median of the rounds).
2. Exactness: one run with the plugin against a server whose answers take a random 1–300 ms (log-uniform), every
   sample also written to a side log (OPSPROOF_LOAD_RAW): opsproof's p50/p95/p99 against the raw samples' own
   (HdrHistogram's rank rule), and Locust's own percentiles for the same run with their error.
3. Memory: the RSS one request name's exact histogram costs (one more Tally), and that recording a million
   samples into it adds nothing; the per-second series' cost per second.

Writes bench/load_results.json; exit 1 if a gate fails.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from opsproof.load import runner  # noqa: E402
from opsproof.load.histogram import Tally  # noqa: E402
from opsproof.load.series import Series  # noqa: E402

LOCUSTFILE = '''
import json, os
from locust import FastHttpUser, constant, events, task

_cpu = {}

@events.test_start.add_listener
def _start(**_):  # the process's CPU while the test runs: start-up and shut-down (imports, the record) left out
    t = os.times()
    _cpu["start"] = t.user + t.system

@events.test_stop.add_listener
def _stop(**_):
    t = os.times()
    with open(os.environ["BENCH_CPU"], "w") as f:
        json.dump({"cpu_s": t.user + t.system - _cpu["start"]}, f)

class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/x", name="x")
'''
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Fixed(asyncio.Protocol):
    slow = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            if self.slow:  # 1–300 ms, log-uniform: a spread every percentile of which means something
                delay = math.exp(random.uniform(math.log(0.001), math.log(0.3)))
                asyncio.get_running_loop().call_later(delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(ANSWER)  # type: ignore[attr-defined]


@contextmanager
def server(slow: bool) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    proto = type("P", (_Fixed,), {"slow": slow})
    srv = loop.run_until_complete(loop.create_server(proto, "127.0.0.1", 0))
    port = srv.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def locust(folder: Path, host: str, seconds: int, plugin: bool, tag: str, raw: Path | None = None) -> dict[str, Any]:
    lf = folder / "bench_locustfile.py"
    lf.write_text(LOCUSTFILE)
    out = folder / tag
    files = f"{lf},{runner.PLUGIN}" if plugin else str(lf)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("OPSPROOF_LOAD_RAW", None)
    if plugin:
        env["OPSPROOF_LOAD_RECORD"] = f"{out}.raw.json"
    if raw is not None:
        env["OPSPROOF_LOAD_RAW"] = str(raw)
    cmd = [sys.executable, "-m", "locust", "-f", files, "--headless", "-u", "20", "-r", "20", "-t", f"{seconds}s",
           "--host", host, "--only-summary", "--csv", str(out), "--stop-timeout", "1"]
    env["BENCH_CPU"] = f"{out}.cpu.json"
    subprocess.run(cmd, cwd=folder, capture_output=True, timeout=seconds + 60, check=True, env=env)
    cpu_s = float(json.loads(Path(f"{out}.cpu.json").read_text())["cpu_s"])
    with open(f"{out}_stats.csv") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    agg = rows["Aggregated"]
    result: dict[str, Any] = {"rps": float(agg["Requests/s"]), "requests": int(agg["Request Count"]),
                              "cpu_s": cpu_s, "cpu_us_per_request": 1e6 * cpu_s / max(int(agg["Request Count"]), 1),
                              "locust_pct_ms": {p: float(agg[f"{p}%"]) for p in ("50", "95", "99")}}
    if plugin:
        record = json.loads(Path(f"{out}.raw.json").read_text())
        tally = Tally.decode(record["names"]["x"])
        result["opsproof_pct_us"] = {p: tally.latency_us("p", float(p)) for p in ("50", "95", "99")}
        result["opsproof_requests"] = tally.requests
        result["cpu"] = record["cpu"]["this"]
    return result


def _rank(samples: list[int], pct: float) -> int:
    ordered = sorted(samples)
    return ordered[max(int(pct * len(ordered) / 100 + 0.5), 1) - 1]


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory() -> dict[str, Any]:
    keep = [Tally() for _ in range(2)]  # warm the allocator
    before = rss_kb()
    names = [Tally() for _ in range(10)]
    for t in names:
        t.record(1.0, False)  # touch: counters are allocated zeroed, pages come on first write of each
    ten = rss_kb() - before
    one = names[0]
    before = rss_kb()
    rng = random.Random(1)
    for _ in range(1_000_000):
        one.record(rng.uniform(0.5, 2_000.0), False)
    grown = rss_kb() - before
    before = rss_kb()
    series = Series()
    for s in range(1000):
        series.record(1000.0 + s, 5_000, False)
    per_second = (rss_kb() - before) / 1000
    del keep
    return {"per_name_kb": round(ten / 10), "after_1M_samples_kb": grown, "per_second_series_kb": round(per_second, 1)}


HOOK_COST = """
import time, timeit
from locust import events
args = dict(request_type="GET", name="x", response_time=2.5, response_length=10, exception=None, context={},
            start_time=time.time(), url="/x", response=None)
def cost():
    return min(timeit.repeat(lambda: events.request.fire(**args), number=100_000, repeat=7)) / 100_000 * 1e6
bare = cost()  # Locust's dispatch with no listener
import opsproof.load.locust_plugin  # noqa: E402  (registers its listeners)
print(cost() - bare)
"""


def hook_cost_us() -> float:
    """CPU the plugin adds to each request: Locust's request event fired with and without its listener, best of 7
    (a microbenchmark of one core: a busy machine can only make it slower, not faster)."""
    done = subprocess.run([sys.executable, "-c", HOOK_COST], capture_output=True, text=True, check=True, cwd=ROOT,
                          timeout=300)
    return float(done.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each throughput run")
    parser.add_argument("--rounds", type=int, default=2, help="bare + plugin pairs")
    args = parser.parse_args()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nproc": os.cpu_count(),
                               "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="opsproof-bench-load-") as tmp:
        folder = Path(tmp)
        with server(slow=False) as host:
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], "plugin": []}
            for i in range(args.rounds):
                for kind in ("bare", "plugin"):
                    runs[kind].append(locust(folder, host, args.seconds, kind == "plugin", f"{kind}{i}"))
                    print(f"round {i + 1} {kind:>6}: {runs[kind][-1]['rps']:,.0f} requests/s, "
                          f"{runs[kind][-1]['cpu_us_per_request']:.0f} µs CPU each", flush=True)
        bare = statistics.median(r["rps"] for r in runs["bare"])
        plugged = statistics.median(r["rps"] for r in runs["plugin"])
        cpu_bare = statistics.median(r["cpu_us_per_request"] for r in runs["bare"])
        cpu_plugged = statistics.median(r["cpu_us_per_request"] for r in runs["plugin"])
        results["throughput"] = {"bare_rps": bare, "plugin_rps": plugged, "ratio": plugged / bare, "runs": runs,
                                 "bare_cpu_us_per_request": cpu_bare, "plugin_cpu_us_per_request": cpu_plugged}
        raw = folder / "raw"
        raw.mkdir()
        with server(slow=True) as host:
            exact = locust(folder, host, args.seconds, True, "exact", raw)
        samples = [int(line.split("\t")[1]) for p in raw.glob("*.tsv") for line in p.read_text().splitlines()]
        results["exactness"] = {"requests": len(samples), "rows": [
            {"pct": p, "raw_us": _rank(samples, float(p)), "opsproof_us": exact["opsproof_pct_us"][p],
             "locust_ms": exact["locust_pct_ms"][p],
             "locust_error_pct": round(100 * (exact["locust_pct_ms"][p] * 1000 - _rank(samples, float(p)))
                                       / _rank(samples, float(p)), 2)} for p in ("50", "95", "99")]}
    results["memory"] = memory()
    hook = hook_cost_us()
    results["plugin_hook_us"] = hook
    results["derived_ratio"] = cpu_bare / (cpu_bare + hook)  # a CPU-bound generator: requests/s ∝ 1 / CPU each
    results["load_after"] = os.getloadavg()
    ratio_ok = results["throughput"]["ratio"] >= 0.95
    h = Tally().histogram  # exact below 262,144 µs; above, the same HdrHistogram counter (5 significant digits)
    exact_ok = all(h.get_lowest_equivalent_value(r["raw_us"]) == h.get_lowest_equivalent_value(int(r["opsproof_us"]))
                   for r in results["exactness"]["rows"]) and \
        results["exactness"]["requests"] == exact["opsproof_requests"]
    print(f"\nthroughput, one Locust process, 20 users: bare {bare:,.0f}/s, with opsproof's plugin {plugged:,.0f}/s "
          f"({100 * results['throughput']['ratio']:.1f} %, gate ≥ 95 %) {'PASS' if ratio_ok else 'FAIL'}")
    print(f"CPU per request (Locust's process while the test ran; robust to a busy machine): bare {cpu_bare:.0f} µs, "
          f"with the plugin {cpu_plugged:.0f} µs (+{cpu_plugged - cpu_bare:.0f} µs, "
          f"{100 * (cpu_plugged / cpu_bare - 1):+.1f} %): at most {1e6 / cpu_bare:,.0f} and {1e6 / cpu_plugged:,.0f} "
          "requests/s per core")
    print(f"the plugin's own cost: {hook:.1f} µs of CPU per request (its request listener, best of 7): with "
          f"bare Locust's {cpu_bare:.0f} µs each, {100 * results['derived_ratio']:.1f} % of bare Locust's rate")
    print(f"exactness over {results['exactness']['requests']:,} samples (1–300 ms):")
    for r in results["exactness"]["rows"]:
        print(f"  p({r['pct']}): raw {r['raw_us']:,} µs  opsproof {r['opsproof_us']:,.0f} µs  Locust "
              f"{r['locust_ms']:g} ms ({r['locust_error_pct']:+.2f} %)")
    print(f"  {'PASS' if exact_ok else 'FAIL'}: opsproof equals the raw samples (to the µs below 262 ms, to its "
          "HdrHistogram counter above)")
    m = results["memory"]
    print(f"memory: {m['per_name_kb']:,} kB per request name; +{m['after_1M_samples_kb']:,} kB after 1,000,000 "
          f"samples into one; per-second series {m['per_second_series_kb']:g} kB a second")
    (ROOT / "bench" / "load_results.json").write_text(json.dumps(results, indent=1))
    return 0 if ratio_ok and exact_ok else 1


if __name__ == "__main__":
    sys.exit(main())
