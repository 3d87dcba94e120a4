"""Named queries of the inventory — the runbooks' PromQL alert expressions and `psql -c "SELECT …"` lines, each
query its own check (``prometheus[main] query pool_usage``)."""

import pytest

from opsproof import verify
from opsproof.probes import promql, sql
from opsproof.result import Result

pytestmark = pytest.mark.smoke


@pytest.mark.check(promql.query)
def test_promql_threshold(result: Result) -> None:
    """`curl $PROM/api/v1/query_range?query=EXPR` — every series within its threshold, over its window."""
    verify(result)


@pytest.mark.check(sql.query)
def test_sql_assertion(result: Result) -> None:
    """`psql -c "SELECT …"` in a READ ONLY transaction with a statement timeout — the result is what it must be."""
    verify(result)
