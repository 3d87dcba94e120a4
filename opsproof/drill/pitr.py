"""The point-in-time recovery drill: a base backup, the archived WAL replayed onto it up to a target time, and proof
that recovery got there — the runbook's "restore the base backup, set recovery_target_time, start, check the data".

found      the newest complete ``pg_basebackup -Fp`` directory (``backup_manifest`` present) finished before the target
integrity  ``pg_verifybackup`` (files against the manifest, its own WAL parsed); the archive's segments from the
           backup's start on, and any missing between (a gap: recovery cannot pass it)
provision  the base backup copied into a throwaway data directory, ``recovery.signal``
restore    the server started with ``restore_command`` (``cp`` from the archive), ``recovery_target_time``,
           ``recovery_target_action = promote``, ``archive_mode = off`` (never into the live archive); it must stop
           *at the target*: "recovery stopping before commit …, time T" with T past the target. A missing segment ends
           replay early — PostgreSQL 13+ then refuses to promote ("recovery ended before configured recovery target
           was reached"), older ones promote silently; either is a failure naming where replay stopped, and why
verify     promoted; listed tables present and non-empty; the freshness query's newest data not after the target
rpo        target − the last replayed commit (``pg_last_xact_replay_timestamp()``, else the log's)
rto        provision (copy) + restore (replay) + verify
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import signal
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from opsproof.drill import walarchive
from opsproof.drill.phases import Drill, Outcome, _iso, _span
from opsproof.drill.scratch import _Local
from opsproof.drill.tools import DrillError, last_line, pg_tool, run_tool
from opsproof.inventory import Backups, Postgres, human_duration, parse_instant
from opsproof.util.poll import Expired, wait_until
from opsproof.util.process import ProcessError, Spec, Supervisor, free_port, postgres_user


class LoginRefused(DrillError):
    """The recovered server runs but refuses the drill's role or database: no waiting will change that."""


class ScratchRecovery(_Local):
    """A copy of a base backup in the drill's folder, started in archive recovery on a Unix socket only."""

    NAME = "scratch-postgres"

    def __init__(self, folder: Path, base: walarchive.BaseBackup, restore: str, user: str, dbname: str) -> None:
        self.folder, self.base, self.restore, self.user, self.dbname = folder, base, restore, user, dbname
        self.sup = Supervisor(folder, ephemeral=True)
        self.data, self.run_dir, self.port = folder / "pg-data", folder / "pg-run", 0
        self.where = f"a copy of {base.path.name} recovering in {self.data}"

    @property
    def log(self) -> str:
        path = self.sup.log_dir / f"{self.NAME}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def unpack(self) -> None:
        """The backup's files in the scratch data directory: copied (-Fp), or extracted (-Ft, with its pg_wal.tar)."""
        if self.base.tar is None:
            shutil.copytree(self.base.path, self.data, symlinks=True)
            return
        self.data.mkdir(mode=0o700)
        for tar, into in ((self.base.tar, self.data), (walarchive._tar_of(self.base.path, "pg_wal"),
                                                        self.data / "pg_wal")):
            if tar is not None:
                with tarfile.open(tar, "r:*") as archive:
                    archive.extractall(into, filter="tar")  # no absolute paths, no escaping ".."

    def configure(self) -> None:
        """Make the copy the server's, and ask for archive recovery."""
        owner = postgres_user()
        self.run_dir.mkdir(mode=0o700)
        for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
            (self.data / stale).unlink(missing_ok=True)
        (self.data / "recovery.signal").touch()
        if not (self.data / "postgresql.conf").exists():  # Debian keeps it in /etc: the backup has none
            (self.data / "postgresql.conf").touch()
        (self.folder / "pg_hba.conf").write_text("local all all trust\n")  # the socket's folder is ours alone
        self.data.chmod(0o700)
        if owner:
            for path in [self.data, self.run_dir, self.folder / "pg_hba.conf", *self.data.rglob("*")]:
                shutil.chown(path, owner, owner)

    def start(self, target: float, major: int) -> None:
        """Start recovering towards ``target``; returns once the server runs (it may still be replaying)."""
        self.port = free_port()
        moment = dt.datetime.fromtimestamp(target, dt.UTC).isoformat(sep=" ")
        argv = [pg_tool("postgres", major), "-D", str(self.data), "-p", str(self.port), "-k", str(self.run_dir),
                "-c", "listen_addresses=", "-c", f"hba_file={self.folder / 'pg_hba.conf'}",
                "-c", "archive_mode=off", "-c", "fsync=off", "-c", "hot_standby=off", "-c", "ssl=off",
                "-c", "logging_collector=off", "-c", "log_destination=stderr", "-c", "shared_preload_libraries=",
                "-c", f"restore_command={self.restore}", "-c", f"recovery_target_time={moment}",
                "-c", "recovery_target_action=promote", "-c", "cluster_name=opsproof-drill-pitr"]
        try:
            self.sup.start(Spec(self.NAME, argv, user=postgres_user(), stop_signal=signal.SIGINT))
        except ProcessError as e:
            raise DrillError(f"the recovering PostgreSQL did not start: {e}") from None

    def promoted(self) -> bool:
        """True once recovery ended and the server accepts connections as a primary; False while replaying;
        DrillError when the server exited (the log says why)."""
        if not self.sup.alive(self.NAME):
            raise DrillError(walarchive.read_recovery(self.log).fatal or self.sup.log_tail(self.NAME, 3))
        try:
            with self.connect() as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                return row is not None and not row[0]
        except psycopg.OperationalError as e:
            if "does not exist" in str(e):  # a role or database the backed-up cluster does not have
                raise LoginRefused(f"the recovered server refuses the drill: {str(e).strip().splitlines()[-1]}. Fix: "
                                   "set pitr.user to a superuser of the backed-up cluster (the database is the "
                                   "postgres entry's dsn's)") from None
            return False  # still replaying (no connections), or starting

    @property
    def conninfo(self) -> str:
        return make_conninfo(host=str(self.run_dir), port=str(self.port), user=self.user, dbname=self.dbname)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)


class PitrDrill(Drill):
    kind = "postgres-pitr"

    def __init__(self, name: str, cfg: Backups, source: Postgres, folder: Path,
                 evidence_dir: Path | None = None, redact: Callable[[str], str] = str) -> None:
        super().__init__(name, cfg, folder, evidence_dir, redact)
        assert cfg.pitr is not None
        self.pitr = cfg.pitr
        self.source = source
        self.archive = Path(cfg.pitr.archive) if cfg.pitr.archive else None
        self.target_time = parse_instant(cfg.pitr.target, self.began)
        self.base: walarchive.BaseBackup | None = None
        self.scratch: ScratchRecovery | None = None
        self.recovery: walarchive.Recovery | None = None
        self.last_commit: float | None = None  # the last commit replayed
        self.replay_s: float | None = None

    @property
    def target_text(self) -> str:
        return dt.datetime.fromtimestamp(self.target_time, dt.UTC).isoformat(timespec="milliseconds")

    def _format(self) -> str:
        return "basebackup"

    def _wants_freshness(self) -> bool:
        return False  # the RPO is read from the replay itself, also when recovery stopped early

    def _expectation(self, name: str) -> str:
        return {"found": f"a base backup completed before the target {self.target_text}",
                "integrity": "a base backup that pg_verifybackup accepts, and no segment missing from the archive",
                "provision": "the base backup copied into a scratch data directory",
                "restore": f"recovery stopped at the target {self.target_text}",
                "verify": "the recovered data as of the target"}.get(name, super()._expectation(name))

    def _found(self) -> Outcome:
        try:
            self.base = base = walarchive.newest_base(Path(str(self.cfg.directory)), self.cfg.pattern,
                                                      self.target_time)
        except walarchive.NoBaseBackup as e:
            raise DrillError(str(e)) from None
        self.backup, self.backup_time = base.path, base.completed
        age = self.target_time - base.completed
        limit, key = self.cfg.age_limit
        evidence = {"file": str(base.path), "format": "basebackup", "size_bytes": base.size_bytes,
                    "taken_at": _iso(base.completed), "started": _iso(base.started), "start_wal": base.start_wal,
                    "target": self.target_text, "age_at_target_s": round(age, 3), "manifest": True}
        observed = (f"{base.path.name} (pg_basebackup, {base.size_bytes:,} bytes, from WAL {base.start_wal}, "
                    f"completed {_span(age)} before the target {self.target_text})")
        if age > limit:
            observed = f"newest base backup before the target, {base.path.name}, is {_span(age)} older than it"
        return Outcome(age <= limit, observed, f"a base backup at most {human_duration(limit)} ({key}) older than "
                       f"the target {self.target_text}", evidence)

    def _integrity(self) -> Outcome:
        assert self.base is not None
        base = self.base
        if base.tar is None:
            done = run_tool([pg_tool("pg_verifybackup", base.major, at_least=True), str(base.path)], timeout=3600)
            problems = [f"pg_verifybackup: {last_line(done.stderr or done.stdout)}"] if done.returncode else []
            checked = "pg_verifybackup: backup verified" if not problems else ""
        else:  # PostgreSQL < 18's pg_verifybackup reads no tar: it runs on the extracted copy (provision)
            problems = walarchive.tar_problems(base)
            checked = f"{base.tar.name} read whole, its files = the manifest's" if not problems else ""
        self.restorable = not problems  # a gap in the archive is for the replay to show: it still runs
        found = walarchive.Archive(0, None, None)
        if self.archive is None:
            checked += "; WAL from restore_command (not listed: a gap shows in the replay)"
        elif not self.archive.is_dir():
            problems.append(f"no WAL archive directory {self.archive}")
            self.restorable = False
        else:
            found = walarchive.scan_archive(self.archive, base.start_wal)
            if found.gaps:
                shown = ", ".join(found.gaps[:5]) + (f", … {len(found.gaps) - 5} more" if len(found.gaps) > 5 else "")
                problems.append(f"{len(found.gaps)} WAL segment(s) missing from the archive between {base.start_wal}"
                                f" and {found.last}: {shown} — replay cannot pass the first")
            checked += f"; archive holds {found.segments} segment(s) {found.first} … {found.last}, none missing"
        evidence = {"archive": str(self.archive) if self.archive else None, "segments": found.segments,
                    "first": found.first, "last": found.last, "gaps": found.gaps, "segment_bytes": found.seg_size}
        expected = self._expectation("integrity")
        if problems:
            return Outcome(False, "; ".join(problems), expected, evidence)
        return Outcome(True, checked, expected, evidence)

    def _provision(self) -> Outcome:
        assert self.base is not None
        if self.base.major is None:
            raise DrillError(f"{self.base.path.name} has no PG_VERSION: which PostgreSQL made it is unknown")
        dbname = str(conninfo_to_dict(self.source.dsn).get("dbname") or "postgres")
        restore = self.pitr.restore_command or f"cp {shlex.quote(str(self.archive))}/%f \"%p\""
        self.scratch = ScratchRecovery(self.folder, self.base, restore, self.pitr.user, dbname)
        self.scratch.unpack()
        how = "copied"
        if self.base.tar is not None:  # the checksums of every file, on the extracted copy
            done = run_tool([pg_tool("pg_verifybackup", self.base.major, at_least=True), "-m",
                             str(self.base.path / "backup_manifest"), str(self.scratch.data)], timeout=3600)
            if done.returncode != 0:
                raise DrillError(f"pg_verifybackup on the extracted {self.base.tar.name}: "
                                 f"{last_line(done.stderr or done.stdout)}")
            how = "extracted and verified (pg_verifybackup)"
        self.scratch.configure()
        return Outcome(True, f"{self.scratch.where} ({how})", self._expectation("provision"),
                       {"scratch": str(self.scratch.data), "major": self.base.major, "restore_command": restore})

    def _restore(self) -> Outcome:
        assert self.scratch is not None
        assert self.base is not None
        assert self.base.major is not None
        timeout = max(600.0, 3 * self.cfg.rto) if self.cfg.rto else 86400.0
        t0 = time.perf_counter()
        self.scratch.start(self.target_time, self.base.major)
        exited: str | None = None
        try:
            wait_until(self.scratch.promoted, timeout, "the recovering PostgreSQL to reach the target and promote",
                       interval=0.1, fail_fast=DrillError)
        except LoginRefused:
            raise
        except DrillError as e:
            exited = str(e)
        except Expired as e:
            raise DrillError(str(e)) from None
        self.replay_s = time.perf_counter() - t0
        self.recovery = rec = walarchive.read_recovery(self.scratch.log)
        if rec.last_commit:
            self.last_commit = walarchive.pg_time(rec.last_commit)
        evidence = {"restored_segments": len(rec.restored), "last_restored": rec.restored[-1] if rec.restored
                    else None, "stopped": rec.stopped, "stop_time": rec.stop_time, "last_commit": rec.last_commit,
                    "consistent_at": rec.consistent_at, "redo_done_at": rec.redo_done_at, "fatal": rec.fatal,
                    "replay_s": round(self.replay_s, 3), "target": self.target_text}
        expected = self._expectation("restore")
        if exited is not None or rec.stopped is None:
            return Outcome(False, self._early(rec, exited), expected, evidence)
        return Outcome(True, f"recovery stopping {rec.stopped} at {rec.stop_time}, past the target; "
                             f"{len(rec.restored)} segment(s) replayed from the archive in {_span(self.replay_s)}",
                       expected, evidence)

    def _early(self, rec: walarchive.Recovery, exited: str | None) -> str:
        """Where replay stopped short of the target, and the segment it could not get."""
        assert self.base is not None
        last = rec.restored[-1] if rec.restored else None
        listed = self.archive is not None and self.archive.is_dir()
        size = walarchive.scan_archive(self.archive, self.base.start_wal).seg_size if self.archive and listed \
            else self.base.seg_size
        ended = walarchive.lsn_segno(rec.redo_done_at, size) if rec.redo_done_at else None
        if ended is None and last:
            ended = walarchive.segno(last, size)
        wanted = walarchive.seg_name(self.base.timeline, ended + 1, size) if ended is not None else None
        at = (f"last replayed commit {rec.last_commit}" if rec.last_commit else "no commit replayed")
        where = f"WAL {rec.redo_done_at}" if rec.redo_done_at else (f"after {last}" if last else "the base backup")
        said = next((ln.strip() for ln in (self.scratch.log if self.scratch else "").splitlines()
                     if wanted and wanted in ln and "LOG:" not in ln), None)  # the restore_command's own error
        why = ""
        if wanted and self.archive and listed and not (self.archive / wanted).exists():
            why = f"; segment {wanted} is not in the archive (restore_command failed for it)"
        elif wanted:
            where_ = "is in the archive, but" if listed else "was not restored:"
            why = f"; segment {wanted} {where_} restore_command did not deliver it" + (f" ({said})" if said else "")
        how = "PostgreSQL refused to promote: " + (rec.fatal or exited or "") if exited else \
            "promoted without reaching it (no 'recovery stopping' in the log)"
        return f"recovery stopped early at {where} ({at}), target {self.target_text}{why}; {how}"

    def _verify(self) -> Outcome:
        assert self.scratch is not None
        problems: list[str] = []
        evidence: dict[str, Any] = {}
        with self.scratch.connect() as conn:
            row = conn.execute("SELECT pg_last_xact_replay_timestamp()").fetchone()
            if row and row[0] is not None:
                self.last_commit = float(row[0].timestamp())
            for table in [t if "." in t else f"public.{t}" for t in self.cfg.tables]:
                found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
                if not found or not found[0]:
                    problems.append(f"table {table} (listed in the inventory) is not in the recovered database")
                    continue
                schema, _, name = table.partition(".")
                count = conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                    psycopg.sql.Identifier(schema, name))).fetchone()
                if not count or not count[0]:
                    problems.append(f"{table}: empty after the recovery (listed in the inventory: expected rows)")
            if self.cfg.tables:
                self.verified.append(f"listed tables present and non-empty: {', '.join(self.cfg.tables)}")
            if self.cfg.freshness_query:
                problems += self._fresh(conn, evidence)
        evidence["last_replayed_commit"] = _iso(self.last_commit) if self.last_commit else None
        self.verified.insert(0, f"recovery stopped at the target {self.target_text} "
                                f"(the first commit past it, at {self.recovery.stop_time if self.recovery else '?'}, "
                                "not replayed)")
        evidence["verified"] = self.verified
        expected = "the recovered data as of the target (" + "; ".join(self.verified) + ")"
        return Outcome(not problems, "; ".join(problems or self.verified), expected, evidence)

    def _fresh(self, conn: psycopg.Connection[Any], evidence: dict[str, Any]) -> list[str]:
        query = str(self.cfg.freshness_query)
        try:
            row = conn.execute(query).fetchone()
        except psycopg.Error as e:
            return [f"freshness query failed on the recovered database: {last_line(str(e))}"]
        value = row[0] if row else None
        evidence["freshness"] = str(value)
        if value is None or not hasattr(value, "timestamp"):
            return [f"freshness query returned {value!r}, expected a timestamp ({query})"]
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if moment.timestamp() > self.target_time:
            return [f"freshness query: newest data {value} is after the target {self.target_text} "
                    "(recovery went past it)"]
        self.verified.append(f"freshness query: newest data {value}, not after the target")
        return []

    def _rpo(self) -> Outcome:
        """Reached (drill.restore passed: the log's "recovery stopping before" the first commit past the target),
        nothing committed before the target is missing: 0, with the quiet time before it (target − last replayed
        commit) shown. Stopped early: target − the last replayed commit, what the restore lost at most."""
        target, expected = self.cfg.rpo, f"≤ {human_duration(self.cfg.rpo)} (rpo)"
        last = _iso(self.last_commit) if self.last_commit is not None else None
        facts = {"target_s": target, "recovery_target": self.target_text, "newest_data": last}
        gap = None if self.last_commit is None else max(0.0, self.target_time - self.last_commit)
        if self._passed("restore") and self.recovery is not None and self.recovery.stopped:
            quiet = f"the last at {last}, {_span(gap)} before it" if gap is not None else "none before it"
            return Outcome(True, f"measured RPO 0 s at the target {self.target_text}: every commit before it replayed "
                           f"({quiet}); stopped at the first past it ({self.recovery.stop_time})", expected,
                           {**facts, "measured_s": 0.0, "quiet_before_target_s": None if gap is None else
                            round(gap, 3), "basis": "recovery stopped at the target"})
        if gap is None:  # nothing replayed past the base backup: what it holds is all there is
            assert self.backup_time is not None
            gap = max(0.0, self.target_time - self.backup_time)
            return Outcome(gap <= target, f"measured RPO {_span(gap)}: recovery stopped early with no commit replayed, "
                           f"the data is the base backup's (complete {_iso(self.backup_time)}), target "
                           f"{self.target_text}", expected,
                           {**facts, "measured_s": round(gap, 3), "basis": "target − the base backup's end"})
        return Outcome(gap <= target, f"measured RPO {_span(gap)}: recovery stopped early, last replayed commit "
                       f"{last}, target {self.target_text}", expected,
                       {**facts, "measured_s": round(gap, 3), "basis": "target − last replayed commit"})
