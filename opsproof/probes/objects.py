"""Backups in object storage (``backups.<name>.s3``): "the newest backup in the bucket is recent", "the bucket is
within its quota", "a lifecycle rule expires old backups" — `aws s3 ls s3://BUCKET/PREFIX --recursive | sort | tail
-1`, `aws s3 ls --summarize`, `aws s3api get-bucket-lifecycle-configuration`.

Read-only: ListObjectsV2 (paginated) and GetBucketLifecycleConfiguration, nothing else. Each check is bounded as a
whole by its object storage's ``timeout_s`` (a ``backups`` entry has no deadline of its own: its other checks read
files), however many pages it lists and however slowly the server answers.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
from collections.abc import Callable
from typing import Any

from opsproof.inventory import Backups, human_duration
from opsproof.inventory.objects import S3, human_size
from opsproof.probes import s3_client
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import within
from opsproof.result import Severity

Check = Callable[[Target[Backups], Connections], Outcome]


def _s3(cfg: Backups) -> S3:
    assert cfg.s3 is not None  # `applies` deselects entries without one
    return cfg.s3


def _client(target: Target[Backups], conns: Connections) -> Any:
    return conns.s3(target.id, _s3(target.config))


def _bounded(check: Check) -> Check:
    """The check within its object storage's ``timeout_s`` in total (:mod:`opsproof.probes.deadline`)."""
    @functools.wraps(check)
    def bounded(target: Target[Backups], conns: Connections) -> Outcome:
        with within(_s3(target.config).timeout_s):
            return check(target, conns)
    return bounded


def _recent_expected(cfg: Backups) -> str:
    limit, key = cfg.age_limit
    return (f"newest {cfg.pattern} under {_s3(cfg).where} younger than {human_duration(limit)} ({key}) and "
            f"≥ {cfg.min_size_bytes} bytes")


@probe("backups.s3_recent", "backups", Severity.HIGH, "aws s3 ls s3://$BUCKET/$PREFIX --recursive | sort | tail -1",
       applies=lambda cfg: cfg.s3 is not None, expected=_recent_expected)
@_bounded
def s3_recent(target: Target[Backups], conns: Connections) -> Outcome:
    """The newest object under the prefix whose key below it matches ``pattern`` (fnmatch) is younger than
    ``max_age`` (else the RPO) and not smaller than ``min_size_bytes``."""
    cfg, s3 = target.config, _s3(target.config)
    client = _client(target, conns)
    count, newest = 0, None
    for obj in s3_client.objects(client, s3):
        key = obj["Key"]
        # the pattern as the directory's: against the key below prefix (`*/database.sql.gz` for $DATE/database.sql.gz)
        if key.endswith("/") or not fnmatch.fnmatchcase(key[len(s3.prefix):], cfg.pattern):
            continue
        count += 1
        # S3 keeps LastModified to the second: of two uploaded within one, the later name (…_2 after …_1)
        if newest is None or (obj["LastModified"], key) > (newest["LastModified"], newest["Key"]):
            newest = obj
    if newest is None:
        return Outcome(False, f"no object matching {cfg.pattern} under {s3.where}",
                       {"bucket": s3.bucket, "prefix": s3.prefix, "pattern": cfg.pattern})
    age_s = (dt.datetime.now(dt.UTC) - newest["LastModified"]).total_seconds()
    name, size = newest["Key"], int(newest.get("Size", 0))
    evidence = {"bucket": s3.bucket, "key": name, "age_s": round(age_s, 3), "size_bytes": size, "count": count,
                "last_modified": newest["LastModified"].isoformat()}
    problems = []
    if age_s > cfg.age_limit[0]:
        problems.append(f"newest {name} is {_age(age_s)} old")
    if size < cfg.min_size_bytes:
        problems.append(f"newest {name} is {size} bytes")
    observed = "; ".join(problems) or f"newest {name}: {_age(age_s)} old, {size} bytes"
    return Outcome(not problems, observed, evidence)


def _age(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds:.0f} s"


def _retention_expected(cfg: Backups) -> str:
    s3 = _s3(cfg)
    assert s3.retention is not None
    return (f"oldest {cfg.pattern} under {s3.where} at most {human_duration(s3.retention)} old (retention) + "
            f"{human_duration(cfg.slack[0])} ({cfg.slack[1]}: one backup interval)")


@probe("backups.s3_retention", "backups", Severity.MEDIUM,
       "aws s3 ls s3://$BUCKET/$PREFIX --recursive | sort | head -1",
       applies=lambda cfg: cfg.s3 is not None and cfg.s3.retention is not None, expected=_retention_expected)
@_bounded
def s3_retention(target: Target[Backups], conns: Connections) -> Outcome:
    """Old backups are gone from the bucket: no object matching ``pattern`` is older than ``retention`` plus one
    backup interval (``max_age``, else the RPO) — what a lifecycle rule promises, seen in the listing."""
    cfg, s3 = target.config, _s3(target.config)
    assert s3.retention is not None
    limit = s3.retention + cfg.slack[0]
    now = dt.datetime.now(dt.UTC)
    ages = sorted([((now - obj["LastModified"]).total_seconds(), obj["Key"]) for obj in _matching(target, conns)],
                  reverse=True)
    if not ages:
        return Outcome(None, f"no object matching {cfg.pattern} under {s3.where}: nothing kept to judge",
                       {"bucket": s3.bucket, "prefix": s3.prefix, "pattern": cfg.pattern})
    over = [(age, key) for age, key in ages if age > limit]
    evidence = {"bucket": s3.bucket, "count": len(ages), "oldest": ages[0][1], "oldest_age_s": round(ages[0][0], 3),
                "limit_s": limit, "over": [key for _, key in over[:20]]}
    if over:
        more = f" and {len(over) - 1} more" if len(over) > 1 else ""
        return Outcome(False, f"{over[0][1]} is {_age(over[0][0])} old, over the limit of {_age(limit)}{more}",
                       evidence)
    return Outcome(True, f"oldest {ages[0][1]}: {_age(ages[0][0])} old, {len(ages)} kept", evidence)


def _matching(target: Target[Backups], conns: Connections) -> list[dict[str, Any]]:
    """The objects under the prefix whose key below it matches the entry's pattern (as s3_recent reads them)."""
    cfg, s3 = target.config, _s3(target.config)
    return [obj for obj in s3_client.objects(_client(target, conns), s3)
            if not obj["Key"].endswith("/") and fnmatch.fnmatchcase(obj["Key"][len(s3.prefix):], cfg.pattern)]


@probe("backups.s3_quota", "backups", Severity.MEDIUM, "aws s3 ls s3://$BUCKET/$PREFIX --recursive --summarize",
       applies=lambda cfg: cfg.s3 is not None and cfg.s3.max_bytes is not None,
       expected=lambda cfg: f"objects under {_s3(cfg).where} at most {human_size(_s3(cfg).max_bytes or 0)}")
@_bounded
def s3_quota(target: Target[Backups], conns: Connections) -> Outcome:
    """The objects under the prefix (every one, not only the backups' pattern) take at most ``max_bytes``."""
    s3 = _s3(target.config)
    assert s3.max_bytes is not None
    total = count = 0
    for obj in s3_client.objects(_client(target, conns), s3):
        total += int(obj.get("Size", 0))
        count += 1
    share = total / s3.max_bytes
    evidence = {"bucket": s3.bucket, "prefix": s3.prefix, "bytes": total, "objects": count,
                "max_bytes": s3.max_bytes, "share": round(share, 4)}
    observed = f"{human_size(total)} in {count} objects ({share:.0%} of {human_size(s3.max_bytes)})"
    return Outcome(total <= s3.max_bytes, observed, evidence)


def _lifecycle_expected(cfg: Backups) -> str:
    s3 = _s3(cfg)
    expiring = f" expiring objects after {s3.expire_days} days" if s3.expire_days else ""
    return f"an enabled lifecycle rule covering {s3.where}{expiring}"


@probe("backups.s3_lifecycle", "backups", Severity.MEDIUM,
       "aws s3api get-bucket-lifecycle-configuration --bucket $BUCKET",
       applies=lambda cfg: cfg.s3 is not None and cfg.s3.checks_lifecycle, expected=_lifecycle_expected)
@_bounded
def s3_lifecycle(target: Target[Backups], conns: Connections) -> Outcome:
    """An enabled lifecycle rule covers the prefix (its filter's prefix is a prefix of it) and, with
    ``expire_days``, expires objects after exactly that many days (the runbook's retention)."""
    s3 = _s3(target.config)
    rules = s3_client.lifecycle_rules(_client(target, conns), s3)
    if rules is None:
        return Outcome(False, f"bucket {s3.bucket} has no lifecycle configuration", {"bucket": s3.bucket})
    shown = [_rule(r) for r in rules]
    evidence: dict[str, Any] = {"bucket": s3.bucket, "rules": shown}
    covering = [r for r in rules if r.get("Status") == "Enabled" and s3.prefix.startswith(_prefix(r))]
    if not covering:
        listed = "; ".join(_shown(r) for r in shown) or "none"
        return Outcome(False, f"no enabled lifecycle rule covers prefix {s3.prefix!r} (rules: {listed})", evidence)
    if s3.expire_days is not None:
        days = [(r.get("Expiration") or {}).get("Days") for r in covering]
        if s3.expire_days not in days:
            found = ", ".join(f"{_shown(_rule(r))}" for r in covering)
            return Outcome(False, f"no rule covering {s3.prefix!r} expires after {s3.expire_days} days "
                                  f"(covering: {found})", evidence)
        match = next(r for r in covering if (r.get("Expiration") or {}).get("Days") == s3.expire_days)
        return Outcome(True, f"rule {_shown(_rule(match))}", evidence)
    return Outcome(True, "; ".join(f"rule {_shown(_rule(r))}" for r in covering), evidence)


def _prefix(rule: dict[str, Any]) -> str:
    """The prefix a rule applies to: its Filter's (alone or in an And), or the legacy top-level Prefix."""
    flt = rule.get("Filter") or {}
    if "Prefix" in flt:
        return str(flt["Prefix"])
    if "And" in flt:
        return str(flt["And"].get("Prefix", ""))
    return str(rule.get("Prefix", ""))


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule.get("ID", ""), "status": rule.get("Status"), "prefix": _prefix(rule),
            "expire_days": (rule.get("Expiration") or {}).get("Days")}


def _shown(rule: dict[str, Any]) -> str:
    days = f", expires after {rule['expire_days']} days" if rule["expire_days"] else ", no expiration"
    return f"{rule['id'] or '(no id)'} on {rule['prefix']!r} {rule['status']}{days}"
