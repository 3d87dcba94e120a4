"""A DR drill as timed phases: found → integrity → provision → restore → verify → rpo → rto → teardown.

Each phase returns a :class:`~opsproof.result.Result` for ``backups[NAME]`` (check ``drill.PHASE``) and is timed;
a phase whose input is missing (an earlier phase failed) has no verdict and says which phase stopped it.
Teardown always runs — also after a failure, an exception or Ctrl-C (:meth:`Drill.close`) — and the evidence (every
phase with start, end and duration; measured RTO and RPO against their targets; what was verified and how; the
backup file and its checksum) is written as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opsproof import backupfiles, output
from opsproof.drill import backup as backups
from opsproof.drill.tools import DrillError
from opsproof.inventory import Backups, human_duration
from opsproof.result import Result, reason

PHASES = ("found", "integrity", "provision", "restore", "verify", "rpo", "rto", "teardown")
RTO_PHASES = ("provision", "restore", "verify")


class Scratch(Protocol):
    """A scratch instance: stopped at teardown, and asked what it would leave behind."""

    def stop(self) -> None: ...

    def leftovers(self) -> list[str]: ...


@dataclass
class Outcome:
    """What a phase found: pass/fail (None: no verdict), in words, and the raw evidence."""

    ok: bool | None
    observed: str
    expected: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhaseRecord:
    name: str
    started: float  # Unix time
    ended: float
    result: Result

    @property
    def duration_s(self) -> float:
        return self.result.duration_s

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.name, "start": _iso(self.started), "end": _iso(self.ended),
                "duration_s": round(self.duration_s, 3), "verdict": self.result.verdict,
                "observed": self.result.observed, "expected": self.result.expected,
                "evidence": self.result.to_record()["evidence"]}


class Drill:
    """The phases common to every datastore; subclasses implement ``_found`` … ``_verify``."""

    kind = ""

    def __init__(self, name: str, cfg: Backups, folder: Path, evidence_dir: Path | None = None,
                 redact: Callable[[str], str] = str) -> None:
        self.name = name
        self.redact = redact  # the inventory's secrets masked in the evidence and the summary
        self.cfg = cfg
        self.target = f"backups[{name}]"
        kind, ref = cfg.datastore or (self.kind, "?")
        self.source_name = f"{kind}[{ref}]"  # the live datastore, as its checks name it
        self.folder = folder
        self.evidence_dir = evidence_dir
        self.records: dict[str, PhaseRecord] = {}
        self.began = time.time()
        self.backup: Path | None = None
        self.backup_time: float | None = None  # when the backup's data was taken (manifest, RDB or file time)
        self.manifest: dict[str, Any] | None = None
        self.evidence_file: Path | None = None
        self.restorable = False  # integrity found nothing that makes a restore pointless
        self.scratch: Scratch | None = None  # set by provision
        self.verified: list[str] = []  # what was verified and how, for the evidence
        # set by open_drill: the environment's name when it is marked production and --allow-destructive was not
        # given; the drill then writes to no server the inventory names (a local scratch cluster is fine)
        self.protected: str | None = None
        self.environment: str | None = None  # the inventory's name (set by open_drill), in the evidence

    # --- running --------------------------------------------------------------------------------------
    def phase(self, name: str) -> Result:
        """Run one phase (once; later calls return its result)."""
        if name in self.records:
            return self.records[name].result
        started, t0 = time.time(), time.perf_counter()
        blocker = self._blocker(name)
        if blocker is not None:
            outcome = Outcome(None, f"not run: {blocker}", f"drill.{name} to run")
        else:
            try:
                outcome = getattr(self, f"_{name}")()
            except DrillError as e:
                outcome = Outcome(False, str(e), self._expectation(name))
            except Exception as e:  # a client, tool or file error: reported as the phase's failure, not a traceback
                outcome = Outcome(False, f"{type(e).__name__}: {str(e).strip()[:500]}", self._expectation(name))
        result = Result(self.target, f"drill.{name}", outcome.ok, outcome.observed, outcome.expected,
                        outcome.evidence, time.perf_counter() - t0)
        self.records[name] = PhaseRecord(name, started, time.time(), result)
        return result

    def run(self) -> list[Result]:
        try:
            return [self.phase(p) for p in PHASES]
        finally:
            self.close()

    def close(self) -> None:
        """Tear down (if the teardown phase did not run yet) and write the evidence. Safe to call twice."""
        if "teardown" not in self.records:
            self.phase("teardown")
        if self.evidence_dir is not None and self.evidence_file is None:
            self.evidence_file = output.stamped(self.evidence_dir, self.name, self.began)  # NAME-TIME.json
            self.evidence_file.write_text(self.redact(json.dumps(self.evidence(), indent=2, default=str)) + "\n")

    def _ran(self, name: str) -> bool:
        record = self.records.get(name)
        return record is not None and record.result.ok is not None

    def _passed(self, name: str) -> bool:
        record = self.records.get(name)
        return record is not None and record.result.ok is True

    def _blocker(self, name: str) -> str | None:
        needs: dict[str, Callable[[], bool]] = {
            "integrity": lambda: self.backup is not None,
            "provision": lambda: self.restorable,
            "restore": lambda: self._passed("provision"),
            "verify": lambda: self._passed("restore"),
            "rpo": lambda: self.backup_time is not None and (not self._wants_freshness() or self._ran("verify")),
            "rto": lambda: self._passed("verify"),  # a recovery that did not verify has no recovery time
        }
        check = needs.get(name)
        if check is None or check():
            return None
        earlier = [p for p in PHASES[: PHASES.index(name)] if p in self.records and not self._passed(p)]
        return f"drill.{earlier[0]} did not pass" if earlier else "an earlier phase did not run"

    def _wants_freshness(self) -> bool:
        return False

    def _expectation(self, name: str) -> str:
        limit, key = self.cfg.age_limit
        return {"found": f"a backup younger than {human_duration(limit)} ({key})",
                "integrity": "an intact archive", "provision": "a scratch instance",
                "restore": "the backup restored", "verify": "the restored data equal to the backup's",
                "teardown": "nothing left behind"}.get(name, name)

    # --- the common phases ------------------------------------------------------------------------------
    def _found(self) -> Outcome:
        cfg = self.cfg
        fresh = None
        if cfg.fresh:
            out = Path(cfg.directory) if cfg.directory else self.folder / "backup"
            if not cfg.directory:
                out.mkdir(mode=0o700)  # a fresh dump of the source: for this user only (not postgres either)
            pattern = backups.naming(self.name, cfg.pattern, cfg.directory, self.suffix)
            t0 = time.perf_counter()
            self.backup, self.manifest = self._take(out, pattern)
            fresh = round(time.perf_counter() - t0, 3)
            completed = time.time()
        else:
            found = newest(Path(str(cfg.directory)), cfg.pattern)
            self.backup, completed = found.path, found.mtime
            self.manifest = backups.read_manifest(self.backup)
        # the manifest's time, else when the backup was complete (a directory dump's: its toc.dat's)
        self.backup_time = float(self.manifest["taken_at_unix"]) if self.manifest else completed
        age = self.began - self.backup_time
        files = list(self.backup.rglob("*")) if self.backup.is_dir() else [self.backup]
        size = sum(f.stat().st_size for f in files)
        fmt = self._format()
        evidence = {"file": str(self.backup), "format": fmt, "size_bytes": size, "age_s": round(age, 3),
                    "taken_at": _iso(self.backup_time), "manifest": bool(self.manifest), "fresh_backup_s": fresh}
        how = "taken now" if fresh is not None else f"{_span(age)} old"
        observed = f"{self.backup.name} ({fmt}, {size:,} bytes, {how}, {'with' if self.manifest else 'no'} manifest)"
        limit, key = cfg.age_limit
        if age > limit:
            observed = f"newest backup {self.backup.name} is {_span(age)} old"
        return Outcome(age <= limit, observed, f"a backup younger than {human_duration(limit)} ({key})", evidence)

    suffix = ""

    def _take(self, out: Path, pattern: str) -> tuple[Path, dict[str, Any]]:
        """Take a fresh backup (``fresh: true``) into ``out``, named after ``pattern``."""
        raise NotImplementedError

    def _format(self) -> str:
        return self.cfg.format

    def _rpo(self) -> Outcome:
        assert self.backup_time is not None
        measured, basis = self._data_time()
        loss = max(0.0, self.began - measured)  # a fresh backup is newer than the drill's start
        target = self.cfg.rpo
        when = dt.datetime.fromtimestamp(measured, dt.UTC).isoformat(timespec="seconds")
        return Outcome(loss <= target, f"measured RPO {_span(loss)} (newest data {when}, from {basis})",
                       f"≤ {human_duration(target)} (rpo)",
                       {"measured_s": round(loss, 3), "target_s": target, "basis": basis, "newest_data": when})

    def _data_time(self) -> tuple[float, str]:
        assert self.backup_time is not None
        return self.backup_time, "the backup's time"

    def _rto(self) -> Outcome:
        parts = {p: round(self.records[p].duration_s, 3) for p in RTO_PHASES if p in self.records}
        total = sum(parts.values())
        shown = " + ".join(f"{p} {_span(s)}" for p, s in parts.items())
        evidence = {"measured_s": round(total, 3), "target_s": self.cfg.rto, "parts_s": parts}
        if self.cfg.rto is None:
            return Outcome(None, f"measured RTO {_span(total)} ({shown}); no rto: target in the inventory",
                           "an rto: target to judge against", evidence)
        return Outcome(total <= self.cfg.rto, f"measured RTO {_span(total)} ({shown})",
                       f"≤ {human_duration(self.cfg.rto)} (rto)", evidence)

    def _teardown(self) -> Outcome:
        """Every step runs even when one fails; what could not be cleaned is named with the reason."""
        why = ""
        try:
            self.stop_scratch()
        except Exception as e:  # the folder must still go, and the failure must be reported, not raised
            why = f" (stopping the scratch: {type(e).__name__}: {reason(e)[:300]})"
        shutil.rmtree(self.folder, ignore_errors=True)
        left = self.leftovers() + ([str(self.folder)] if self.folder.exists() else [])
        observed = (f"left behind: {', '.join(left)}{why}" if left or why else
                    "scratch instance stopped, working folder removed")
        return Outcome(not left and not why, observed, "nothing left behind",
                       {"folder": str(self.folder), "left": left, "error": why.strip(" ()") or None})

    def stop_scratch(self) -> None:
        if self.scratch is not None:
            self.scratch.stop()

    def leftovers(self) -> list[str]:
        return self.scratch.leftovers() if self.scratch is not None else []

    # --- evidence ----------------------------------------------------------------------------------------
    def verdict(self) -> str:
        verdicts = {r.result.verdict for r in self.records.values()}
        return "FAIL" if "fail" in verdicts else ("PASS" if self._passed("verify") else "INCOMPLETE")

    def evidence(self) -> dict[str, Any]:
        rpo = self.records.get("rpo")
        rto = self.records.get("rto")
        return {
            "drill": self.target,
            "environment": self.environment,
            "kind": self.kind,
            "verdict": self.verdict(),
            "started": dt.datetime.fromtimestamp(self.began, dt.UTC).isoformat(),
            "backup": {"file": str(self.backup) if self.backup else None,
                       **{k: v for k, v in self._backup_facts().items()}},
            "rpo": {"target_s": self.cfg.rpo, **(rpo.result.to_record()["evidence"] if rpo else {})},
            "rto": {"target_s": self.cfg.rto, **(rto.result.to_record()["evidence"] if rto else {})},
            "verified": self.verified,
            "phases": [self.records[p].to_json() for p in PHASES if p in self.records],
        }

    def _backup_facts(self) -> dict[str, Any]:
        found = self.records.get("found")
        integrity = self.records.get("integrity")
        facts: dict[str, Any] = {}
        if found is not None:
            facts.update({k: found.result.evidence.get(k) for k in ("size_bytes", "taken_at", "manifest")})
        if integrity is not None:
            facts["sha256"] = integrity.result.evidence.get("sha256")
        return facts

    def summary(self) -> str:
        """A plain-text table for the end of the run."""
        rows = [f"DR drill {self.target} ({self.kind}) — {self.verdict()}",
                f"  {'phase':<10} {'verdict':<8} {'duration':>10}  detail"]
        for p in PHASES:
            record = self.records.get(p)
            if record is None:
                continue
            detail = record.result.observed
            rows.append(f"  {p:<10} {record.result.verdict:<8} {_span(record.duration_s):>10}  "
                        f"{detail if len(detail) <= 110 else detail[:107] + '…'}")
        if self.evidence_file is not None:
            rows.append(f"  evidence: {self.evidence_file}")
        return self.redact("\n".join(rows))


def newest(directory: Path, pattern: str) -> backupfiles.Backup:
    """The newest complete backup, as :mod:`opsproof.backupfiles` decides for the freshness probe too."""
    try:
        return backupfiles.newest(directory, pattern)
    except backupfiles.NoBackup as e:
        raise DrillError(str(e)) from None


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
