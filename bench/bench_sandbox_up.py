"""`opsproof sandbox up` time per provider: processes vs docker (the image cached), and the image build itself.

Each round runs the real command in a subprocess (`opsproof sandbox up [--provider docker] --dir D`), timed from
spawn to exit (the inventory written: every service ready, the warm-up and the nightly backup done), then
`opsproof sandbox down` (also timed). Rounds alternate the providers, so a busy spell of the machine hits both.

The image not cached: building it is what a first docker up adds. The shared image is not removed here (other
runs on this daemon use it): ``--build`` builds the same package list under a different repository name — the
same debootstrap and import, cache of .debs included, as a first run on a machine with the .debs cached — and
removes that copy after.

Writes bench/sandbox_up_results.json. Run: .venv/bin/python bench/bench_sandbox_up.py [--rounds 3] [--build]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from opsproof.containers.images import SANDBOX, ImageSpec, docker_client, ensure_image  # noqa: E402


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPSPROOF_CONTAINER_LABELS": "org.opsproof.test=bench-sandbox-up"})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def round_of(provider: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"opsproof-bench-{provider}-") as parent:
        Path(parent).chmod(0o755)  # the postgres user must reach the process provider's folder
        state = str(Path(parent) / "sandbox")
        cli = [sys.executable, "-m", "opsproof.cli", "sandbox"]
        extra = ["--provider", "docker"] if provider == "docker" else []
        up = timed([*cli, "up", *extra, "--dir", state])
        down = timed([*cli, "down", "--dir", state])
    return {"up_s": round(up, 2), "down_s": round(down, 2)}


def build_once() -> dict[str, Any]:
    client = docker_client()
    spec = ImageSpec(packages=SANDBOX.packages, suite=SANDBOX.suite, mirror=SANDBOX.mirror,
                     repository="opsproof/bench-build")
    started = time.monotonic()
    reference = ensure_image(spec, client)
    took = time.monotonic() - started
    client.images.remove(reference, force=True)
    return {"image": reference, "build_s": round(took, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--build", action="store_true", help="also time one build of the sandbox image")
    args = parser.parse_args()
    ensure_image(SANDBOX)  # cached before the rounds: their figure is the cached case
    runs: dict[str, list[dict[str, float]]] = {"process": [], "docker": []}
    for n in range(args.rounds):
        for provider in ("process", "docker"):
            runs[provider].append(round_of(provider))
            print(f"round {n + 1} {provider}: {runs[provider][-1]}", flush=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()[0]},
        "at": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        "runs": runs,
        "median_up_s": {p: statistics.median(r["up_s"] for r in rs) for p, rs in runs.items()},
        "median_down_s": {p: statistics.median(r["down_s"] for r in rs) for p, rs in runs.items()},
    }
    if args.build:
        results["image_not_cached"] = build_once()
    (HERE / "sandbox_up_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
