"""``abort_on_fail``: a threshold that stops the run early on a clear breach, once its grace period has passed
(k6's ``abortOnFail`` with ``delayAbortEval``).

The master (or a local run's process) judges each such threshold once a second on everything measured so far, as
the end-of-run verdict would. A breach is *clear* only when waiting could not change it: a latency or error-rate
threshold needs ``MIN_SAMPLES`` requests first (three slow answers out of three are not a finding), ``requests >=
N`` is never aborted on (it may still be met), and nothing is aborted while the generator is saturated (the
verdict would be "no verdict", not a fail). Plain code: the Locust plugin calls it, the runner builds the rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from opsproof.load.histogram import Tally
from opsproof.load.thresholds import Figures, Threshold, Verdict, judge, parse

ENV = "OPSPROOF_LOAD_ABORT"  # the rules, as JSON, for the Locust plugin
MIN_SAMPLES = 50
CHECK_EVERY_S = 1.0


@dataclass(frozen=True)
class Rule:
    subject: str  # load[s] or load[s/name]
    name: str | None  # the request name, None for the whole scenario
    threshold: str
    grace_s: float


def encode(rules: list[Rule]) -> str:
    return json.dumps([asdict(r) for r in rules])


def decode(text: str | None) -> list[Rule]:
    return [Rule(**r) for r in json.loads(text)] if text else []


def _percentile_met(threshold: Threshold, tally: Tally) -> bool:
    """A cheap look (a sum over the counters up to the bound) at whether p(N) still meets its bound: p(N) < B
    exactly when the sample at p(N)'s rank is below B, i.e. when at least that many samples are."""
    assert threshold.percentile is not None
    total = int(tally.histogram.get_total_count())
    rank = max(int(min(threshold.percentile, 100) * total / 100 + 0.5), 1)
    if threshold.op in ("<", "<="):
        return tally.below(threshold.bound, inclusive=threshold.op == "<=") >= rank
    return total - tally.below(threshold.bound, inclusive=threshold.op == ">") >= total - rank + 1


def breach(rule: Rule, tally: Tally | None, elapsed_s: float, generator_cpu: float = 0.0,
           schedule: tuple[int, int, int] | None = None) -> Verdict | None:
    """The failed verdict if ``rule``'s threshold is clearly breached now, else None."""
    if elapsed_s < rule.grace_s or tally is None:
        return None
    threshold = parse(rule.threshold)
    if threshold.metric == "requests" and threshold.op in (">", ">="):
        return None
    if (threshold.latency or threshold.metric == "error_rate") and tally.requests < MIN_SAMPLES:
        return None
    if threshold.percentile is not None and _percentile_met(threshold, tally):
        return None  # most checks end here, without the percentile's full pass over the counters
    figures = Figures(tally.requests, tally.failures, elapsed_s, tally.latency_us, schedule)
    verdict = judge(rule.subject, threshold, figures, generator_cpu)
    return verdict if verdict.ok is False else None


def first_breach(rules: list[Rule], tallies: Mapping[str | None, Tally], elapsed_s: float,
                 generator_cpu: float = 0.0, schedule: tuple[int, int, int] | None = None
                 ) -> tuple[Rule, Verdict] | None:
    """The first rule clearly breached now; ``tallies`` by request name, None for the whole scenario."""
    for rule in rules:
        verdict = breach(rule, tallies.get(rule.name), elapsed_s, generator_cpu, schedule)
        if verdict is not None:
            return rule, verdict
    return None


def record(rule: Rule, verdict: Verdict, at_s: float) -> dict[str, Any]:
    """What the run record says of the abort."""
    return {"subject": rule.subject, "threshold": rule.threshold, "grace_s": rule.grace_s, "at_s": round(at_s, 2),
            "message": f"{verdict.message()} — aborted the run at {at_s:.1f} s (grace {rule.grace_s:g} s)"}
