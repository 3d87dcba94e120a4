"""The PostgreSQL drill: the runbook's `gunzip < backup.sql.gz | psql` then `SELECT COUNT(*) FROM projects`, done
for real and measured.

found      newest backup matching the pattern (or a fresh one: ``fresh: true``), its age against the RPO
integrity  sha256 against the manifest; gzip stream and pg_dump's closing line for plain dumps; ``pg_restore
           --list`` (and, without a manifest, a full read) for custom and directory archives
provision  a scratch server of the dump's major version (a local cluster, or ``scratch.dsn``)
restore    ``pg_restore --jobs N`` (custom, directory) or ``psql`` (plain)
verify     schema objects present; per-table row counts and checksums equal to the manifest (without one:
           listed tables non-empty); ``pg_amcheck`` on every restored B-tree index; the freshness query
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from opsproof.drill import backup as backups
from opsproof.drill import pgdata
from opsproof.drill.archive import HeaderError, read_header, read_plain, toc_objects
from opsproof.drill.archive import detect as _detect
from opsproof.drill.archive import gzipped as _gzipped
from opsproof.drill.container import ScratchContainer, archive_tool
from opsproof.drill.phases import Drill, Outcome, _span
from opsproof.drill.scratch import ScratchPostgres, ScratchServer
from opsproof.drill.tools import DrillError, last_line, pg_tool, run_tool, spawn, stop_process
from opsproof.inventory import Backups, Postgres

TRAILER = b"-- PostgreSQL database dump complete"
TOC_VERSION = re.compile(r"Dumped from database version: (\d+)")
ROLE_MISSING = re.compile(r'role "[^"]+" does not exist')


class PostgresDrill(Drill):
    kind = "postgres"

    def __init__(self, name: str, cfg: Backups, source: Postgres, folder: Path,
                 evidence_dir: Path | None = None, redact: Callable[[str], str] = str) -> None:
        super().__init__(name, cfg, folder, evidence_dir, redact)
        self.source = source
        self.dsn = cfg.dsn or source.dsn  # reads every table: pg_dump and the manifest need more than monitoring
        self.format: str = cfg.format
        self.major: int | None = None  # the dump's server's (manifest, else the dump's header)
        self.dumper: int | None = None  # the pg_dump's that wrote it (the header): pg_restore must not be older
        self.scratch: ScratchPostgres | ScratchServer | ScratchContainer | None = None
        self.toc: dict[str, list[str]] | None = None
        self.freshness: Any = None

    def _wants_freshness(self) -> bool:
        return self.cfg.freshness_query is not None

    suffix = ".dump"

    def _take(self, out: Path, pattern: str) -> tuple[Path, dict[str, Any]]:
        return backups.take_postgres(self.dsn, out, pattern, self.cfg.scratch.jobs, self.source_name,
                                     self.source.connect_timeout_s)

    def _format(self) -> str:
        assert self.backup is not None
        if self.format == "auto":
            self.format = _detect(self.backup)
        return self.format

    # --- integrity -----------------------------------------------------------------------------------------
    def _integrity(self) -> Outcome:
        assert self.backup is not None
        problems: list[str] = []
        checked: list[str] = []
        digest = backups.sha256(self.backup)
        evidence: dict[str, Any] = {"sha256": digest}
        if self.manifest is not None:
            if self.manifest.get("sha256") != digest:
                problems.append(f"sha256 {digest[:12]}… differs from the manifest's "
                                f"{str(self.manifest.get('sha256'))[:12]}… (the file changed after the backup)")
            checked.append("sha256 = manifest")
            self.major = int(self.manifest["server_version_num"]) // 10000
        vouched = self.manifest is not None and not problems  # the manifest's sha256 is this file's
        fatal = self._archive_checks(problems, checked, evidence, vouched)
        self.restorable = not fatal
        evidence["checks"] = checked
        expected = "an intact archive (" + ", ".join(checked) + ")"
        if problems:
            return Outcome(False, "; ".join(problems), expected, evidence)
        return Outcome(True, f"{self.format} archive intact; sha256 {digest[:16]}…", expected, evidence)

    def _archive_checks(self, problems: list[str], checked: list[str], evidence: dict[str, Any],
                        vouched: bool) -> bool:
        """The format's own checks; True when one makes restoring pointless."""
        assert self.backup is not None
        try:  # the dump's own word on its versions, whatever PostgreSQL this host has
            header = read_header(self.backup)
        except (HeaderError, OSError) as e:
            problems.append(f"unreadable archive header: {e}")
            return True
        self.major = self.major or header.server_major
        self.dumper = header.dumper_major
        evidence.update(dumped_from=header.server_major, dumped_by=header.dumper_major)
        if self.format == "plain":
            _, tail, error = read_plain(self.backup)
            checked.append("gzip stream whole" if _gzipped(self.backup) else "readable")
            checked.append("pg_dump's closing line present")
            if error:
                problems.append(error)
                return True
            if TRAILER not in tail:
                problems.append(f"truncated: {self.backup.name} ends before pg_dump's closing line "
                                f"'{TRAILER.decode()}'")
                return True
            return False
        pg_restore = self._lister()
        listing = run_tool([*pg_restore, "--list", str(self.backup)], timeout=600)
        checked.append("pg_restore --list")
        if listing.returncode != 0:
            problems.append(f"pg_restore --list fails: {last_line(listing.stderr)}")
            return True
        self.toc = toc_objects(listing.stdout)
        evidence["toc_entries"] = sum(1 for ln in listing.stdout.splitlines() if ln and not ln.startswith(";"))
        m = TOC_VERSION.search(listing.stdout)
        self.major = self.major or (int(m.group(1)) if m else None)
        if not vouched:  # nothing vouches for the data blocks: read them all once
            whole = run_tool([*pg_restore, "--file=/dev/null", str(self.backup)], timeout=3600)
            checked.append("every data block read (pg_restore -f /dev/null)")
            if whole.returncode != 0:
                problems.append(f"damaged archive: {last_line(whole.stderr)}")
                return True
        return False

    def _lister(self) -> list[str]:
        """pg_restore to read the archive with: the host's, not older than the pg_dump that wrote it (unknown: the
        newest installed); for a container scratch without one here, the scratch image's, in a one-off container."""
        need = max(self.major or 0, self.dumper or 0) or None
        try:
            return [pg_tool("pg_restore", need, at_least=True)]
        except DrillError:
            if self.cfg.scratch.kind != "container" or need is None:
                raise
        assert self.backup is not None
        return archive_tool("pg_restore", max(need, self.cfg.scratch.major or 0), self.cfg.scratch.image,
                            self.backup, self.folder.name)

    # --- provision -----------------------------------------------------------------------------------------
    def _provision(self) -> Outcome:
        if self.major is None:
            raise DrillError("the dump does not say which PostgreSQL version made it (no manifest, no header)")
        if self.cfg.scratch.dsn and self.protected:
            return Outcome(False, f"refused: environment {self.protected} is marked production: true, and "
                           "scratch.dsn would have the drill create and drop a database on that server",
                           "a scratch PostgreSQL. Fix: run with --allow-destructive (OPSPROOF_ALLOW_DESTRUCTIVE=1 "
                           "under pytest), or remove scratch.dsn to restore into a local scratch cluster")
        scratch, target = self.cfg.scratch, self.cfg.scratch.major or self.major
        if target < self.major:
            return Outcome(False, f"refused: scratch.major {target} is older than the dump's server (PostgreSQL "
                           f"{self.major}); a dump restores into its own major or a newer one",
                           f"a scratch PostgreSQL {self.major} or newer. Fix: set scratch.major to {self.major} or "
                           "more, or remove it")
        if scratch.dsn:
            identity = (self.manifest or {}).get("system_identifier")
            self.scratch = ScratchServer(scratch.dsn, self.dsn, self.source_name, str(identity) if identity else None)
        elif scratch.kind == "container":
            assert self.backup is not None
            self.scratch = ScratchContainer(self.folder, target, scratch.image, self.backup, scratch.jobs)
        else:
            self.scratch = ScratchPostgres(self.folder, self.major, scratch.jobs)
        self.scratch.start()
        return Outcome(True, f"{self.scratch.where}", f"a scratch PostgreSQL {target}",
                       {"scratch": self.scratch.where, "major": target, "dump_major": self.major,
                        "pg_dump_major": self.dumper})

    def _tool(self, name: str) -> tuple[list[str], str, dict[str, str]]:
        """(argv prefix, conninfo, environment) of a client tool against the restore database: a container's own
        (see :class:`ScratchContainer`), else the host's, not older than the dump's server and its pg_dump."""
        assert self.scratch is not None
        if isinstance(self.scratch, ScratchContainer):
            return self.scratch.tool(name, self.dumper)
        need = max(self.major or 0, self.dumper or 0) or None
        return [pg_tool(name, need, at_least=True)], self.scratch.conninfo, self.scratch.tool_env()

    # --- restore -------------------------------------------------------------------------------------------
    def _restore(self) -> Outcome:
        assert self.backup is not None
        assert self.scratch is not None
        assert self.major is not None
        jobs = self.cfg.scratch.jobs
        timeout = max(600.0, 3 * self.cfg.rto) if self.cfg.rto else 86400.0
        size = int(self.records["found"].result.evidence["size_bytes"])
        t0 = time.perf_counter()
        if self.format in ("custom", "directory"):
            tool, conninfo, env = self._tool("pg_restore")
            argv = [*tool, f"--jobs={jobs}", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname",
                    conninfo, str(self.backup)]
            done = run_tool(argv, env=env, timeout=timeout)
            how = f"pg_restore --jobs={jobs} --no-owner --no-privileges --exit-on-error"
            used = {"tool": tool[-1], "in": "container" if tool[0] == "docker" else "host"}
            errors = [] if done.returncode == 0 else [last_line(done.stderr)]
            tolerated: list[str] = []
        else:
            how = ("gzip -dc | " if _gzipped(self.backup) else "") + "psql -X -q"
            errors, tolerated = self._psql(timeout)
            used = {}
        elapsed = time.perf_counter() - t0
        mb_s = size / 1e6 / elapsed if elapsed > 0 else 0.0
        evidence = {"command": how, "duration_s": round(elapsed, 3), "bytes": size, "mb_per_s": round(mb_s, 1),
                    "ignored": tolerated[:20], **used}
        if errors:
            return Outcome(False, f"restore failed: {errors[0]}", "the backup restored without error", evidence)
        note = f"; ignored {len(tolerated)} ownership/grant statement(s) for roles absent on scratch" if tolerated \
            else ""
        return Outcome(True, f"restored with {how} in {_span(elapsed)} ({mb_s:.1f} MB/s of dump){note}",
                       "the backup restored without error", evidence)

    def _psql(self, timeout: float) -> tuple[list[str], list[str]]:
        """A plain dump through psql; errors other than ownership/grants for absent roles fail the restore."""
        assert self.backup is not None
        assert self.scratch is not None
        assert self.major is not None
        tool, conninfo, env = self._tool("psql")
        psql = [*tool, "-X", "-q", "-v", "ON_ERROR_STOP=0", "--dbname", conninfo]
        gunzip = spawn(["gzip", "-dc", str(self.backup)]) if _gzipped(self.backup) else None
        proc = spawn([*psql, "-f", "-" if gunzip else str(self.backup)], env=env,
                     stdin=gunzip.stdout.fileno() if gunzip and gunzip.stdout else subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL)
        if gunzip is not None and gunzip.stdout is not None:
            gunzip.stdout.close()  # psql holds the read end now; if it exits early, gzip gets SIGPIPE, not stuck
        gzip_err = b""
        try:
            _, err = proc.communicate(timeout=timeout)
            if gunzip is not None:
                _, gzip_err = gunzip.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise DrillError(f"psql did not finish within {timeout:g} s") from None
        finally:
            stop_process(proc)
            if gunzip is not None:
                stop_process(gunzip)
        text = err.decode(errors="replace")
        lines = [ln for ln in text.splitlines() if "ERROR:" in ln]
        tolerated = [ln for ln in lines if ROLE_MISSING.search(ln)]
        errors = [ln.split("ERROR:", 1)[1].strip() for ln in lines if ln not in tolerated]
        if proc.returncode not in (0, None) and not errors:
            errors.append(f"psql exited {proc.returncode}: {last_line(text)}")
        if gunzip is not None and gunzip.returncode not in (0, None, -signal.SIGPIPE):
            errors.append(f"gzip -dc exited {gunzip.returncode}: "
                          f"{last_line(gzip_err.decode(errors='replace'))}")
        return errors, tolerated

    # --- verify --------------------------------------------------------------------------------------------
    def _verify(self) -> Outcome:
        assert self.scratch is not None
        problems: list[str] = []
        evidence: dict[str, Any] = {}
        timings: dict[str, float] = {}
        with self.scratch.connect() as conn:
            pgdata.pin_session(conn)
            t0 = time.perf_counter()
            problems += self._verify_tables(conn, evidence)
            timings["tables"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            problems += self._verify_objects(conn, evidence)
            timings["objects"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            if self.cfg.freshness_query:
                problems += self._verify_freshness(conn, evidence)
            timings["freshness"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        problems += self._amcheck(evidence)
        timings["amcheck"] = time.perf_counter() - t0
        evidence["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        evidence["verified"] = self.verified
        expected = "the restored data equal to the backup's (" + "; ".join(self.verified) + ")"
        if problems:
            shown = "; ".join(problems[:8]) + (f"; … {len(problems) - 8} more" if len(problems) > 8 else "")
            return Outcome(False, shown, expected, evidence)
        return Outcome(True, "; ".join(self.verified), expected, evidence)

    def _verify_objects(self, conn: psycopg.Connection[Any], evidence: dict[str, Any]) -> list[str]:
        expected = self.manifest["objects"] if self.manifest else self.toc
        if not expected:
            return []
        restored = pgdata.objects(conn)
        missing = [f"{kind} {name}" for kind, names in expected.items()
                   for name in sorted(set(names) - set(restored.get(kind, [])))]
        count = sum(len(v) for v in expected.values())
        evidence["objects_expected"] = count
        evidence["objects_missing"] = missing
        source = "the manifest" if self.manifest else "the archive's table of contents"
        self.verified.append(f"{count - len(missing)}/{count} schema objects of {source} present")
        if not missing:
            return []
        shown = ", ".join(missing[:10]) + (f", … {len(missing) - 10} more" if len(missing) > 10 else "")
        return [f"{len(missing)} schema object(s) of {source} missing from the restore: {shown}"]

    def _verify_tables(self, conn: psycopg.Connection[Any], evidence: dict[str, Any]) -> list[str]:
        assert self.scratch is not None
        problems: list[str] = []
        wanted: dict[str, dict[str, Any]] = dict(self.manifest["tables"]) if self.manifest else {}
        present = set(pgdata.tables(conn))
        listed = [t if "." in t else f"public.{t}" for t in self.cfg.tables]
        for table in listed:
            if table not in present:
                problems.append(f"table {table} (listed in the inventory) is not in the restored database")
        names = [t for t in pgdata.by_size(conn, set(wanted) | set(listed)) if t in present]
        got = pgdata.tables_data(self.scratch.connect, names, self.cfg.scratch.jobs)
        rows = 0
        for table, expect in wanted.items():
            if table not in got:
                problems.append(f"table {table} missing from the restore (manifest: {expect['rows']:,} rows)")
                continue
            have = got[table]
            rows += have["rows"]
            if have["rows"] != expect["rows"]:
                problems.append(f"{table}: {have['rows']:,} rows, manifest {expect['rows']:,}")
            elif have["checksum"] != expect["checksum"]:
                problems.append(f"{table}: content checksum differs from the manifest (same {have['rows']:,} rows, "
                                "at least one row changed)")
        for table in listed:
            if table in got and table not in wanted and got[table]["rows"] == 0:
                problems.append(f"{table}: empty after the restore (listed in the inventory: expected rows)")
        evidence["tables"] = got
        if wanted:
            self.verified.append(f"{len(wanted)} tables' row counts and checksums = manifest ({rows:,} rows)")
        if listed:
            self.verified.append(f"listed tables present and non-empty: {', '.join(listed)}")
        return problems

    def _verify_freshness(self, conn: psycopg.Connection[Any], evidence: dict[str, Any]) -> list[str]:
        query = str(self.cfg.freshness_query)
        try:
            row = conn.execute(query).fetchone()  # the operator's own query (a read on the scratch copy)
        except psycopg.Error as e:
            return [f"freshness query failed on the restore: {last_line(str(e))}"]
        value = row[0] if row else None
        evidence["freshness"] = str(value)
        if value is None:
            return [f"freshness query returned no value ({query})"]
        if not hasattr(value, "timestamp"):
            return [f"freshness query returned {value!r}, expected a timestamp ({query})"]
        self.freshness = value
        self.verified.append(f"freshness query answered: {value}")
        return []

    def _amcheck(self, evidence: dict[str, Any]) -> list[str]:
        assert self.scratch is not None
        assert self.major is not None
        tool, conninfo, env = self._tool("pg_amcheck")
        params = conninfo_to_dict(conninfo)
        argv = [*tool, "--install-missing",
                f"--jobs={self.cfg.scratch.jobs}", "--index=*.*", "--no-strict-names",
                "-h", str(params.get("host", "")), "-p", str(params.get("port", 5432)),
                "-U", str(params.get("user", "postgres")), str(params.get("dbname"))]
        done = run_tool(argv, env=env, timeout=3600)
        evidence["amcheck"] = {"exit": done.returncode, "output": (done.stdout + done.stderr)[-2000:]}
        if done.returncode != 0:
            return [f"pg_amcheck found problems: {_amcheck_finding(done.stdout + done.stderr)}"]
        self.verified.append("pg_amcheck: every B-tree index consistent")
        return []

    # --- rpo, teardown -------------------------------------------------------------------------------------
    def _data_time(self) -> tuple[float, str]:
        if self.freshness is not None:
            moment = self.freshness
            if getattr(moment, "tzinfo", None) is None and hasattr(moment, "replace"):
                moment = moment.replace(tzinfo=dt.UTC)
            return float(moment.timestamp()), "the freshness query on the restore"
        return super()._data_time()


def _amcheck_finding(text: str) -> str:
    """``btree index "db.public.orders_customer": ERROR: … unexpected zero page at block 1`` from its report."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if re.match(r'(btree index|heap table) "', line):
            return f"{line} {lines[i + 1] if i + 1 < len(lines) else ''}".strip()[:400]
    return last_line(text)
