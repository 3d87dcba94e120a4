"""Readiness report at fleet size: 5,000 records (4,950 passing checks, 50 failing, a drill, an experiment, a load
run) → `opsproof report`; the HTML's size, the time to build it (a fresh `python -m opsproof.cli report` process,
median of --repeat), and Chromium's time to paint it (headless `--screenshot`, browser start included: an upper
bound of first paint). Goals (issue 13): HTML < 5 MB, built < 2 s, painted < 2 s.

    .venv/bin/python bench/bench_report.py [--records 5000] [--repeat 3] [--out bench/report_results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "unit" / "data" / "report"


def evidence(root: Path, count: int) -> None:
    template = json.loads((DATA / "smoke.jsonl").read_text().splitlines()[0])
    (root / "runs").mkdir(parents=True)
    with (root / "runs" / "fleet.jsonl").open("w") as out:
        for i in range(count - 14):  # + 8 drill phases, 2 chaos records, 4 load thresholds
            failing = i % 100 == 0
            out.write(json.dumps({**template, "target": f"http[svc-{i}]", "test": f"smoke/test_http.py::t[{i}]",
                                  "verdict": "fail" if failing else "pass", "ok": not failing,
                                  "observed": "unreachable (ConnectError)" if failing else template["observed"]})
                      + "\n")
    for folder, name in (("drills", "drill.json"), ("chaos", "chaos.json"), ("load", "load.json")):
        (root / folder).mkdir()
        shutil.copy(DATA / name, root / folder / name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "report_results.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opsproof-bench-report-") as tmp:
        root = Path(tmp) / "reports"
        evidence(root, args.records)
        builds, paints, cpus = [], [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "opsproof.cli", "report", "--out", str(root)], cwd=REPO,
                                  capture_output=True, text=True, timeout=120)
            builds.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            assert done.returncode == 1, done.stdout + done.stderr  # 50 failing checks: no-go
        page = root / "readiness" / "readiness.html"
        chromium = shutil.which("chromium")
        for _ in range(args.repeat if chromium else 0):
            started = time.perf_counter()
            subprocess.run([chromium or "", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1300,1500",
                            f"--screenshot={Path(tmp) / 'shot.png'}", page.as_uri()], capture_output=True,
                           timeout=120, check=True)
            paints.append(time.perf_counter() - started)
        figures = {"records": args.records, "html_bytes": page.stat().st_size,
                   "md_bytes": (root / "readiness" / "readiness.md").stat().st_size,
                   "json_bytes": (root / "readiness" / "readiness.json").stat().st_size,
                   "build_s": builds, "build_median_s": statistics.median(builds), "build_cpu_s": cpus,
                   "build_cpu_median_s": statistics.median(cpus),
                   "paint_s": paints, "paint_median_s": statistics.median(paints) if paints else None,
                   "nproc": os.cpu_count(), "load_avg": os.getloadavg(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                            time.gmtime())}
    print(f"{args.records} records: HTML {figures['html_bytes'] / 1e6:.2f} MB (goal < 5 MB), "
          f"built in {figures['build_median_s']:.2f} s (CPU {figures['build_cpu_median_s']:.2f} s; goal < 2 s), "
          "painted by headless Chromium in "
          + (f"{figures['paint_median_s']:.2f} s incl. browser start (goal < 2 s)" if paints else "— (no chromium)"))
    Path(args.out).write_text(json.dumps(figures, indent=1) + "\n")
    ok = figures["html_bytes"] < 5e6 and figures["build_median_s"] < 2 and (not paints or figures["paint_median_s"] < 2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
