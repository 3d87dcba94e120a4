#!/usr/bin/env bash
# Soak: N fresh clones of this repository's HEAD, `.ci/run` in each one after another; keeps every run's log and
# JUnit XML and prints the failures per test and the total pass/fail count.
#   bench/soak_ci.sh N [OUT]        (OUT defaults to /tmp/opsproof-soak-<time>)
#   bench/soak_ci.sh --parse OUT    (only the summary of runs already in OUT)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${1:-}" = --parse ]; then out="$2"; else
  n="${1:?usage: bench/soak_ci.sh N [OUT]}"; out="${2:-/tmp/opsproof-soak-$(date +%Y%m%d-%H%M%S)}"
  mkdir -p "$out"; head="$(git -C "$repo" rev-parse HEAD)"
  for i in $(seq 1 "$n"); do
    run="$out/run-$i"; rm -rf "$run/clone"; mkdir -p "$run"
    git clone -q "$repo" "$run/clone" && git -C "$run/clone" checkout -q "$head"
    start=$(date +%s)
    (cd "$run/clone" && CI=true bash .ci/run </dev/null) >"$run/log" 2>&1; echo $? >"$run/rc"
    cp "$run"/clone/reports/junit-*.xml "$run"/ 2>/dev/null
    echo "run $i: exit $(cat "$run/rc") in $(( $(date +%s) - start )) s ($run/log)"
    rm -rf "$run/clone"
  done
fi
python3 - "$out" <<'PY'
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

out = Path(sys.argv[1])
failures: Counter[str] = Counter()
runs = sorted(p for p in out.glob("run-*") if p.is_dir())
passed = failed = cases = 0
for run in runs:
    rc = (run / "rc").read_text().strip() if (run / "rc").exists() else "?"
    failed_run = rc != "0"
    for xml in sorted(run.glob("junit-*.xml")):
        for case in ET.parse(xml).getroot().iter("testcase"):
            cases += 1
            if case.find("failure") is not None or case.find("error") is not None:
                failures[f"{case.get('classname')}::{case.get('name')}"] += 1
    passed, failed = passed + (not failed_run), failed + failed_run
for test, count in failures.most_common():
    print(f"{count:3d} × {test}")
print(f"tests: {cases - sum(failures.values())} passed, {sum(failures.values())} failed (all runs)")
print(f"runs: {passed} passed, {failed} failed")
PY
