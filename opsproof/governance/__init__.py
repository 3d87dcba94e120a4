"""Governance: how checks' results become the run's verdict.

The plugin gathers results; this package decides what they mean for the gate, one module per concern:

- **eventually** (:mod:`.retry`) — an entry with ``retry: {within_s, consecutive, interval_s}`` is polled until
  its check passes ``consecutive`` times in a row, or ``within_s`` elapses; passing after a failure is ``flaky``.
- **blocked-by** (:mod:`.blocking`) — when a target (or an entry it ``depends_on``) is down, its other failing
  checks are reported as blocked by it: one root cause, not twenty failures. The root cause itself still fails.
- **waivers** (:mod:`.waivers`) — a known finding, with an owner, a ticket and an expiry date, does not fail the
  run; once expired, it does again, loudly.
- **time budget** (:mod:`.budget`) — once the gate's time is spent, every unfinished check fails as timed out,
  naming the target it was waiting for; a check whose result is ready keeps its verdict.
- **one check's verdict** (:mod:`.verdict`) — its result, then timed-out, blocked or flaky where they apply.
- **the gate** (:mod:`.gate`) — ``--fail-on=SEVERITY``: failed checks below it are listed, and do not fail the run.

Verdicts recorded per check: pass, fail, no-data, flaky, waived, blocked, timed-out.
Every name is importable from ``opsproof.governance``.
"""

from opsproof.governance.blocking import (
    _SPECS,
    REACHABILITY,
    Blocked,
    Fetch,
    _blocked_by_down,
    _dependencies,
    _dependency,
    _down,
    _down_dependencies,
    _real_failure,
    _root_result,
    find_blocker,
    root_spec,
)
from opsproof.governance.budget import Budget, TimedOut, Waiting, timed_out
from opsproof.governance.gate import Gate, _Failed, _some
from opsproof.governance.retry import _History, _never, _polled, _polling, _sleep, eventually, is_flaky
from opsproof.governance.verdict import Judgement, judge
from opsproof.governance.waivers import (
    Waiver,
    WaiverDecision,
    WaiverError,
    Waivers,
    _date_as_text,
    _describe_waiver_error,
    _glob,
    _parse,
    _WaiverLoader,
    load_waivers,
    loads_waivers,
)

__all__ = [
    "REACHABILITY", "_SPECS", "Blocked", "Budget", "Fetch", "Gate", "Judgement", "TimedOut", "Waiting", "Waiver",
    "WaiverDecision", "WaiverError", "Waivers", "_Failed", "_History", "_WaiverLoader", "_blocked_by_down",
    "_date_as_text", "_dependencies", "_dependency", "_describe_waiver_error", "_down", "_down_dependencies", "_glob",
    "_never", "_parse", "_polled", "_polling", "_real_failure", "_root_result", "_sleep", "_some", "eventually",
    "find_blocker", "is_flaky", "judge", "load_waivers", "loads_waivers", "root_spec", "timed_out",
]
