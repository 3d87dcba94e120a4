"""``opsproof report``: the readiness report of a change, from the evidence already recorded.

Exit status: 0 = go, 1 = no-go, 2 = usage error (a record or file it cannot use, a bad option) — so a pipeline
gates on it. It reads files only; it never contacts a target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from opsproof import output
from opsproof.report.collect import collect
from opsproof.report.judge import AREAS, decide
from opsproof.report.policy import Policy, PolicyError, default_policy, load_policy
from opsproof.report.records import RecordError
from opsproof.report.render import Report, render_all
from opsproof.result import Severity


def register(sub: Any) -> None:
    rp = sub.add_parser("report", help="the readiness report of a change: go/no-go from every suite's evidence")
    rp.add_argument("paths", nargs="*", type=Path,
                    help="output folders or evidence files (default: the output root, OUT)")
    rp.add_argument("--inventory", default=None, help="report on this inventory's environment only (its secrets "
                    "are masked in the report)")
    rp.add_argument("--since", default=None, help="only evidence recorded at or after this time (ISO 8601, UTC "
                    "if no zone: 2026-12-01T00:00) or this long ago (36h, 30d)")
    rp.add_argument("--previous", default=None, metavar="FILE", help="the previous report's readiness.json: "
                    "show what changed since (new failures, fixed, RTO and p95 up or down)")
    rp.add_argument("--change", default=None, help="the change's ID, shown on the report")
    rp.add_argument("--policy", default=None, metavar="FILE", help="the readiness policy (YAML): required areas, "
                    "evidence ages, alerts to prove, fail_on; without it: --require and --fail-on")
    rp.add_argument("--fail-on", default=None, choices=[s.value for s in Severity],
                    help="without --policy: a failed check of this severity or higher makes it no-go (default: high)")
    rp.add_argument("--require", default=None, help="without --policy: areas that must have evidence, "
                    f"comma-separated: {', '.join(AREAS)} (default: gates)")
    output.add_option(rp)  # OUT: where the evidence is read from by default
    rp.add_argument("--report-dir", default=None, help="where readiness.html/.md/.json are written "
                    "(default: OUT/readiness)")
    rp.set_defaults(func=run)


def since_time(text: str | None, now: dt.datetime | None = None) -> float | None:
    if not text:
        return None
    now = now or dt.datetime.now(dt.UTC)
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return now.timestamp() - float(text[:-1]) * units[text[-1]]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"--since {text!r}: expected an ISO 8601 time (2026-12-01T00:00) or an age (36h, 30d)") \
            from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def run(args: argparse.Namespace) -> int:
    from opsproof.inventory import InventoryError, load
    from opsproof.redact import Redactor

    environment, redact = None, Redactor()
    if args.inventory:
        try:
            inventory = load(args.inventory)
        except InventoryError as exc:
            print(f"opsproof: {exc}", file=sys.stderr)
            return 2
        environment, redact = inventory.environment, Redactor(inventory.secrets)
    root = output.root(args.out)
    try:
        policy = _policy(args)
        previous = _previous(args.previous)
        evidence = collect(args.paths or [root], environment, since_time(args.since))
    except (RecordError, PolicyError) as exc:
        print(f"opsproof: {redact(str(exc))}", file=sys.stderr)
        return 2
    decision = decide(evidence.records, policy)
    where = Path(args.report_dir) if args.report_dir else root / "readiness"
    where.mkdir(parents=True, exist_ok=True)
    rendered = render_all(Report(decision, evidence, args.change, environment or _environment(evidence.records),
                                 previous), redact)
    for fmt, text in rendered.items():
        (where / f"readiness.{fmt}").write_text(text, encoding="utf-8")
    print(redact(f"opsproof: readiness {'GO' if decision.go else 'NO-GO'}"
                 f" ({len(evidence.records)} record(s) from {len(evidence.sources)} file(s))"))
    for reason in decision.reasons[:10]:
        print(redact(f"  - {reason}"))
    if len(decision.reasons) > 10:
        print(f"  … and {len(decision.reasons) - 10} more reasons (in the report)")
    for skipped in evidence.skipped:
        print(redact(f"  (skipped {skipped})"))
    print(f"opsproof: report written to {where}/readiness.html (.md, .json)")
    return 0 if decision.go else 1


def _previous(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    import json

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"--previous {path}: cannot be read as a report's JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != 1 or not isinstance(doc.get("results"), list):
        raise RecordError(f"--previous {path}: not the readiness.json of an opsproof report (schema 1, results)")
    return doc


def _policy(args: argparse.Namespace) -> Policy:
    if args.policy:
        if args.require or args.fail_on:
            raise PolicyError("--policy and --require/--fail-on: give one or the other (the policy file has both)")
        return load_policy(args.policy)
    require = tuple(a.strip() for a in (args.require or "gates").split(",") if a.strip())
    unknown = [a for a in require if a not in AREAS]
    if unknown:
        raise PolicyError(f"--require {','.join(unknown)}: not an area (areas: {', '.join(AREAS)})")
    return default_policy(Severity(args.fail_on or "high"), require)


def _environment(records: Any) -> str | None:
    names = sorted({r.environment for r in records if r.environment})
    return ", ".join(names) or None
