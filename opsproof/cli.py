"""`opsproof …` — the command line: the sandbox and inventory validation."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from opsproof import output
from opsproof.chaos.context import ChaosError
from opsproof.chaos.experiment_file import ExperimentError
from opsproof.drill.tools import DrillError
from opsproof.inventory import Inventory, InventoryError, load
from opsproof.redact import Redactor, mask_client_logs
from opsproof.sandbox.control import Sandbox
from opsproof.sandbox.process import SandboxError


def _open_sandbox(args: argparse.Namespace) -> Sandbox:
    """The provider asked for (``--provider``), else the one the state folder records, else processes."""
    profile = getattr(args, "profile", None)
    sandbox = Sandbox(args.dir, profile=profile)
    recorded = sandbox.meta.get("provider", "process") if sandbox.meta else None
    provider = args.provider or recorded or "process"
    if recorded and provider != recorded:
        raise SandboxError(f"{sandbox.dir} holds a sandbox of the {recorded} provider: take it down first "
                           f"(opsproof sandbox down --dir {sandbox.dir}), or use another --dir")
    if provider == "docker":
        from opsproof.sandbox.docker_provider import DockerSandbox

        if profile:
            raise SandboxError("--profile runs on the process provider only (the profile's services — the "
                               "Kubernetes API emulator, Celery workers — are not in the sandbox image). "
                               "Fix: drop --provider docker")

        return DockerSandbox(args.dir)
    return sandbox


def _sandbox(args: argparse.Namespace) -> int:
    sandbox = _open_sandbox(args)
    if args.action == "up":
        path = sandbox.up()
        print(f"sandbox up ({getattr(sandbox, 'provider', 'process')}): {sandbox.dir}")
        for name, state in sandbox.status().items():
            print(f"  {name:<18} {state}")
        profile = sandbox.profile
        if profile is None:
            print(f"inventory: {path}\nrun: pytest smoke --inventory {path}   (or just: pytest smoke)")
        else:
            from opsproof.sandbox import profile_setup

            env = sandbox.dir / profile_setup.ENV_FILE
            print(f"profile {profile.name} ({profile.description}): {env} (mode 0600; secrets masked here)")
            for line in profile_setup.shown_env(sandbox, profile):
                print(f"  {line}")
            for check, why in profile.not_emulated.items():
                print(f"  not emulated: {check} ({why})")
            for example in profile.example.split():
                print(f"run: set -a; . {env}; set +a; pytest checks/post_deploy --inventory {example}")
    elif args.action == "down":
        sandbox.down()
        kind = "container, network or volume" if getattr(sandbox, "provider", "") == "docker" else "process"
        print(f"sandbox down: {sandbox.dir} (no {kind} left)")
    else:
        from opsproof.chaos import faultjournal

        states = sandbox.status()
        for name, state in states.items():
            print(f"  {name:<18} {state}")
        left = faultjournal.entries(faultjournal.location(sandbox.dir))
        if left:
            faults = "; ".join(str(e.get("fault")) for e in left)
            print(f"chaos journal: {len(left)} fault(s) not rolled back ({faults}). "
                  f"Fix: opsproof chaos recover --sandbox-dir {sandbox.dir}")
        return 0 if sandbox.healthy() and not left else 3
    return 0


def _validate(args: argparse.Namespace) -> int:
    from opsproof.governance import WaiverError, load_waivers
    from opsproof.input_warnings import waiver_warnings

    try:
        inv = load(args.inventory)
        waivers = load_waivers(args.waivers) if args.waivers else []
    except (InventoryError, WaiverError) as e:
        print(f"opsproof: {e}", file=sys.stderr)
        return 4  # a usage error, as pytest reports the same file
    print(f"{args.inventory}: environment {inv.environment}, {inv.count()} targets — valid")
    if args.waivers:
        print(f"{args.waivers}: {len(waivers)} waiver(s) — valid")
    for warning in waiver_warnings(waivers, args.waivers, date.today()):
        print(f"opsproof: warning: {warning}", file=sys.stderr)
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from opsproof import baseline
    from opsproof.result import Verdict

    inventory = load(args.inventory)
    out = output.root(args.out)
    if args.action == "capture":
        document = baseline.capture(inventory, args.label)
        path = baseline.save(document, out)
        failing = [k for k, r in document["results"].items() if r["verdict"] != Verdict.PASS]
        print(f"baseline {args.label!r} of {inventory.environment}: {len(document['results'])} checks → {path}")
        if failing:
            print(f"note: {len(failing)} check(s) were not passing at capture: {', '.join(failing)}")
        return 0
    before = baseline.load(args.label, out)
    changes = baseline.compare(before, baseline.capture(inventory, f"{args.label}-after"), inventory.tolerances)
    print(baseline.render(changes, args.label))
    return 0 if all(c.ok for c in changes) else 1


def _entry(inventory: Inventory, name: str | None) -> list[str]:
    from opsproof.drill import drillable

    names = drillable(inventory)
    if name is not None:
        if name not in names:
            raise InventoryError(f"{inventory.source}: no backups entry {name!r} with postgres: or redis:"
                                 f" (have: {', '.join(names) or 'none'}). Fix: pass one of them with --target")
        return [name]
    if not names:
        raise InventoryError(f"{inventory.source}: no backups entry names a datastore. "
                             "Fix: add backups: {NAME: {postgres: main, directory: …}}")
    return names


def _backup(args: argparse.Namespace) -> int:
    from opsproof.drill import backup, interruptible

    inventory = load(args.inventory)
    redact = Redactor(inventory.secrets)
    for name in _entry(inventory, args.target):
        cfg = inventory.backups[name]
        out = Path(args.out or cfg.directory or "")
        if not (args.out or cfg.directory):
            raise InventoryError(f"backups.{name} has no directory. Fix: pass --out DIR or add directory:")
        with interruptible():
            if cfg.postgres:
                source = inventory.postgres[cfg.postgres]
                pattern = backup.naming(name, cfg.pattern, cfg.directory, ".dump")
                path, manifest = backup.take_postgres(cfg.dsn or source.dsn, out, pattern, cfg.scratch.jobs,
                                                      f"postgres[{cfg.postgres}]", source.connect_timeout_s)
                rows = sum(t["rows"] for t in manifest["tables"].values())
                what = f"{len(manifest['tables'])} tables, {rows:,} rows, snapshot {manifest['snapshot']}"
            else:
                rsource = inventory.redis[str(cfg.redis)]
                pattern = backup.naming(name, cfg.pattern, cfg.directory, ".rdb")
                path, manifest = backup.take_redis(rsource.url, out, pattern, f"redis[{cfg.redis}]")
                what = f"{manifest['keys']:,} keys"
        print(redact(f"backups[{name}]: {path} ({manifest['size_bytes']:,} bytes, {what}, "
                     f"{manifest.get('duration_s', 0):.2f} s)\n  manifest: {backup.manifest_path(path)}"))
    return 0


def _drill(args: argparse.Namespace) -> int:
    from opsproof.drill import interruptible, open_drill

    inventory = load(args.inventory)
    redact = Redactor(inventory.secrets)
    failed = False
    for name in _entry(inventory, args.target):
        with interruptible():
            drill = open_drill(inventory, name, output.drills(output.root(args.out)),
                               allow_destructive=args.allow_destructive)
            try:
                drill.run()
            finally:
                drill.close()
                print(redact(drill.summary()))
        failed |= drill.verdict() != "PASS"
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "chaos" and not any(a.startswith("-") for a in extra):
        args.experiments += [Path(a) for a in extra]  # options anywhere: `chaos run --inventory X FILE`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    mask_client_logs()
    try:
        code: int = args.func(args)
        return code
    except (InventoryError, SandboxError, DrillError, FileNotFoundError, ChaosError, ExperimentError) as e:
        print(f"opsproof: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("opsproof: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """Every ``opsproof`` subcommand and its options (examples' command lines are checked against it)."""
    parser = argparse.ArgumentParser(prog="opsproof", description="Operational verification and chaos suite.")
    sub = parser.add_subparsers(dest="command", required=True)
    sb = sub.add_parser("sandbox", help="real services on loopback to run the suites against")
    sb.add_argument("action", choices=["up", "down", "status"])
    sb.add_argument("--dir", default=None, help="state folder (default $OPSPROOF_SANDBOX_DIR or /tmp/…)")
    sb.add_argument("--provider", choices=["process", "docker"], default=None,
                    help="processes from Debian's packages (default), or containers of the sandbox image "
                         "(down/status: the one the state folder records)")
    sb.add_argument("--profile", default=None, metavar="NAME",
                    help="up: add the shape of one runbook's system (opsproof/sandbox/profiles/NAME.yaml, e.g. signx) "
                         "and write DIR/profile.env, the variables that point its example inventory at the sandbox")
    sb.set_defaults(func=_sandbox)
    va = sub.add_parser("validate", help="validate an inventory file without contacting anything")
    va.add_argument("inventory")
    va.add_argument("--waivers", metavar="FILE", default=None,
                    help="also validate a waivers file (as pytest --waivers)")
    va.set_defaults(func=_validate)
    bl = sub.add_parser("baseline", help="capture every check's observation before a maintenance window, or diff")
    bl.add_argument("action", choices=["capture", "diff"])
    bl.add_argument("--label", required=True, help="e.g. pre-maint")
    bl.add_argument("--inventory", required=True)
    output.add_option(bl)  # baselines in OUT/baselines
    bl.set_defaults(func=_baseline)
    bk = sub.add_parser("backup", help="a consistent backup (pg_dump in one snapshot / RDB) plus its manifest")
    bk.add_argument("--inventory", required=True)
    bk.add_argument("--target", default=None, help="the backups entry (default: every one naming a datastore)")
    bk.add_argument("--out", default=None, help="folder (default: the entry's directory)")
    bk.set_defaults(func=_backup)
    dr = sub.add_parser("drill", help="DR drill outside pytest (cron, CronJob): restore, verify, RTO/RPO")
    dr.add_argument("--inventory", required=True)
    dr.add_argument("--target", default=None, help="the backups entry (default: every one naming a datastore)")
    output.add_option(dr)  # evidence in OUT/drills
    dr.add_argument("--allow-destructive", action="store_true",
                    help="on a production: true environment, let scratch.dsn create and drop a database there")
    dr.set_defaults(func=_drill)
    from opsproof.chaos.cli import register as register_chaos

    register_chaos(sub)
    from opsproof.load.cli import register as register_load

    register_load(sub)
    from opsproof.report.cli import register as register_report

    register_report(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
