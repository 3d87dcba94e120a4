"""A backup holds every row (RLS tables included, as the backup role bypasses RLS): it is created readable by its
owner only, whatever the umask; a drill's working folder, where fresh dumps and scratch data live, is private too."""

from __future__ import annotations

import grp
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SandboxHelper

from opsproof.drill.backup import manifest_path, take_postgres, take_redis
from opsproof.drill.scratch import workdir
from opsproof.util.process import postgres_user


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual umask (files 0644): what a backup job runs with unless someone thought of it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("lax_umask")
@pytest.mark.parametrize("pattern", ["app_*.dump", "app_*.sql", "app_*.sql.gz"])
def test_a_postgres_backup_is_created_owner_only(sandbox: SandboxHelper, tmp_path: Path, pattern: str) -> None:
    path, manifest = take_postgres(sandbox.box.dsn("opsproof_backup"), tmp_path, pattern, source="postgres[main]")
    assert manifest["tables"]["public.items"]["rows"] > 0  # the data is there, RLS or not
    assert oct(mode(path)) == oct(0o600)
    assert mode(manifest_path(path)) & 0o077 == 0


@pytest.mark.usefixtures("lax_umask")
def test_a_redis_backup_is_created_owner_only(sandbox: SandboxHelper, tmp_path: Path) -> None:
    path, _ = take_redis(sandbox.box.redis_url(), tmp_path, "cache_*.rdb", source="redis[cache]")
    assert oct(mode(path)) == oct(0o600)


def test_a_drill_working_folder_is_private() -> None:
    """0700; as root, 0710 with group postgres: the scratch server (run as postgres) may enter, no one may list."""
    folder = workdir()
    try:
        user = postgres_user()
        if user is None:
            assert oct(mode(folder)) == oct(0o700)
        else:
            assert (oct(mode(folder)), grp.getgrgid(folder.stat().st_gid).gr_name) == (oct(0o710), user)
    finally:
        shutil.rmtree(folder)


@pytest.mark.usefixtures("lax_umask")
def test_backup_out_creates_its_folder_owner_only(sandbox: SandboxHelper, tmp_path: Path) -> None:
    """`opsproof backup --out DIR`: a DIR it creates is 0700 (it was 0755 under the usual umask)."""
    out = tmp_path / "new" / "backups"
    take_redis(sandbox.box.redis_url(), out, "cache_*.rdb", source="redis[cache]")
    assert oct(mode(out)) == oct(0o700)
    existing = tmp_path / "kept"
    existing.mkdir(mode=0o750)
    take_redis(sandbox.box.redis_url(), existing, "cache_*.rdb", source="redis[cache]")
    assert oct(mode(existing)) == oct(0o750)  # the operator's own folder keeps its mode
