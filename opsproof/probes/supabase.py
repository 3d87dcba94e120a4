"""A Supabase project's managed backups (``backups.<name>.supabase``): "daily automated backups, successful",
"point-in-time recovery enabled, N days", "database RPO" — `supabase backups list --project-ref $REF`, i.e.
``curl -H "Authorization: Bearer $SUPABASE_ACCESS_TOKEN" https://api.supabase.com/v1/projects/$REF/database/backups``.

The API's shape, as found (not guessed):

- the Management API's OpenAPI document as the Supabase CLI vendors it (github.com/supabase/cli,
  ``packages/api/src/generated/openapi.json``, snapshot of 2026-06-01): operation ``v1-list-all-backups``,
  ``GET /v1/projects/{ref}/database/backups``, ``{ref}`` 20 lowercase letters, security ``bearer`` (OAuth scope
  ``database:read``), answers 200 with ``V1BackupsResponse`` — required ``region`` (string), ``walg_enabled`` and
  ``pitr_enabled`` (booleans), ``backups`` (array of ``{id: integer, is_physical_backup: boolean, status: one of
  COMPLETED FAILED PENDING REMOVED ARCHIVED CANCELLED, inserted_at: string}``) and ``physical_backup_data``
  (object with optional integers ``earliest_physical_backup_date_unix``, ``latest_physical_backup_date_unix``);
  401 "Unauthorized", 403 "Forbidden action", 429 "Rate limit exceeded", 500 "Failed to get backups". The same
  shape is in the CLI's Go types (``apps/cli-go/pkg/api/types.gen.go``) and in its recorded answer of the real
  service (``apps/cli-e2e/fixtures/recorded/GET_v1_projects___PROJECT_REF___database_backups``: ``{"region":
  "us-east-1", "pitr_enabled": false, "walg_enabled": true, "backups": [], "physical_backup_data": {}}``).
- ``inserted_at`` has no declared format; the CLI parses it as RFC 3339 and prints it as UTC
  (``apps/cli/src/legacy/shared/legacy-timestamp.format.ts``); a time without an offset is read here as UTC.
- the two ``physical_backup_data`` times are the PITR range Supabase Studio shows as the earliest and the latest
  available restore point (Studio's ``PITRStatus``); the spec describes neither. So ``pitr_window`` is judged on
  latest − earliest and ``pitr_rpo`` on now − latest — only when the answer has them.
- ``v1-get-disk-utilization``, ``GET /v1/projects/{ref}/config/disk/util`` (same document; permission
  ``infra_disk_config_read``): ``DiskUtilMetricsResponse``, required ``timestamp`` (string) and ``metrics`` with
  required numbers ``fs_size_bytes``, ``fs_avail_bytes``, ``fs_used_bytes`` — ``backups.supabase_disk``.
- Supabase's backup guide (supabase.com/docs/guides/platform/backups): with PITR enabled, daily backups are no
  longer taken. So with ``pitr_enabled`` and no COMPLETED backup listed, the latest PITR restore point is the
  newest backup ``backups.supabase_recent`` judges (and it says so).

Tested against a local stand-in of that endpoint (tests/integration/supabase_api.py), not the real service.
The token is sent in the Authorization header only; it is in no finding, evidence or repr.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from typing import Any

from opsproof.inventory import Backups, human_duration
from opsproof.inventory.objects import human_size
from opsproof.inventory.supabase import Supabase
from opsproof.probes import answers
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Finding, within
from opsproof.result import Severity

Check = Callable[[Target[Backups], Connections], Outcome]
REFUSED = {401: "unauthorized (the access token was refused)", 403: "forbidden (the token may not read backups)",
           404: "not found (no such project for this token)", 429: "rate limited"}


def _sb(cfg: Backups) -> Supabase:
    assert cfg.supabase is not None  # `applies` deselects entries without one
    return cfg.supabase


def _bounded(check: Check) -> Check:
    """The check within its ``timeout_s`` in total: a silent or trickling API ends it with the deadline's finding."""
    @functools.wraps(check)
    def bounded(target: Target[Backups], conns: Connections) -> Outcome:
        with within(_sb(target.config).timeout_s) as deadline:
            try:
                return check(target, conns)
            except Finding:
                raise
            except Exception:
                if deadline.ended_check():
                    raise Finding(deadline.describe(), deadline.evidence()) from None
                raise
    return bounded


def _get(target: Target[Backups], conns: Connections, path: str) -> Any:
    """GET ``path`` of the API with the bearer token: its JSON, or a finding naming the endpoint and the status."""
    sb = _sb(target.config)
    where = sb.url(path)
    response = answers.get(conns.http(sb.verify_tls), where, max_bytes=sb.max_answer_bytes, timeout=sb.timeout_s,
                           path=path, headers={"Authorization": f"Bearer {sb.access_token}",
                                               "Accept": "application/json"})
    status = response.status_code
    if status != 200:
        why = REFUSED.get(status, "error" if status >= 400 else "unexpected answer")
        raise Finding(f"GET {where} → HTTP {status} {why}", {"http_status": status, "project": sb.project_ref})
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Finding(f"GET {where} → HTTP 200 but not JSON ({response.text[:80]!r})") from None


def fetch(target: Target[Backups], conns: Connections) -> dict[str, Any]:
    """The project's backups answer, checked against the documented shape; any other answer is a finding."""
    sb = _sb(target.config)
    body = _get(target, conns, sb.path)
    missing = [k for k in ("pitr_enabled", "walg_enabled", "backups") if not isinstance(body, dict) or k not in body]
    if missing or not isinstance(body["backups"], list):
        raise Finding(f"GET {sb.where} → HTTP 200 without {', '.join(missing) or 'a backups list'} (not the "
                      "Management API's V1BackupsResponse)")
    return dict(body)


def _when(text: Any) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _age(seconds: float) -> str:
    """95 s, 20 min, 30.0 h, 10.0 d."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 2 * 86400 else f"{seconds / 86400:.1f} d"


def _backups(body: dict[str, Any]) -> list[tuple[dt.datetime, str, dict[str, Any]]]:
    """(time, status, backup) of each listed backup with a readable time, newest first."""
    out = [(t, str(b.get("status", "?")), b) for b in body["backups"] if isinstance(b, dict)
           and (t := _when(b.get("inserted_at"))) is not None]
    return sorted(out, key=lambda x: x[0], reverse=True)


def _physical(body: dict[str, Any], key: str) -> dt.datetime | None:
    value = (body.get("physical_backup_data") or {}).get(key)
    return dt.datetime.fromtimestamp(value, dt.UTC) if isinstance(value, int | float) and value > 0 else None


def _recent_expected(cfg: Backups) -> str:
    limit, key = cfg.age_limit
    return (f"newest COMPLETED backup of Supabase project {_sb(cfg).project_ref} younger than "
            f"{human_duration(limit)} ({key})")


@probe("backups.supabase_recent", "backups", Severity.HIGH, "supabase backups list --project-ref $REF",
       applies=lambda cfg: cfg.supabase is not None, expected=_recent_expected)
@_bounded
def supabase_recent(target: Target[Backups], conns: Connections) -> Outcome:
    """The newest COMPLETED backup is younger than ``max_age`` (else the RPO); with PITR on and no daily backup
    listed (Supabase takes none then), the latest PITR restore point stands for it."""
    cfg, sb = target.config, _sb(target.config)
    body = fetch(target, conns)
    now = dt.datetime.now(dt.UTC)
    listed = _backups(body)
    done = [(t, b) for t, status, b in listed if status == "COMPLETED"]
    evidence: dict[str, Any] = {"project": sb.project_ref, "backups": len(body["backups"]), "completed": len(done),
                                "pitr_enabled": body["pitr_enabled"], "walg_enabled": body["walg_enabled"]}
    if done:
        newest, backup = done[0]
        what = f"newest COMPLETED backup (id {backup.get('id')}, {newest.isoformat()})"
    elif body["pitr_enabled"] is True and (latest := _physical(body, "latest_physical_backup_date_unix")):
        newest, what = latest, f"no daily backup listed (PITR on); latest PITR restore point ({latest.isoformat()})"
    else:
        states = ", ".join(sorted({status for _t, status, _b in listed})) or "none listed"
        return Outcome(False, f"no COMPLETED backup of project {sb.project_ref} (backups: {states})", evidence)
    age_s = (now - newest).total_seconds()
    evidence.update(newest=newest.isoformat(), age_s=round(age_s, 1))
    ok = age_s <= cfg.age_limit[0]
    return Outcome(ok, f"{what} is {_age(age_s)} old", evidence)


@probe("backups.supabase_failures", "backups", Severity.HIGH, "supabase backups list --project-ref $REF",
       applies=lambda cfg: cfg.supabase is not None,
       expected=lambda cfg: f"no FAILED backup of Supabase project {_sb(cfg).project_ref} in the last "
                            f"{human_duration(_sb(cfg).failures_within)} (failures_within), the newest not FAILED")
@_bounded
def supabase_failures(target: Target[Backups], conns: Connections) -> Outcome:
    """No backup listed as FAILED was taken within ``failures_within``, and the newest listed is not FAILED."""
    sb = _sb(target.config)
    body = fetch(target, conns)
    now = dt.datetime.now(dt.UTC)
    listed = _backups(body)
    failed = [(t, b) for t, status, b in listed
              if status == "FAILED" and ((now - t).total_seconds() <= sb.failures_within or t == listed[0][0])]
    evidence = {"project": sb.project_ref, "backups": len(listed),
                "failed": [{"id": b.get("id"), "inserted_at": t.isoformat()} for t, b in failed]}
    if failed:
        shown = ", ".join(f"id {b.get('id')} at {t.isoformat()}" for t, b in failed[:5])
        newest = " (the newest)" if failed[0][0] == listed[0][0] else ""
        return Outcome(False, f"{len(failed)} FAILED backup(s){newest}: {shown}", evidence)
    if not listed:
        return Outcome(True, "no backup listed, none FAILED", evidence)
    return Outcome(True, f"{len(listed)} backup(s) listed, newest {listed[0][1]} at {listed[0][0].isoformat()}, "
                         "none FAILED", evidence)


def _pitr_expected(cfg: Backups) -> str:
    sb = _sb(cfg)
    parts = [f"PITR enabled on Supabase project {sb.project_ref}"]
    if sb.pitr_window is not None:
        parts.append(f"restore points spanning ≥ {human_duration(sb.pitr_window)} (pitr_window)")
    if sb.pitr_rpo is not None:
        parts.append(f"the latest ≤ {human_duration(sb.pitr_rpo)} old (pitr_rpo)")
    return ", ".join(parts)


@probe("backups.supabase_pitr", "backups", Severity.HIGH, "supabase backups list --project-ref $REF  # WALG, PITR",
       applies=lambda cfg: cfg.supabase is not None and cfg.supabase.checks_pitr, expected=_pitr_expected)
@_bounded
def supabase_pitr(target: Target[Backups], conns: Connections) -> Outcome:
    """``pitr_enabled`` is true; with ``pitr_window``, the latest restore point is at least that long after the
    earliest; with ``pitr_rpo``, the latest is at most that old."""
    sb = _sb(target.config)
    body = fetch(target, conns)
    earliest = _physical(body, "earliest_physical_backup_date_unix")
    latest = _physical(body, "latest_physical_backup_date_unix")
    evidence: dict[str, Any] = {"project": sb.project_ref, "pitr_enabled": body["pitr_enabled"],
                                "walg_enabled": body["walg_enabled"], "region": body.get("region"),
                                "earliest": earliest and earliest.isoformat(), "latest": latest and latest.isoformat()}
    if body["pitr_enabled"] is not True:
        return Outcome(False, f"PITR is off on project {sb.project_ref} (pitr_enabled: {body['pitr_enabled']}, "
                              f"walg_enabled: {body['walg_enabled']})", evidence)
    seen, problems = ["PITR on"], []
    if sb.pitr_window is not None or sb.pitr_rpo is not None:
        if earliest is None or latest is None:
            return Outcome(False, "PITR on, but the answer gives no restore points (physical_backup_data "
                                  f"{body.get('physical_backup_data')!r})", evidence)
        if sb.pitr_window is not None:
            span = (latest - earliest).total_seconds()
            evidence["window_s"] = round(span)
            seen.append(f"restore points span {_age(span)}")
            if span < sb.pitr_window:
                problems.append(f"restore points span {_age(span)} (from {earliest.isoformat()})")
        if sb.pitr_rpo is not None:
            lag = (dt.datetime.now(dt.UTC) - latest).total_seconds()
            evidence["lag_s"] = round(lag, 1)
            seen.append(f"latest {_age(lag)} old")
            if lag > sb.pitr_rpo:
                problems.append(f"latest restore point is {_age(lag)} old ({latest.isoformat()})")
    return Outcome(not problems, "; ".join(problems) if problems else ", ".join(seen), evidence)


@probe("backups.supabase_disk", "backups", Severity.MEDIUM,
       "curl -H 'Authorization: Bearer $TOKEN' $API/v1/projects/$REF/config/disk/util",
       applies=lambda cfg: cfg.supabase is not None and cfg.supabase.max_disk_ratio is not None,
       expected=lambda cfg: f"the disk of Supabase project {_sb(cfg).project_ref}'s database at most "
                            f"{_sb(cfg).max_disk_ratio or 0:.0%} used (max_disk_ratio)")
@_bounded
def supabase_disk(target: Target[Backups], conns: Connections) -> Outcome:
    """The database's disk: ``fs_used_bytes / fs_size_bytes`` at most ``max_disk_ratio``."""
    sb = _sb(target.config)
    assert sb.max_disk_ratio is not None
    body = _get(target, conns, sb.disk_path)
    metrics = body.get("metrics") if isinstance(body, dict) else None
    used = metrics.get("fs_used_bytes") if isinstance(metrics, dict) else None
    size = metrics.get("fs_size_bytes") if isinstance(metrics, dict) else None
    if not isinstance(used, int | float) or not isinstance(size, int | float) or size <= 0:
        raise Finding(f"GET {sb.url(sb.disk_path)} → HTTP 200 without metrics.fs_used_bytes and a positive "
                      "metrics.fs_size_bytes (not the Management API's DiskUtilMetricsResponse)")
    share = used / size
    evidence = {"project": sb.project_ref, "fs_used_bytes": used, "fs_size_bytes": size,
                "fs_avail_bytes": metrics.get("fs_avail_bytes") if isinstance(metrics, dict) else None,
                "share": round(share, 4), "timestamp": body.get("timestamp")}
    return Outcome(share <= sb.max_disk_ratio, f"{share:.0%} of {human_size(size)} used ({human_size(used)}, "
                                               f"at {body.get('timestamp')})", evidence)
