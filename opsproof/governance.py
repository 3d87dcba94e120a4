"""Governance: how checks' results become the run's verdict.

The plugin gathers results; this module decides what they mean for the gate:

- **eventually** — an entry with ``retry: {within_s, consecutive, interval_s}`` is polled until its check passes
  ``consecutive`` times in a row, or ``within_s`` elapses; passing after a failure is ``flaky``.
- **blocked-by** — when a target (or an entry it ``depends_on``) is down, its other failing checks are reported
  as blocked by it: one root cause, not twenty failures. The root cause itself still fails.
- **waivers** — a known finding, with an owner, a ticket and an expiry date, does not fail the run; once
  expired, it does again, loudly.
- **time budget** — once the gate's time is spent, every unfinished check fails as timed out.
- **the gate** — ``--fail-on=SEVERITY``: failed checks below it are listed, and do not fail the run.

Verdicts recorded per check: pass, fail, no-data, flaky, waived, blocked, timed-out.
"""

from __future__ import annotations

import difflib
import re
import time
from collections import deque
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsproof.inventory import KINDS, Inventory, Kind, Path_, Retry, _line_map, _shown
from opsproof.probes import ALL, ProbeSpec, Target
from opsproof.result import Result, Severity

# --- waivers ---------------------------------------------------------------------------------------------


class WaiverError(ValueError):
    """A broken waivers file: the message names file, line, key and fix."""


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` is any text and ``?`` one character; everything else is literal — ``[`` too, since target ids
    (``redis[cache]``) contain brackets that fnmatch would read as a character class."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


class Waiver(BaseModel):
    """A known finding accepted until a date: it does not fail the run while it lasts."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    check: str = Field(min_length=1, description="redis.hit_rate@redis[cache] (or postgres.*@postgres[main])")
    reason: str = Field(min_length=1, description="'cache warming after the migration'")
    owner: str = Field(min_length=1, description="alice@example.com")
    ticket: str = Field(min_length=1, description="OPS-123")
    expires: date = Field(description="2025-06-30 (YYYY-MM-DD)")

    @field_validator("expires", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        text = value.strip() if isinstance(value, str) else None
        if text is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"{_shown(value)!r} is not a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text} is not a calendar date") from None

    def matches(self, key: str, nodeid: str) -> bool:
        """``key`` is ``check@target`` (``redis.hit_rate@redis[cache]``); ``nodeid`` is pytest's test id."""
        pattern = _glob(self.check)
        return bool(pattern.fullmatch(key) or pattern.fullmatch(nodeid))

    def to_record(self) -> dict[str, str]:
        return {"check": self.check, "reason": self.reason, "owner": self.owner, "ticket": self.ticket,
                "expires": self.expires.isoformat()}


@dataclass(frozen=True)
class WaiverDecision:
    """The waiver that matched a failed check, and whether it still holds."""

    waiver: Waiver
    expired: bool

    @property
    def xfail_reason(self) -> str:
        w = self.waiver
        return f"waived: {w.reason} ({w.owner}, {w.ticket}, until {w.expires.isoformat()})"

    @property
    def expired_message(self) -> str:
        w = self.waiver
        return f"waiver for {w.check} ({w.owner}, {w.ticket}) expired on {w.expires.isoformat()}"

    def record(self) -> dict[str, Any]:
        if self.expired:
            return {"waiver_expired": self.waiver.to_record(), "message": self.expired_message}
        return {"verdict": "waived", "waived": self.waiver.to_record()}


@dataclass(frozen=True)
class Waivers:
    items: Sequence[Waiver] = ()
    today: date = field(default_factory=date.today)

    def decide(self, key: str, nodeid: str) -> WaiverDecision | None:
        """The first unexpired waiver matching a failed check; else the first expired one; else None."""
        matching = [w for w in self.items if w.matches(key, nodeid)]
        for waiver in matching:
            if waiver.expires >= self.today:  # valid through its expiry date
                return WaiverDecision(waiver, expired=False)
        return WaiverDecision(matching[0], expired=True) if matching else None


class _WaiverLoader(yaml.SafeLoader):
    """Dates stay text, so that a wrong one (``2025-02-30``) is reported at its line, not as broken YAML."""


def _date_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


_WaiverLoader.add_constructor("tag:yaml.org,2002:timestamp", _date_as_text)

def _describe_waiver_error(err: Mapping[str, Any], source: str, lines: Mapping[Path_, int]) -> str:
    loc: Path_ = tuple(err["loc"])
    line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), lines.get((), 1))
    where = f"[{loc[0]}]" + "".join(f".{p}" for p in loc[1:])
    key = str(loc[-1]) if len(loc) > 1 else ""
    field_info = Waiver.model_fields.get(key)
    example = field_info.description if field_info else ""
    kind, msg = err["type"], str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        guess = difflib.get_close_matches(key, list(Waiver.model_fields), n=1)
        msg = f"unknown key {key!r}"
        fix = f"did you mean {guess[0]!r}" if guess else f"known keys: {', '.join(Waiver.model_fields)}"
    elif kind == "missing":
        msg = "required key is missing"
        fix = f"add '{key}:' (e.g. {example})"
    elif kind == "string_too_short":
        msg = "must not be empty"
        fix = f"write it like {example}"
    elif kind == "model_type":
        msg = f"expected a mapping, got {_shown(err.get('input'))!r}"
        fix = "write each waiver as a mapping with check, reason, owner, ticket and expires"
    else:
        if kind != "value_error" and "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {_shown(err['input'])!r})"
        fix = f"write it like {example}" if example else "correct the value"
    return f"{source}:{line}: {where}: {msg}. Fix: {fix}."


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _WaiverLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def loads_waivers(text: str, source: str = "<waivers>") -> list[Waiver]:
    """Parse and validate a waivers file (a YAML list); raise :class:`WaiverError` naming file, line and fix."""
    try:
        node, data = _parse(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise WaiverError(f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {e.problem or e.context}. "
                          "Fix: check indentation and quoting on that line.") from None
    except Exception as e:  # PyYAML raises more than YAMLError (see opsproof.inventory.loads)
        raise WaiverError(f"{source}:1: not valid YAML ({type(e).__name__}). Fix: write a YAML list.") from None
    if data is None:
        return []  # an empty file: no waivers
    if not isinstance(data, list):
        raise WaiverError(f"{source}:1: (top level): expected a list of waivers, got a {type(data).__name__}. "
                          "Fix: start each waiver with '- check: …' (keys check, reason, owner, ticket, expires).")
    lines = _line_map(node) if node is not None else {}
    waivers: list[Waiver] = []
    problems: list[str] = []
    for i, item in enumerate(data):
        try:
            waivers.append(Waiver.model_validate(item))
        except ValidationError as e:
            problems += [_describe_waiver_error({**err, "loc": (i, *err["loc"])}, source, lines) for err in e.errors()]
    if problems:
        head = f"{source}: {len(problems)} problem(s) in the waivers:\n  " if len(problems) > 1 else ""
        raise WaiverError(head + "\n  ".join(problems))
    return waivers


def load_waivers(path: str | Path) -> list[Waiver]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise WaiverError(f"{p}: cannot read the waivers file ({e.strerror or e}). Fix: check the path.") from None
    except UnicodeDecodeError:
        raise WaiverError(f"{p}:1: not UTF-8 text. Fix: save the file as UTF-8.") from None
    return loads_waivers(text, str(p))


# --- eventually ------------------------------------------------------------------------------------------


class TimedOut(Exception):
    """The gate's time budget ran out before the check finished."""


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False


def eventually(
    attempt: Callable[[], Result],
    retry: Retry,
    *,
    wait: Callable[[float], bool] = _sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Result:
    """Run ``attempt`` until it passes ``retry.consecutive`` times in a row, or ``retry.within_s`` elapses.

    No attempt starts after ``within_s``; between attempts, ``wait(interval_s)`` (it returns True when the run
    is stopping, e.g. its time budget is spent: then :class:`TimedOut` is raised). A result with no verdict
    (``ok is None``) is returned at once: polling cannot make data appear that the check needs.
    """
    start = clock()
    history = _History()
    streak = 0
    last_failure: Result | None = None
    while True:
        result = attempt()
        history.add(result)
        if result.ok is None:
            return _polled(result, history, retry, clock() - start)
        if result.ok:
            streak += 1
        else:
            streak, last_failure = 0, result
        if streak >= retry.consecutive:
            return _polled(result, history, retry, clock() - start)
        if clock() - start + retry.interval_s > retry.within_s:
            return _never(result, last_failure, streak, history, retry, clock() - start)
        if wait(retry.interval_s):
            raise TimedOut


class _History:
    """How many attempts were made, and the last few (as evidence)."""

    def __init__(self, keep: int = 20) -> None:
        self.count = 0
        self.recent: deque[Result] = deque(maxlen=keep)

    def add(self, result: Result) -> None:
        self.count += 1
        self.recent.append(result)


def _polling(history: _History, retry: Retry, elapsed: float) -> dict[str, Any]:
    return {"attempts": history.count, "elapsed_s": round(elapsed, 3), "within_s": retry.within_s,
            "consecutive": retry.consecutive, "interval_s": retry.interval_s,
            "history": [{"ok": r.ok, "observed": r.observed} for r in history.recent]}


def _polled(result: Result, history: _History, retry: Retry, elapsed: float) -> Result:
    return replace(result, attempts=history.count, duration_s=elapsed,
                   evidence={**result.evidence, "polling": _polling(history, retry, elapsed)})


def _never(last: Result, last_failure: Result | None, streak: int, history: _History, retry: Retry,
           elapsed: float) -> Result:
    """The check did not reach ``consecutive`` passes in a row within ``within_s``: a failure that says so."""
    base = last_failure or last
    needed = f"needed {retry.consecutive} consecutive pass{'es' if retry.consecutive != 1 else ''}"
    tail = f"after {history.count} attempts in {elapsed:.1f} s ({needed})"
    observed = f"{base.observed}, then only {streak} pass(es) in a row, {tail}" if streak else f"{base.observed} {tail}"
    return replace(base, ok=False, observed=observed, attempts=history.count, duration_s=elapsed,
                   evidence={**base.evidence, "polling": _polling(history, retry, elapsed)})


def is_flaky(result: Result, retry: Retry | None) -> bool:
    """Passed, but only after at least one attempt that did not (more attempts than passes needed)."""
    return retry is not None and result.ok is True and result.attempts > retry.consecutive


# --- time budget -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """The gate's time budget for the whole run (``--time-budget``); ``seconds=None`` is no budget."""

    seconds: float | None
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float | None:
        return None if self.seconds is None else max(0.0, self.start + self.seconds - time.monotonic())

    def exhausted(self) -> bool:
        return self.seconds is not None and time.monotonic() >= self.start + self.seconds

    @property
    def message(self) -> str:
        return f"timed out: the gate's time budget of {self.seconds:g} s was exhausted"


def timed_out(spec: ProbeSpec, target: Target[Any], budget: Budget) -> Result:
    return Result(target=target.id, check=spec.check, ok=False, observed=budget.message,
                  expected=spec.expected(target.config), evidence={"time_budget_s": budget.seconds})


# --- blocked-by ------------------------------------------------------------------------------------------

# the check that says whether a target is reachable at all, per kind
REACHABILITY: dict[Kind, str] = {spec.kind: spec.check for spec in ALL if spec.root}  # declared: @probe(root=True)
_SPECS = {spec.check: spec for spec in ALL}


def root_spec(kind: Kind) -> ProbeSpec | None:
    """The reachability probe of a kind (None for kinds without one yet)."""
    check = REACHABILITY.get(kind)
    return _SPECS.get(check) if check else None


@dataclass(frozen=True)
class Blocked:
    by: str  # the target that is down: "postgres[main]"
    root: str  # its failed reachability check: "postgres.ready@postgres[main]"
    observed: str  # what that check saw: "unreachable (OperationalError: …)"

    @property
    def reason(self) -> str:
        return f"blocked by {self.by}: {self.observed}"


Fetch = Callable[[ProbeSpec, Target[Any]], Result]  # a probe's result (raises TimedOut when the budget is spent)


def _dependency(inventory: Inventory, ref: str) -> Target[Any] | None:
    kind = next((k for k in KINDS if k == ref.partition(".")[0]), None)
    name = ref.partition(".")[2]
    return Target(kind, name, inventory.targets(kind)[name]) if kind and name in inventory.targets(kind) else None


def _dependencies(target: Target[Any]) -> list[str]:
    """``depends_on``, and for an SLO the Prometheus it is read from."""
    refs = list(getattr(target.config, "depends_on", []))
    if target.kind == "slo":
        refs.append(f"prometheus.{target.config.prometheus}")
    return refs


def _root_result(target: Target[Any], fetch: Fetch, reported: Container[str]) -> tuple[ProbeSpec, Result] | None:
    """The target's reachability check and its result — only when this run reports that check: a root cause
    the run does not show as failed (deselected, say) must not turn the checks it would block into skips."""
    spec = root_spec(target.kind)
    if spec is None or not spec.applies(target.config) or f"{spec.check}@{target.id}" not in reported:
        return None
    try:
        return spec, fetch(spec, target)
    except TimedOut:
        return None


def _down(target: Target[Any], fetch: Fetch, reported: Container[str]) -> tuple[ProbeSpec, Result] | None:
    """The target's reachability check and its result when that check failed in this run."""
    found = _root_result(target, fetch, reported)
    return found if found is not None and found[1].ok is False else None


def _down_dependencies(target: Target[Any], inventory: Inventory, fetch: Fetch,
                       reported: Container[str]) -> list[tuple[Target[Any], tuple[ProbeSpec, Result]]]:
    out = []
    for ref in _dependencies(target):
        dep = _dependency(inventory, ref)
        down = _down(dep, fetch, reported) if dep is not None and dep.id != target.id else None
        if dep is not None and down is not None:
            out.append((dep, down))
    return out


def _real_failure(target: Target[Any], inventory: Inventory, fetch: Fetch, reported: Container[str],
                  ) -> Blocked | None:
    """The failed reachability check that a down ``target``'s chain of down dependencies ends in: the first
    *sink* it leads to — a down target none of whose dependencies is down. A sink's reachability check always
    fails (nothing can block it); so does that of a down target that leads to no sink (a ``depends_on`` cycle
    that slipped past the inventory), which is why blocking never goes round in a circle."""
    stack = list(reversed(_down_dependencies(target, inventory, fetch, reported)))
    seen = {target.id, *(dep.id for dep, _ in stack)}
    while stack:
        current, (spec, result) = stack.pop()
        deps = _down_dependencies(current, inventory, fetch, reported)
        if not deps:
            return Blocked(current.id, f"{spec.check}@{current.id}", result.observed)
        stack.extend(dep for dep in reversed(deps) if dep[0].id not in seen)
        seen.update(dep.id for dep, _ in deps)
    return None


def _blocked_by_down(target: Target[Any], down: tuple[ProbeSpec, Result], inventory: Inventory, fetch: Fetch,
                     reported: Container[str]) -> Blocked:
    """A check blocked by the down ``target``: by the real failure its chain ends in, or by ``target`` itself
    when it leads to none (then its reachability check is not blocked: it fails)."""
    spec, result = down
    return (_real_failure(target, inventory, fetch, reported)
            or Blocked(target.id, f"{spec.check}@{target.id}", result.observed))


def find_blocker(spec: ProbeSpec, target: Target[Any], result: Result, inventory: Inventory, fetch: Fetch,
                 reported: Container[str]) -> Blocked | None:
    """What a failed check is blocked by, if anything: always a reachability check that fails in this run.

    (a) the same target: the check failed as unreachable and so did the target's reachability check;
    (b) ``depends_on``: the reachability check of an entry this one depends on failed.
    The reachability check itself is blocked only by a sink its dependencies lead to (:func:`_real_failure`),
    so the root cause of every blocked check fails, whatever the order the checks are judged in.
    ``reported`` holds the ``check@target`` of every check this run reports: only those can be root causes.
    """
    if result.ok is not False:
        return None
    root = root_spec(target.kind)
    if root is not None and root.check == spec.check:
        return _real_failure(target, inventory, fetch, reported)
    if result.error and root is not None:
        found = _down(target, fetch, reported)
        if found is not None and found[1].error:
            return _blocked_by_down(target, found, inventory, fetch, reported)
    deps = _down_dependencies(target, inventory, fetch, reported)
    return _blocked_by_down(*deps[0], inventory, fetch, reported) if deps else None


# --- one check's verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    result: Result
    verdict: str  # pass, fail, no-data, flaky, blocked, timed-out (waived is decided once the test has failed)
    blocked: Blocked | None = None

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"verdict": self.verdict}
        if self.verdict == "flaky":
            record["flaky"] = True
        if self.blocked is not None:
            record.update(blocked_by=self.blocked.by, root_cause=self.blocked.root)
        return record


def judge(spec: ProbeSpec, target: Target[Any], fetch: Fetch, inventory: Inventory, budget: Budget,
          reported: Container[str] = frozenset()) -> Judgement:
    """The verdict of one check: its result, then timed-out, blocked or flaky where they apply."""
    try:
        result = fetch(spec, target)
    except TimedOut:
        return Judgement(timed_out(spec, target, budget), "timed-out")
    if result.ok is False:
        blocker = find_blocker(spec, target, result, inventory, fetch, reported)
        return Judgement(result, "blocked", blocker) if blocker else Judgement(result, "fail")
    if is_flaky(result, getattr(target.config, "retry", None)):
        return Judgement(result, "flaky")
    return Judgement(result, result.verdict)


# --- the gate --------------------------------------------------------------------------------------------


@dataclass
class _Failed:
    severity: Severity
    target: str
    check: str

    @property
    def key(self) -> str:
        return f"{self.check}@{self.target}"


@dataclass
class Gate:
    """Reads every test report of the run; decides the exit status under ``--fail-on`` and writes the summary.

    Only a failed opsproof check (call phase, with a severity) below the gate is tolerated: a test that is not
    a check, a setup or teardown error, a collection error always counts.
    """

    fail_on: Severity = Severity.LOW
    budget: Budget = field(default_factory=lambda: Budget(None))
    waivers: Sequence[Waiver] = ()
    counting: list[str] = field(default_factory=list)
    below: list[_Failed] = field(default_factory=list)
    waived: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    expired: list[tuple[str, str, str]] = field(default_factory=list)  # (check, message, waiver pattern)
    flaky: list[tuple[str, int]] = field(default_factory=list)
    blocked: dict[str, list[str]] = field(default_factory=dict)  # blocker target -> checks it blocked
    escalated: dict[str, Severity] = field(default_factory=dict)  # root check@target -> highest it blocked
    timed_out: list[str] = field(default_factory=list)
    checks: int = 0  # check reports seen; a run without checks (the engine's own tests) gets no summary
    stopped: bool = False  # the run stopped early (-x, --maxfail): nothing is forgiven

    def observe(self, nodeid: str, when: str, outcome: str, record: Mapping[str, Any] | None) -> None:
        verdict = record.get("verdict") if record else None
        label = f"{record.get('target')} {record.get('check')}" if record else nodeid
        if record is not None:
            self.checks += 1
            if verdict == "waived":
                self.waived.append((label, dict(record["waived"])))
            elif verdict == "flaky":
                self.flaky.append((label, int(record.get("attempts", 0))))
            elif verdict == "blocked":
                self.blocked.setdefault(str(record["blocked_by"]), []).append(label)
                root, blocked_severity = str(record["root_cause"]), Severity(record["severity"])
                if root not in self.escalated or blocked_severity.rank > self.escalated[root].rank:
                    self.escalated[root] = blocked_severity
            elif verdict == "timed-out":
                self.timed_out.append(label)
            if "waiver_expired" in record:
                self.expired.append((label, str(record["message"]), str(record["waiver_expired"]["check"])))
        if outcome != "failed":
            return
        severity = record.get("severity") if record else None
        if when == "call" and record is not None and severity and "check" in record:
            failed = _Failed(Severity(severity), str(record["target"]), str(record["check"]))
            if failed.severity.rank < self.fail_on.rank:
                self.below.append(failed)
                return
        self.counting.append(nodeid)

    def failed_collection(self, nodeid: str) -> None:
        self.counting.append(nodeid or "<collection>")

    def _tolerated(self) -> tuple[list[_Failed], list[_Failed]]:
        """Failures below the gate, split into tolerated and those that block checks at or above it."""
        kept: list[_Failed] = []
        escalated: list[_Failed] = []
        for f in self.below:
            blocks = self.escalated.get(f.key)
            (escalated if blocks is not None and blocks.rank >= self.fail_on.rank else kept).append(f)
        return kept, escalated

    def exit_status(self, status: int, *, stopped: bool = False) -> int:
        """``status`` with failures below the gate forgiven: 1 (tests failed) becomes 0 when only they failed.

        Not when the run stopped early (``-x``, ``--maxfail``): the checks after the failure never ran.
        """
        self.stopped = stopped
        kept, escalated = self._tolerated()
        return 0 if status == 1 and kept and not escalated and not self.counting and not stopped else status

    def summary(self) -> list[tuple[str, bool]]:
        """Lines for the terminal summary, each with whether it must stand out (red)."""
        lines: list[tuple[str, bool]] = []
        if not self.checks:
            return lines
        sev = self.fail_on.value
        higher = [s.value for s in Severity if s.rank >= self.fail_on.rank]
        gate = ("any failed check fails the run" if self.fail_on is Severity.LOW
                else f"failed checks of severity {' or '.join(higher)} fail the run")
        lines.append((f"opsproof: gate --fail-on={sev}: {gate}", False))
        kept, escalated = self._tolerated()
        if kept:
            groups = []
            for s in Severity:
                names = [f"{f.target} {f.check}" for f in kept if f.severity is s]
                if names:
                    groups.append(f"{s.value}: {_some(names)}")
            if self.stopped:
                lines.append((f"opsproof: {len(kept)} failed check(s) below --fail-on={sev} ({'; '.join(groups)}) "
                              "still fail this run: it stopped early (-x/--maxfail), later checks did not run", True))
            else:
                lines.append((f"opsproof: {len(kept)} failed check(s) below --fail-on={sev} ({'; '.join(groups)}) "
                              "do not fail the run", False))
        for f in escalated:
            lines.append((f"opsproof: {f.target} {f.check} ({f.severity.value}) fails the run despite "
                          f"--fail-on={sev}: it blocks checks of severity {self.escalated[f.key].value}", True))
        for blocker, checks in self.blocked.items():
            lines.append((f"opsproof: {len(checks)} check(s) blocked by {blocker}: {_some(checks)}", False))
        for label, w in self.waived:
            lines.append((f"opsproof: waived: {label} — {w['reason']} (owner {w['owner']}, ticket {w['ticket']}, "
                          f"until {w['expires']})", False))
        for label, message, _ in self.expired:
            lines.append((f"opsproof: EXPIRED WAIVER: {message} — {label} fails", True))
        used = {w["check"] for _, w in self.waived} | {pattern for _, _, pattern in self.expired}
        unused = [w for w in self.waivers if w.check not in used]
        if unused:
            lines.append((f"opsproof: {len(unused)} waiver(s) matched no failed check in this run: "
                          + _some([f"{w.check} ({w.owner}, {w.ticket})" for w in unused]), False))
        if self.flaky:
            lines.append((f"opsproof: {len(self.flaky)} flaky check(s) passed only after failing: "
                          + _some([f"{label} ({n} attempts)" for label, n in self.flaky]), False))
        if self.timed_out:
            lines.append((f"opsproof: {self.budget.message.removeprefix('timed out: ')}: "
                          f"{len(self.timed_out)} check(s) timed out", True))
        return lines


def _some(names: Sequence[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")
