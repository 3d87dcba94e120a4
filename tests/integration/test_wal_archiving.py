"""WAL archiving and point-in-time recovery on a PostgreSQL of this module's own that archives for real (the
session sandbox's does not: its PostgreSQL stays as it is).

One cluster, started once: ``archive_mode = on``, ``archive_command`` copying each segment into a directory. The
check ``postgres.wal_archiving`` is read on it idle, written to, and with the archive made unwritable (the
archive_command then fails for real); the PITR drill restores a ``pg_basebackup`` of it to a time between two marker
rows, then again from a copy of the archive with one segment deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support import run_suite

from opsproof.drill import open_drill
from opsproof.drill.pitr import PitrDrill
from opsproof.drill.scratch import ScratchPostgres, workdir
from opsproof.drill.tools import pg_tool, run_tool
from opsproof.inventory import loads
from opsproof.probes import Connections, Target, pg_archive
from opsproof.probes import backups as backup_probes
from opsproof.result import Result
from opsproof.util.poll import wait_until
from opsproof.util.process import postgres_user

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("wal-archiving")]  # one cluster for the module


@dataclass
class Archiving:
    cluster: ScratchPostgres
    archive: Path
    bases: Path

    def connect(self, user: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.cluster.run_dir), port=self.cluster.port, user=user, dbname="postgres",
                               autocommit=True, connect_timeout=5)

    def dsn(self, user: str) -> str:
        return f"postgresql://{user}@/postgres?host={self.cluster.run_dir}&port={self.cluster.port}"

    def one(self, sql: str) -> Any:
        with self.connect() as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

    def switch(self) -> str:
        """Close the current segment (after a write, so that there is one to close) and wait until it is archived."""
        with self.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS churn (x int)")
            conn.execute("INSERT INTO churn VALUES (1)")
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            segment = str(row[0])
        wait_until(lambda: (self.archive / segment).exists() and self.one(
            "SELECT last_archived_wal FROM pg_stat_archiver") >= segment, 20, f"{segment} archived")
        return segment

    def set(self, setting: str, value: str) -> None:
        with self.connect() as conn:
            conn.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
            conn.execute("SELECT pg_reload_conf()")
        wait_until(lambda: self.one(f"SELECT setting FROM pg_settings WHERE name = '{setting}'") == value, 10,
                   f"{setting} = {value} in effect")


@pytest.fixture(scope="module")
def archiving() -> Iterator[Archiving]:
    cluster = ScratchPostgres(workdir(), 15)
    try:
        cluster.start()
        cluster.stop()
        archive, bases = cluster.folder / "wal-archive", cluster.folder / "base"
        for d in (archive, bases):
            d.mkdir()
            if postgres_user():
                shutil.chown(d, "postgres", "postgres")
        overrides = {"wal_level": "replica", "max_wal_senders": "4", "archive_mode": "on", "fsync": "off"}
        cluster.argv = [f"{a.split('=')[0]}={overrides[a.split('=')[0]]}" if a.split("=")[0] in overrides else a
                        for a in cluster.argv]
        cluster.argv += ["-c", f"archive_command=test ! -f {archive}/%f && cp %p {archive}/%f"]  # timeout: 0
        cluster.launch()
        with psycopg.connect(host=str(cluster.run_dir), port=cluster.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE ROLE monitor LOGIN IN ROLE pg_monitor")  # what a monitoring role is granted
            conn.execute("CREATE ROLE plain LOGIN")  # no pg_monitor: pg_ls_archive_statusdir() is not its to call
        yield Archiving(cluster, archive, bases)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.folder, ignore_errors=True)


def check(env: Archiving, max_age: str = "15m", user: str = "monitor", slack: str = "30s") -> Result:
    inv = loads(f"environment: wal\npostgres:\n  main:\n    dsn: '{env.dsn(user)}'\n"
                f"    archiving: {{max_age: {max_age}, slack: {slack}}}\n")
    with Connections() as conns:
        return pg_archive.wal_archiving(Target("postgres", "main", inv.postgres["main"]), conns)


def shown(result: Result) -> str:
    return f"{result.target}: {result.observed}, expected {result.expected}"


def test_archiving_health_idle_written_and_with_a_timeout(archiving: Archiving) -> None:
    segment = archiving.switch()
    idle = check(archiving)  # nothing written since the switch: the last archive may age without a finding
    assert idle.ok, shown(idle)
    assert f"last {segment} archived" in idle.observed
    assert "0 segment(s) waiting (pg_ls_archive_statusdir); no failure; archive_timeout off, nothing written since: " \
           "no unarchived WAL" in idle.observed
    plain = check(archiving, user="plain")  # no pg_monitor: the waiting segments counted from the WAL file names
    assert plain.ok, shown(plain)
    assert "0 segment(s) waiting (segment names; waited at most since the last archive)" in plain.observed

    archiving.one("INSERT INTO churn VALUES (2) RETURNING 1")  # WAL in the open segment, never switched out
    wait_until(lambda: check(archiving, max_age="1s", slack="1s").ok is False, 15, "the written WAL to age")
    aged = check(archiving, max_age="1s", slack="1s")
    assert aged.observed.endswith("(archive_timeout off: a segment is archived only when full, and WAL was "
                                  "written since)"), shown(aged)
    assert aged.expected == ("archive_mode on, the last attempt not failed, unarchived WAL at most 1 s old "
                             "(max_age, + 1 s slack)")

    archiving.set("archive_timeout", "60")  # now a written segment is closed within 60 s: that bounds the age
    bounded = check(archiving, max_age="15m")
    assert bounded.ok, shown(bounded)
    assert bounded.observed.endswith("unarchived WAL at most 60 s old (archive_timeout 60 s)"), shown(bounded)
    too_long = check(archiving, max_age="30s", slack="10s")  # a timeout that cannot meet the RPO is a finding
    assert too_long.ok is False
    assert too_long.observed.endswith("unarchived WAL at most 60 s old (archive_timeout 60 s)")
    archiving.set("archive_timeout", "0")


def test_a_failing_archive_command_fails_exactly_the_archiving_check(archiving: Archiving, tmp_path: Path) -> None:
    archiving.switch()
    archiving.archive.chmod(0o500)  # the archive_command's cp is refused: a real failure of the server's archiver
    try:
        with archiving.connect() as conn:
            conn.execute("INSERT INTO churn VALUES (3)")
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            broken = row[0]
        wait_until(lambda: archiving.one("SELECT last_failed_wal FROM pg_stat_archiver") == broken, 20,
                   f"the archiver to fail on {broken}")
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(f"environment: wal\npostgres:\n  main:\n    dsn: '{archiving.dsn('monitor')}'\n"
                             "    archiving: {max_age: 15m}\n")
        run = run_suite(inventory, tmp_path / "out", "-k", "test_postgres")
    finally:
        archiving.archive.chmod(0o755)
    assert run.failed == {"postgres.wal_archiving@postgres[main]"}, run.output
    record = run.record("postgres.wal_archiving")
    assert record["observed"].startswith("archiving failing: the last attempt failed ")
    assert f" ago on {broken} (" in record["observed"]
    assert record["expected"] == ("archive_mode on, the last attempt not failed, unarchived WAL at most 15.0 min "
                                  "old (max_age, + 30 s slack)")
    # mended: the next segment wakes the archiver (after 3 failures it waits up to 60 s), both land, the check passes
    archiving.switch()
    assert (archiving.archive / broken).exists()
    mended = check(archiving)
    assert mended.ok, shown(mended)
    assert "failure(s) since" in mended.observed


def marker(env: Archiving, label: str) -> float:
    """A committed row, and the commit's time (the server's clock)."""
    with env.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS markers (label text, at timestamptz DEFAULT clock_timestamp())")
        row = conn.execute("INSERT INTO markers (label) VALUES (%s) RETURNING extract(epoch FROM at)::float8",
                           (label,)).fetchone()
        assert row is not None
        return float(row[0])


def pitr_inventory(env: Archiving, wal: str, target: float, pattern: str = "plain_*") -> str:
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(target)) + f"{target % 1:.6f}"[1:] + "Z"
    return f"""environment: wal
postgres:
  main: {{dsn: '{env.dsn("postgres")}'}}
backups:
  main:
    postgres: main
    directory: {env.bases}
    pattern: "{pattern}"
    pitr: {{{wal}, target: "{iso}"}}
    rpo: 15m
    rto: 10m
    tables: [public.markers]
    freshness_query: SELECT max(at) FROM markers
"""


def test_a_pitr_drill_reaches_the_target_and_a_missing_segment_stops_it_early(archiving: Archiving,
                                                                             tmp_path: Path) -> None:
    marker(archiving, "before the base backups")
    for name, form in (("plain_1", ["-Fp"]), ("tar_1", ["-Ft", "-z"])):  # the runbook's is -Ft -z
        done = run_tool([pg_tool("pg_basebackup", 15), "-h", str(archiving.cluster.run_dir), "-p",
                         str(archiving.cluster.port), "-U", "postgres", "-D", str(archiving.bases / name), *form,
                         "-X", "stream", "-c", "fast"], timeout=120)
        assert done.returncode == 0, done.stderr
    marker(archiving, "after the base backup")
    between = archiving.switch()  # a segment holding only WAL after the base backup: deleted below
    kept = marker(archiving, "before the target")
    target = kept + 0.001
    wait_until(lambda: archiving.one("SELECT extract(epoch FROM clock_timestamp())::float8") > target, 5,
               "the target to pass")
    marker(archiving, "after the target")
    archiving.switch()

    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(pitr_inventory(archiving, f"archive: {archiving.archive}", target))
    with Connections() as conns:  # the freshness check takes a base backup directory as the drill does
        recent = backup_probes.recent(Target("backups", "main", loads(inventory.read_text()).backups["main"]), conns)
    assert recent.ok, recent
    run = run_suite(inventory, tmp_path / "out", suite="checks/dr_drill")
    assert run.code == 0, run.output
    assert "DR drill backups[main] (postgres-pitr) — PASS" in run.output
    phases = {r["check"].split(".")[1]: r for r in run.records}
    assert list(phases) == ["found", "integrity", "provision", "restore", "verify", "rpo", "rto", "teardown"]
    assert phases["restore"]["observed"].startswith("recovery stopping before commit of transaction ")
    assert "freshness query: newest data" in phases["verify"]["observed"]
    [evidence] = (tmp_path / "out" / "drills").glob("main-*.json")
    doc = json.loads(evidence.read_text())
    verify = next(p for p in doc["phases"] if p["phase"] == "verify")["evidence"]
    newest = dt.datetime.fromisoformat(verify["freshness"]).timestamp()
    assert abs(newest - kept) < 1e-3  # "before the target" is the newest row; "after the target" is not there
    assert doc["rpo"]["measured_s"] < 1
    assert doc["rpo"]["basis"] == "recovery stopped at the target"
    assert doc["rpo"]["quiet_before_target_s"] < 1
    assert doc["rto"]["measured_s"] == pytest.approx(sum(doc["rto"]["parts_s"].values()), abs=0.01)

    gapped = archiving.cluster.folder / "gapped-archive"  # where the server may read (pytest's tmp_path is root's)
    shutil.copytree(archiving.archive, gapped)
    (gapped / between).unlink()
    for path in [gapped, *gapped.iterdir()] if postgres_user() else []:
        shutil.chown(path, "postgres", "postgres")  # the recovering server reads it as postgres
    early = open_drill(loads(pitr_inventory(archiving, f"archive: {gapped}", target)), "main", evidence_dir=tmp_path)
    early.run()
    assert isinstance(early, PitrDrill)
    verdicts = {name: r.result.verdict for name, r in early.records.items()}
    assert (verdicts["integrity"], verdicts["restore"], verdicts["teardown"]) == ("fail", "fail", "pass")
    lost = early.records["rpo"].result  # at most what lies between the base backup and the target: about 1 s here
    assert lost.evidence["basis"] == "target − the base backup's end", lost
    restore = early.records["restore"].result
    assert restore.observed.startswith("recovery stopped early at WAL "), restore.observed
    assert f"target {early.target_text}; segment {between} is not in the archive" in restore.observed
    assert "PostgreSQL refused to promote: recovery ended before configured recovery target was reached" \
        in restore.observed
    assert "WAL segment(s) missing from the archive between" in early.records["integrity"].result.observed
    assert early.records["integrity"].result.observed.endswith(f": {between} — replay cannot pass the first")

    # the runbook's shape: a -Ft -z base backup, and the WAL fetched by a restore_command (here cp; aws s3 cp there)
    fetch = f"restore_command: 'cp {archiving.archive}/%f %p'"
    tarred = open_drill(loads(pitr_inventory(archiving, fetch, target, "tar_*")), "main", evidence_dir=tmp_path)
    tarred.run()
    found = {name: r.result for name, r in tarred.records.items()}
    assert {n: r.verdict for n, r in found.items()} == dict.fromkeys(found, "pass"), tarred.summary()
    assert found["integrity"].observed == ("base.tar.gz read whole, its files = the manifest's; WAL from "
                                           "restore_command (not listed: a gap shows in the replay)")
    assert found["provision"].observed.endswith("(extracted and verified (pg_verifybackup))")
    assert found["rpo"].evidence["measured_s"] < 1
