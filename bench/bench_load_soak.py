"""Benchmark: the memory of a long Locust run with opsproof's plugin (issue #12's 10-minute soak).

Run by hand from the repository root:  .venv/bin/python bench/bench_load_soak.py [--seconds 600] [--every 10]

One Locust process, 20 FastHttpUsers with no wait (the highest rate one process sustains here) against the trivial
loopback server of bench_load.py, opsproof's plugin loaded; the Locust process's RSS sampled every ``--every``
seconds. The exact histograms are fixed-size (HdrHistogram counters, allocated up front): their memory is flat
whatever the sample count. The per-second series keeps one small histogram per second of the run, so it grows
linearly with the run's length — the figure says how much. k6 keeps every sample of a trend metric in memory
(its documented behaviour for end-of-test percentiles): at this rate that is 8 bytes × the request count, shown
beside for comparison. Writes bench/load_soak_results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_load import LOCUSTFILE, server

from opsproof.load import runner

ROOT = Path(__file__).resolve().parent.parent


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--bare", action="store_true", help="Locust without the plugin: the baseline it grows by")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server(slow=False) as host:
        folder = Path(tmp)
        (folder / "bench_locustfile.py").write_text(LOCUSTFILE)
        record = folder / "soak.raw.json"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPSPROOF_LOAD_RECORD": str(record),
               "BENCH_CPU": str(folder / "cpu.json")}
        files = str(folder / "bench_locustfile.py") + ("" if args.bare else f",{runner.PLUGIN}")
        cmd = [sys.executable, "-m", "locust", "-f", files, "--headless", "-u", "20", "-r", "20", "-t",
               f"{args.seconds}s", "--host", host, "--only-summary", "--stop-timeout", "1",
               "--csv", str(folder / "soak")]
        proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        began = time.monotonic()
        samples: list[dict[str, float]] = []
        while proc.poll() is None:
            kb = rss_kb(proc.pid)
            if kb is not None:
                samples.append({"t_s": round(time.monotonic() - began, 1), "rss_kb": kb})
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(args.every)
        with open(folder / "soak_stats.csv") as f:
            agg = {r["Name"]: r for r in csv.DictReader(f)}["Aggregated"]
        requests = int(agg["Request Count"])
        measured = {} if args.bare else json.loads(record.read_text())
    steady = [s for s in samples if s["t_s"] >= 30]  # after start-up and the users' ramp
    first, last = (steady[0], steady[-1]) if len(steady) >= 2 else (samples[0], samples[-1])
    growth_kb = last["rss_kb"] - first["rss_kb"]
    span = max(last["t_s"] - first["t_s"], 1e-9)
    tail = [s for s in samples if s["t_s"] >= samples[-1]["t_s"] - 300]  # the last 5 minutes
    result = {
        "at": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "seconds": args.seconds, "plugin": not args.bare,
        "requests": requests, "rps": round(float(agg["Requests/s"])),
        "rss_kb": {"after_30s": first["rss_kb"], "end": last["rss_kb"], "max": max(s["rss_kb"] for s in samples)},
        "growth_kb_per_minute": round(growth_kb / span * 60, 1),
        "last_5_min_growth_kb_per_minute": round((tail[-1]["rss_kb"] - tail[0]["rss_kb"])
                                                 / max(tail[-1]["t_s"] - tail[0]["t_s"], 1e-9) * 60, 1),
        "series_seconds": len(measured.get("series", [])),
        "k6_like_all_samples_mb": round(requests * 8 / 2**20, 1),  # one float64 per sample, nothing else counted
        "samples": samples,
    }
    (ROOT / "bench" / f"load_soak{'_bare' if args.bare else ''}_results.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
