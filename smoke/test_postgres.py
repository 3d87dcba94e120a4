"""PostgreSQL — `pg_isready` and the DBA queries from the runbooks, on a read-only session."""

import pytest

from opsproof import verify
from opsproof.probes import pg_archive, postgres
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(postgres.ready)
def test_accepting_connections(result: Result) -> None:
    """`pg_isready -h $HOST` — the server accepts connections and answers."""
    verify(result)


@pytest.mark.check(postgres.connections)
def test_connections_below_ceiling(result: Result) -> None:
    """`SELECT count(*) FROM pg_stat_activity` — connections stay below the ceiling of max_connections."""
    verify(result)


@pytest.mark.check(postgres.long_queries)
def test_no_long_running_queries(result: Result) -> None:
    """`SELECT … FROM pg_stat_activity WHERE state = 'active'` — no query runs past the ceiling."""
    verify(result)


@pytest.mark.check(postgres.cache_hit)
def test_cache_hit_ratio(result: Result) -> None:
    """`SELECT blks_hit / (blks_hit + blks_read) FROM pg_stat_database` — the cache hit ratio is above the floor."""
    verify(result)


@pytest.mark.check(postgres.rls)
def test_row_level_security(result: Result) -> None:
    """`SELECT relrowsecurity FROM pg_class` — tenant tables have row-level security enabled."""
    verify(result)


@pytest.mark.check(postgres.extensions)
def test_required_extensions(result: Result) -> None:
    """`SELECT extname FROM pg_extension` — the extensions the application needs are installed."""
    verify(result)


@pytest.mark.check(postgres.replica_lag)
def test_replica_lag(result: Result) -> None:
    """`SELECT now() - pg_last_xact_replay_timestamp()` on each replica — replication lag below the ceiling."""
    verify(result)


@pytest.mark.check(pg_archive.wal_archiving)
def test_wal_archiving(result: Result) -> None:
    """`SELECT * FROM pg_stat_archiver` — archiving on, not failing, no WAL older than the RPO missing from it."""
    verify(result)
