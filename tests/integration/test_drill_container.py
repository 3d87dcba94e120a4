"""DR drills into containers: a dump of the sandbox's PostgreSQL 15 restored for real into a PostgreSQL 17
container (a cross-version drill) and into a container of its own major, verified and timed; a corrupted dump
fails the drill with a finding naming the target, what was observed and what was expected. Every container the
drills start carries ``org.opsproof.test=h22`` and is gone after each test."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import yaml
from support import REPO, SLOW_SQL, SandboxHelper, interruptible

from opsproof.drill import Drill, open_drill
from opsproof.drill.archive import Header, read_header
from opsproof.drill.backup import manifest_path, take_postgres
from opsproof.drill.container import HOST_LABEL, LABEL, ScratchContainer, remove_labelled, sweep_containers
from opsproof.drill.scratch import workdir
from opsproof.drill.tools import pg_tool
from opsproof.inventory import loads
from opsproof.util.poll import wait_until

if TYPE_CHECKING:
    import docker

pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.xdist_group("drill-container")]

TEST_LABEL = ("org.opsproof.test", "h22")
SQL = """
CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE,
  name text, created_at timestamptz NOT NULL, meta jsonb);
INSERT INTO customers (email, name, created_at, meta)
  SELECT 'user' || g || '@example.com', 'Zoë Ünal ' || g, timestamptz '2024-01-01' + g * interval '17 minutes',
         jsonb_build_object('tier', g % 4) FROM generate_series(1, 2000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  amount numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL, note text, receipt bytea);
INSERT INTO orders (customer_id, amount, updated_at, note, receipt)
  SELECT 1 + g % 2000, round((g * 7.31) % 1000, 2), now() - (20000 - g) * interval '1 minute',
         CASE WHEN g % 10 = 0 THEN NULL ELSE 'note ' || md5(g::text) END, decode(md5(g::text), 'hex')
  FROM generate_series(1, 20000) g;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW revenue AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY 1;
CREATE SEQUENCE invoice_no START 1000;
"""


@pytest.fixture(scope="module")
def source(sandbox: SandboxHelper) -> str:
    """DSN of a `ctshop` database on the sandbox's primary (PostgreSQL 15), for the backup role."""
    with sandbox.superuser() as conn:
        conn.execute("DROP DATABASE IF EXISTS ctshop WITH (FORCE)")
        conn.execute("CREATE DATABASE ctshop OWNER app")
    with sandbox.superuser(db="ctshop") as conn:
        conn.execute("SET ROLE app")
        conn.execute(SQL)
    return sandbox.box.dsn("opsproof_backup", db="ctshop")


@pytest.fixture(scope="module")
def backup(source: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """`opsproof backup`'s custom-format dump of it, with the manifest the drill verifies against."""
    return take_postgres(source, tmp_path_factory.mktemp("backups"), "ctshop_*.dump", source="postgres[ctshop]")


@pytest.fixture
def own_image(docker_client: docker.DockerClient, postgres17_image: str) -> Iterator[str]:
    """The PostgreSQL 17 image under a name of a team's own registry (a tag of this test process's, removed after);
    returned as the inventory writes it, with {major}."""
    tag = f"17-{os.getpid()}"
    docker_client.images.get(postgres17_image).tag("opsproof-test-h22/pg", tag)
    yield f"opsproof-test-h22/pg:{{major}}-{os.getpid()}"
    docker_client.images.remove(f"opsproof-test-h22/pg:{tag}")  # the tag only: the image keeps its own


@pytest.fixture(autouse=True)
def labelled(monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient) -> Iterator[None]:
    """Every container a drill starts carries this branch's test label; none is left after the test."""
    monkeypatch.setenv("OPSPROOF_CONTAINER_LABELS", "=".join(TEST_LABEL))
    yield
    left = remove_labelled(dict([TEST_LABEL]), docker_client)
    assert left == [], f"containers left behind: {left}"


def drill(source: str, directory: Path, pattern: str, tmp_path: Path, **scratch: Any) -> Drill:
    data = {"environment": "drill-container-test", "postgres": {"ctshop": {"dsn": source, "connect_timeout_s": 3}},
            "backups": {"ctshop": {"postgres": "ctshop", "directory": str(directory), "pattern": pattern,
                                   "rpo": "24h", "rto": "5m", "tables": ["public.orders", "public.customers"],
                                   "freshness_query": "SELECT max(updated_at) FROM public.orders",
                                   "scratch": {"kind": "container", **scratch}}}}
    return open_drill(loads(yaml.safe_dump(data)), "ctshop", tmp_path / "evidence")


def finding(the_drill: Drill, phase: str) -> str:
    result = the_drill.records[phase].result
    return f"{result.verdict.upper()} {result.explain()}"


def verdicts(the_drill: Drill) -> dict[str, str]:
    return {name: record.result.verdict for name, record in the_drill.records.items()}


def drill_containers(client: docker.DockerClient, the_drill: Drill) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL}={the_drill.folder.name}"}))


def test_a_15_dump_restores_into_17_in_a_container(backup: tuple[Path, dict[str, Any]], source: str,
                                                    tmp_path: Path, docker_client: docker.DockerClient,
                                                    own_image: str) -> None:
    """The cross-version drill: PostgreSQL 15's dump into a 17 container (the host has only 15), verified against
    the manifest, RTO and RPO measured; the container is on loopback only, and gone afterwards. The image is named
    as a team with a registry names it (`scratch.image` with {major}); opsproof's own 17 image is the next test's."""
    path, manifest = backup
    assert manifest["server_version_num"] // 10000 == 15
    the_drill = drill(source, path.parent, "ctshop_*.dump", tmp_path, major=17, image=own_image)
    try:
        for name in ("found", "integrity", "provision"):
            assert the_drill.phase(name).ok, the_drill.summary()
        [container] = drill_containers(docker_client, the_drill)
        assert container.labels["org.opsproof.test"] == "h22"
        assert own_image.format(major=17) in container.image.tags
        bindings = container.attrs["HostConfig"]["PortBindings"]["5432/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
        the_drill.run()
    finally:
        the_drill.close()
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    image = re.escape(own_image.format(major=17))
    assert re.fullmatch(rf"PASS backups\[ctshop\]: a PostgreSQL 17 container \({image}\) on "
                        r"127\.0\.0\.1:\d+ \(expected a scratch PostgreSQL 17\)", finding(the_drill, "provision"))
    restore = the_drill.records["restore"].result.evidence
    assert (restore["tool"], restore["in"]) == ("/usr/lib/postgresql/17/bin/pg_restore", "container")
    assert "row counts and checksums = manifest (22,000 rows)" in finding(the_drill, "verify")
    assert "pg_amcheck: every B-tree index consistent" in finding(the_drill, "verify")
    doc = json.loads(Path(str(the_drill.evidence_file)).read_text())
    assert doc["verdict"] == "PASS"
    provision = next(p for p in doc["phases"] if p["phase"] == "provision")["evidence"]
    assert (provision["major"], provision["dump_major"], provision["pg_dump_major"]) == (17, 15, 15)
    assert doc["rto"]["measured_s"] == pytest.approx(sum(doc["rto"]["parts_s"].values()), abs=0.01)
    assert set(doc["rto"]["parts_s"]) == {"provision", "restore", "verify"}
    assert doc["rpo"]["basis"] == "the freshness query on the restore"
    assert 0 <= doc["rpo"]["measured_s"] <= 86400
    assert drill_containers(docker_client, the_drill) == []
    assert the_drill.records["teardown"].result.observed == "scratch instance stopped, working folder removed"


def test_a_plain_dump_restores_into_a_container_of_its_own_major(source: str, tmp_path: Path,
                                                                 docker_client: docker.DockerClient,
                                                                 sandbox_image: str) -> None:
    """No major given: the dump's (15, from its own header), in opsproof's image of it; psql is the container's,
    fed the gunzipped dump on its standard input."""
    params = psycopg.conninfo.conninfo_to_dict(source)
    env = {**os.environ, "PGPASSWORD": str(params.pop("password"))}
    plain = subprocess.run([pg_tool("pg_dump", 15), "--dbname", psycopg.conninfo.make_conninfo(**params)],  # type: ignore[arg-type]
                           env=env, check=True, capture_output=True, timeout=60).stdout
    dump = tmp_path / "ctshop_full_1.sql.gz"
    dump.write_bytes(gzip.compress(plain))
    assert read_header(dump).server_major == 15
    the_drill = drill(source, tmp_path, "ctshop_full_*.sql.gz", tmp_path)
    the_drill.run()
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    assert f"a PostgreSQL 15 container ({sandbox_image}) on 127.0.0.1:" in finding(the_drill, "provision")
    assert "gzip -dc | psql -X -q" in finding(the_drill, "restore")
    assert drill_containers(docker_client, the_drill) == []


@pytest.mark.parametrize("manifest", ["vouching", "absent"])
def test_a_corrupted_dump_fails_the_cross_version_drill(backup: tuple[Path, dict[str, Any]], source: str,
                                                        tmp_path: Path, docker_client: docker.DockerClient,
                                                        postgres17_image: str, manifest: str) -> None:
    """Bytes in the orders' data block flipped. With a manifest that vouches for the file as it is (corrupted
    before it was checksummed), the container's pg_restore fails the restore; without one, the integrity check's
    full read fails first and no container is started."""
    path, meta = backup
    damaged = tmp_path / "dumps" / path.name
    damaged.parent.mkdir()
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    damaged.write_bytes(bytes(data))
    if manifest == "vouching":
        import hashlib

        meta = {**meta, "sha256": hashlib.sha256(bytes(data)).hexdigest()}
        manifest_path(damaged).write_text(json.dumps(meta))
    the_drill = drill(source, damaged.parent, "ctshop_*.dump", tmp_path, major=17)
    the_drill.run()
    phase = "restore" if manifest == "vouching" else "integrity"
    text = finding(the_drill, phase)
    # pg_restore's own words vary with where the flipped bytes land: zlib's check ("could not uncompress data:
    # incorrect data check") mostly, "out of memory" when they hit a data chunk's length (≈ 2 % of offsets)
    if manifest == "vouching":
        assert re.fullmatch(r"FAIL backups\[ctshop\]: restore failed: .+, expected the backup "
                            r"restored without error", text), text
        assert the_drill.records["provision"].result.ok, the_drill.summary()
    else:
        assert re.fullmatch(r"FAIL backups\[ctshop\]: damaged archive: .+, expected an intact "
                            r"archive \(pg_restore --list, every data block read \(pg_restore -f /dev/null\)\)",
                            text), text
        assert verdicts(the_drill)["provision"] == "no-data"
    assert verdicts(the_drill)["verify"] == "no-data"
    assert the_drill.verdict() == "FAIL"
    assert the_drill.records["teardown"].result.ok
    assert drill_containers(docker_client, the_drill) == []


def test_a_17_dump_drills_on_a_host_that_has_only_15(source: str, tmp_path: Path,
                                                      docker_client: docker.DockerClient,
                                                      postgres17_image: str) -> None:
    """A dump by PostgreSQL 17's pg_dump, which the host's pg_restore 15 cannot read ("unsupported version (1.16)
    in file header"): its major comes from its header, the integrity check runs the 17 image's pg_restore in a
    one-off container, and the restore goes into a 17 container — whatever the host has."""
    if Path("/usr/lib/postgresql/17/bin/pg_restore").exists():
        pytest.skip("this host has PostgreSQL 17's tools: the test is about one that has not")
    dump = tmp_path / "ct17_1.dump"
    origin = ScratchContainer(workdir(tmp_path), 17, None, tmp_path)  # a PostgreSQL 17 source of its own
    try:
        origin.start()
        with origin.connect() as conn:
            conn.execute(SQL)
        with dump.open("wb") as out:
            subprocess.run(["docker", "exec", str(origin.container_id), f"{origin.bin}/pg_dump", "-Fc", "-h", "/tmp",
                            "-U", "postgres", "opsproof_restore"], stdout=out, check=True, timeout=60)
    finally:
        origin.stop()
    assert read_header(dump) == Header((1, 16), 17, 17)
    the_drill = drill(source, tmp_path, "ct17_*.dump", tmp_path)
    the_drill.run()
    assert set(verdicts(the_drill).values()) == {"pass"}, the_drill.summary()
    assert f"a PostgreSQL 17 container ({postgres17_image}) on 127.0.0.1:" in finding(the_drill, "provision")
    assert "listed tables present and non-empty: public.orders, public.customers" in finding(the_drill, "verify")
    assert "schema objects of the archive's table of contents present" in finding(the_drill, "verify")
    assert drill_containers(docker_client, the_drill) == []


def test_interrupting_a_container_drill_mid_restore_removes_its_container(
        sandbox: SandboxHelper, tmp_path: Path, docker_client: docker.DockerClient, postgres17_image: str) -> None:
    """`opsproof drill` sent SIGTERM while the container's pg_restore runs: teardown removes the container (by its
    label), and the evidence says so. (SIGTERM is turned into the KeyboardInterrupt of Ctrl-C, the same path under
    pytest; test_dr_drill sends both to `pytest checks/dr_drill` with a local cluster.)"""
    sig = signal.SIGTERM
    with sandbox.superuser() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS ctslow_{int(sig)} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE ctslow_{int(sig)} OWNER app")
    with sandbox.superuser(db=f"ctslow_{int(sig)}") as conn:
        conn.execute("SET ROLE app")
        conn.execute(SLOW_SQL)
    dsn = sandbox.box.dsn("opsproof_backup", db=f"ctslow_{int(sig)}")
    take_postgres(dsn, tmp_path / "backups", "slow_*.dump")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({
        "environment": "drill-container-test", "postgres": {"slow": {"dsn": dsn}},
        "backups": {"slow": {"postgres": "slow", "directory": str(tmp_path / "backups"), "pattern": "slow_*.dump",
                             "scratch": {"kind": "container", "major": 17}}}}))
    out = tmp_path / "out"
    suite = subprocess.Popen(
        [sys.executable, "-m", "opsproof.cli", "drill", "--inventory", str(inventory), "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible)
    try:
        wait_until(lambda: _restoring_in_container(suite.pid), 90, "the container's pg_restore to start")
        assert len(docker_client.containers.list(filters={"label": "=".join(TEST_LABEL)})) == 1
        suite.send_signal(sig)
        output, _ = suite.communicate(timeout=60)
    finally:
        if suite.poll() is None:
            suite.kill()
    assert suite.returncode != 0
    assert docker_client.containers.list(all=True, filters={"label": "=".join(TEST_LABEL)}) == [], output
    [evidence] = (out / "drills").glob("slow-*.json")
    phases = {p["phase"]: p for p in json.loads(evidence.read_text())["phases"]}
    assert phases["teardown"]["verdict"] == "pass", output
    assert phases["provision"]["verdict"] == "pass", output
    assert "restore" not in phases or phases["restore"]["verdict"] != "pass"


def _restoring_in_container(pid: int) -> bool:
    """A `docker exec … pg_restore` child of ``pid`` runs."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and argv[:2] == [b"docker", b"exec"] and any(a.endswith(b"/pg_restore") for a in argv):
            return True
    return False


def test_a_killed_drills_container_is_swept_by_the_next(docker_client: docker.DockerClient,
                                                        sandbox_image: str) -> None:
    """A container of a drill whose process is gone (SIGKILL: no teardown ran) is removed by the next drill's
    sweep; one of a live drill, or of another machine, is left alone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    runs = {"dead": f"opsproof-drill-{dead.stdout.strip()}-abc", "alive": f"opsproof-drill-{os.getpid()}-abc"}
    made = {}
    for who, run_id in runs.items():
        made[who] = docker_client.containers.create(sandbox_image, ["sleep", "60"], labels={
            **dict([TEST_LABEL]), LABEL: run_id, HOST_LABEL: socket.gethostname()})
    elsewhere = docker_client.containers.create(sandbox_image, ["sleep", "60"], labels={
        **dict([TEST_LABEL]), LABEL: runs["dead"] + "x", HOST_LABEL: "another-host"})
    try:
        assert sweep_containers(docker_client) == [made["dead"].name]
        left = {c.id for c in docker_client.containers.list(all=True, filters={"label": "=".join(TEST_LABEL)})}
        assert left == {made["alive"].id, elsewhere.id}
    finally:
        for container in (made["alive"], elsewhere):
            container.remove(force=True)


def test_an_image_of_another_major_fails_the_provision(backup: tuple[Path, dict[str, Any]], source: str,
                                                       tmp_path: Path, docker_client: docker.DockerClient,
                                                       own_image: str) -> None:
    """`scratch.image` naming a PostgreSQL 17 image for a 15 dump without `major: 17`: its server is not the
    version wanted, and the provision fails naming both (and leaves nothing)."""
    path, _ = backup
    image = own_image.format(major=17)
    wrong = drill(source, path.parent, "ctshop_*.dump", tmp_path, image=image)
    wrong.run()
    assert finding(wrong, "provision") == (
        f"FAIL backups[ctshop]: the scratch container's image {image} runs PostgreSQL 17, expected 15. Fix: name an "
        "image of PostgreSQL 15 in scratch.image, expected a scratch instance")
    assert wrong.records["teardown"].result.ok, wrong.summary()
    assert drill_containers(docker_client, wrong) == []
