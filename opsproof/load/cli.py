"""``opsproof load --inventory X [SCENARIO…]``: the load suite outside pytest (a game day, a cron job)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from opsproof import output
from opsproof.inventory import load


def register(sub: Any) -> None:
    ld = sub.add_parser("load", help="Locust load scenarios of the inventory, gated on their thresholds")
    ld.add_argument("scenarios", nargs="*", help="scenario names (default: every one of the inventory's load:)")
    ld.add_argument("--inventory", required=True)
    ld.add_argument("--allow-destructive", action="store_true",
                    help="allow load on an inventory marked production: true")
    ld.add_argument("--worker", action="store_true",
                    help="run as one worker of a fleet: the scenario's Locust master (its workers: N) gives it users")
    ld.add_argument("--master-host", help="with --worker: the master's address")
    ld.add_argument("--master-port", type=int, help="with --worker: the master's port (default the scenario's)")
    output.add_option(ld)  # evidence in OUT/load
    ld.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Exit 0 when every threshold is met, 1 when one is breached, 3 when one has no verdict (and none failed),
    2 when a scenario could not run (unknown, refused, or Locust measured nothing)."""
    from opsproof.load import runner

    inv = load(args.inventory)
    names = args.scenarios or sorted(inv.load)
    unknown = [n for n in names if n not in inv.load]
    if unknown or not names:
        known = ", ".join(sorted(inv.load)) or "none: add a load: section"
        print(f"opsproof: no load scenario {', '.join(map(repr, unknown))} in {inv.source}. Known: {known}"
              if unknown else f"opsproof: {inv.source} has no load: scenarios", file=sys.stderr)
        return 2
    if args.worker:
        if len(names) != 1 or not args.master_host:
            print("opsproof: --worker runs one scenario: give its name and --master-host", file=sys.stderr)
            return 2
        try:
            runner.refuse_production(inv, names[0], args.allow_destructive)
        except runner.LoadError as e:
            print(f"opsproof: {e}", file=sys.stderr)
            return 2
        return runner.worker(inv, names[0], args.master_host, args.master_port)
    out = output.root(args.out)
    worst = 0
    for name in names:
        try:
            run = runner.run(inv, name, out, allow_destructive=args.allow_destructive)
        except runner.LoadError as e:
            print(f"opsproof: {e}", file=sys.stderr)
            return 2
        print(run.summary())
        print(f"evidence: {run.record_path}")
        worst = max(worst, {True: 0, None: 3, False: 4}[run.ok])
    return 1 if worst == 4 else worst
