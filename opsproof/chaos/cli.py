"""``opsproof chaos run EXPERIMENT…``, ``opsproof chaos validate [EXPERIMENT…]`` and ``opsproof chaos recover``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from opsproof import output

EXPERIMENTS = Path("chaos") / "experiments"


def register(sub: Any) -> None:
    ch = sub.add_parser("chaos", help="chaos experiments: alerts fire in time, remediations work")
    ch.add_argument("action", choices=["run", "validate", "recover"],
                    help="recover: roll back every fault a run killed outright left (its fault journal lists them)")
    ch.add_argument("experiments", nargs="*", type=Path,
                    help=f"experiment files (default for validate: {EXPERIMENTS}/*.yaml)")
    ch.add_argument("--inventory", default=None, help="inventory (default: the sandbox's)")
    ch.add_argument("--sandbox-dir", default=None,
                    help="sandbox state folder (default $OPSPROOF_SANDBOX_DIR or /tmp/…)")
    ch.add_argument("--allow-destructive", action="store_true",
                    help="allow faults on an inventory marked production: true")
    output.add_option(ch)  # evidence in OUT/chaos
    ch.add_argument("--load", default=None, metavar="SCENARIO",
                    help="run: each experiment with this load scenario of the inventory in the background; the "
                    "evidence shows what users felt from fault to recovery, and the scenario's thresholds gate it")
    ch.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                    help="validate: a python provider module outside opsproof's chaos extension that may be imported "
                    "(repeatable)")
    ch.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.action == "validate":
        return _validate(args)
    if args.action == "recover":
        return _recover(args)
    return _run(args)


def _recover(args: argparse.Namespace) -> int:
    """Roll back what the fault journal lists (a run killed outright): the sandbox's, or the user's journal."""
    from opsproof.chaos import faultjournal
    from opsproof.shape import default_dir

    places = [args.sandbox_dir] if args.sandbox_dir else [default_dir(), None]
    code, total = 0, 0
    for place in places:
        path = faultjournal.location(place)
        recovery = faultjournal.recover(path)
        total += len(recovery.rolled_back)
        for line in recovery.rolled_back:
            print(f"rolled back: {line}")
        for line in recovery.running:
            print(f"left to its run, still in progress: {line}")
        for line in recovery.problems:
            print(f"NOT rolled back: {line}", file=sys.stderr)
        code = code or (1 if recovery.problems else 0)
    print(f"rolled back {total} fault(s)" if total else "nothing to recover: no fault journal lists a fault left")
    return code


def has_sandbox(args: argparse.Namespace) -> bool:
    """Whether a run with these options acts on an opsproof sandbox: the sandbox's own inventory (the default, or
    a file with the sandbox's sandbox.json beside it), or a --sandbox-dir of one."""
    if args.sandbox_dir:
        return (Path(args.sandbox_dir) / "sandbox.json").exists()
    return not args.inventory or (Path(args.inventory).parent / "sandbox.json").exists()


def _validate(args: argparse.Namespace) -> int:
    from opsproof.chaos.validate import validate
    from opsproof.inventory import load

    paths = args.experiments or sorted(EXPERIMENTS.glob("*.yaml"))
    if not paths:
        print(f"opsproof: no experiment found in {EXPERIMENTS}", file=sys.stderr)
        return 2
    inventory = load(args.inventory) if args.inventory else None
    results = validate(paths, inventory, args.allow_module, sandbox=has_sandbox(args))
    for path, problems in results.items():
        print(f"{path}: {'valid' if not problems else 'INVALID'}")
        for problem in problems:
            print(f"  - {problem}")
    against = args.inventory or "the sandbox's inventory shape"
    bad = sum(1 for p in results.values() if p)
    print(f"{len(results)} experiment(s) checked against {against}: {bad} invalid (nothing was injected)")
    return 1 if bad else 0


def _run(args: argparse.Namespace) -> int:
    from opsproof.chaos import runner

    if not args.experiments:
        print("opsproof: name the experiment(s) to run", file=sys.stderr)
        return 2
    from opsproof.chaos.signals import Interrupted

    code = 0
    for path in args.experiments:  # one at a time, in the main thread (Chaos Toolkit's signal handlers)
        try:
            if args.load:
                from opsproof.load import runner as load_runner
                from opsproof.load import underchaos

                try:
                    loaded = underchaos.run(path, args.load, inventory=args.inventory, sandbox_dir=args.sandbox_dir,
                                            allow_destructive=args.allow_destructive, out=args.out)
                except load_runner.LoadError as exc:
                    print(f"opsproof: {exc}", file=sys.stderr)
                    return 2 if isinstance(exc, load_runner.LoadRefused) else 1
                print(loaded.summary())
                outcome = loaded.outcome
                code = code or (0 if loaded.ok else 1)
                if outcome.status == "interrupted":
                    return 130
                continue
            outcome = runner.run(path, inventory=args.inventory, sandbox_dir=args.sandbox_dir,
                                 allow_destructive=args.allow_destructive, out=args.out)
        except Interrupted as stop:  # rolled back: the remaining experiments do not run
            if isinstance(stop.outcome, runner.Outcome):
                print(stop.outcome.summary())
            print(f"opsproof: {stop}", file=sys.stderr)
            return 130
        print(outcome.summary())
        if outcome.status == "interrupted":
            return 130
        code = code or (0 if outcome.ok else 1)
    return code
