"""The inventory's ``load:`` section: Locust scenarios against an ``http:`` entry, each with k6-style thresholds.

    load:
      browse:
        service: app                 # an http entry
        users: 20
        spawn_rate: 10               # users started per second (default: all at once)
        duration: 30s
        processes: 2                 # Locust processes on this machine (--processes)
        thresholds: ["p(95) < 200ms", "error_rate < 0.1%", "rps >= 50"]   # over every request
        requests:
          - {name: item, path: /items/1, weight: 5, thresholds: ["p(99) < 500ms"]}
          - {method: POST, path: /items, body: {name: x, tenant_id: 1, price_cents: 1}}
      steady:                        # the open model: 100 requests/s whatever the response times
        service: app
        arrival_rate: 100            # requests per second, over the scenario
        users: 50                    # the most requests in flight at once
        duration: 1m
        thresholds:
          - "rps >= 95"              # fails, too, when the generator could not hold the rate
          - {threshold: "p(95) < 300ms", abort_on_fail: true, grace: 10s}
        requests: [{path: /items}]
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from opsproof.inventory.addresses import masked
from opsproof.inventory.base import _Model
from opsproof.load.thresholds import parse as parse_threshold
from opsproof.util.durations import parse_duration


def _threshold(text: str) -> str:
    parse_threshold(text)  # ValueError with its fix
    return text


ThresholdText = Annotated[str, AfterValidator(_threshold), Field(description="'p(95) < 200ms'")]
Seconds = Annotated[float, BeforeValidator(parse_duration)]


class AbortingThreshold(_Model):
    """A threshold: its text (``"p(95) < 200ms"``), or a mapping that may make it stop the run early on a clear
    breach once ``grace`` has passed since the start (k6's ``abortOnFail`` and ``delayAbortEval``)."""

    threshold: ThresholdText
    abort_on_fail: bool = False
    grace: Seconds = Field(0.0, ge=0, le=24 * 3600, description="10s")

    @model_validator(mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return {"threshold": value} if isinstance(value, str) else value


AnyThreshold = AbortingThreshold


def texts(thresholds: list[AnyThreshold]) -> list[str]:
    return [t.threshold for t in thresholds]


class LoadRequest(_Model):
    """One request a simulated user makes; ``weight`` is how often, relative to the others (0: never)."""

    name: str | None = Field(None, min_length=1, max_length=200)  # default "GET /path"; thresholds refer to it
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = Field(pattern=r"^/\S*$", description="/items/1")
    body: str | dict[str, Any] | list[Any] | None = None  # a mapping or a list is sent as JSON
    headers: dict[str, str] = Field(default_factory=dict)
    weight: int = Field(1, ge=0, le=10_000)
    thresholds: list[AnyThreshold] = Field(default_factory=list)

    @property
    def label(self) -> str:
        """The name Locust groups it by (a path's query values masked: they may be tokens)."""
        return self.name or f"{self.method} {masked(self.path)}"


class LoadScenario(_Model):
    """A Locust run. Closed model (the default): ``users`` users, each making its requests one after another —
    the ``requests`` listed here, or those of a locustfile of your own (``locustfile:``, given Locust's
    ``--host``). Open model (``arrival_rate``): that many requests per second whatever the response times, with
    at most ``users`` in flight, latency measured from when each request was due (``opsproof.load.arrivals``)."""

    service: str = Field(min_length=1, description="the name of an http entry, e.g. app")
    requests: list[LoadRequest] = Field(default_factory=list)
    locustfile: str | None = Field(None, pattern=r"\.py$", description="load/locustfiles/catalogue.py")
    users: int = Field(ge=1, le=100_000)  # the open model: the most requests in flight at once
    arrival_rate: float | None = Field(None, gt=0, le=1_000_000)  # requests/s: the open model
    spawn_rate: float | None = Field(None, gt=0)  # users started per second; default: all at once
    duration: Seconds = Field(gt=0, le=24 * 3600, description="30s")
    max_requests: int = Field(10_000_000, ge=1)  # a hard bound: the run stops there even before its duration
    processes: int = Field(1, ge=1, le=256)  # Locust's --processes: one worker per core of this machine
    # a fleet: this run is Locust's master and waits for this many workers, each started on its machine (or pod)
    # with `opsproof load --worker --master-host HOST --inventory X SCENARIO`
    workers: int = Field(0, ge=0, le=10_000)
    master_bind: str = Field("127.0.0.1", min_length=1, description="0.0.0.0 to accept workers of other machines")
    master_port: int = Field(5557, ge=1, le=65535)
    think_time: Seconds = Field(0.0, ge=0, le=3600)  # each user's pause between two requests
    timeout_s: float = Field(10, gt=0, le=300)  # a request not answered in time fails
    headers: dict[str, str] = Field(default_factory=dict)  # sent with every request
    thresholds: list[AnyThreshold] = Field(default_factory=list)
    # per request name, as Locust groups requests (the names a locustfile of your own gives them)
    request_thresholds: dict[str, list[AnyThreshold]] = Field(default_factory=dict)
    # an overload scenario (load/test_overload.py): the alerts this load must fire within their budget, the time
    # a symptom needs to be measurable (a 1 s answer is seen when it ends), and how soon they resolve after it
    alerts: list[str] = Field(default_factory=list, description="[HighLatency]")
    alert_allowance: Seconds = Field(0.0, ge=0, le=600)
    resolve_within: Seconds = Field(60.0, gt=0, le=3600)
    # a background load for chaos experiments (`opsproof chaos run EXP --load NAME`): it stops when the experiment
    # ends, its duration is only the bound; `pytest load` does not run it on its own
    during_chaos: bool = False

    @model_validator(mode="after")
    def _requests(self) -> LoadScenario:
        if self.workers and self.processes > 1:
            raise ValueError("workers: a fleet's master generates no load itself, so processes: has nothing to "
                             "split. Fix: drop processes: (run more workers instead)")
        if self.arrival_rate is not None:
            if self.locustfile:
                raise ValueError("arrival_rate: the open model schedules the requests opsproof generates; a "
                                 "locustfile of your own paces its users itself. Fix: list the requests: instead, "
                                 "or drop arrival_rate and set users:")
            if self.spawn_rate is not None or self.think_time:
                raise ValueError("arrival_rate: spawn_rate and think_time are the closed model's; with an arrival "
                                 "rate every user starts at once and sends when a request is due. Fix: remove them")
        if bool(self.requests) == bool(self.locustfile):
            which = "both" if self.requests else "neither"
            raise ValueError(f"requests: a scenario has either requests: or a locustfile:, not {which}. Fix: list "
                             "its requests, or name the locustfile")
        if self.locustfile:
            if not self.thresholds and not self.request_thresholds:
                raise ValueError("thresholds: the scenario has none, so it could never fail. Fix: add one, e.g. "
                                 "thresholds: ['p(95) < 200ms', 'error_rate < 1%']")
            return self
        seen: dict[str, int] = {}
        for i, request in enumerate(self.requests):
            if request.label in seen:
                raise ValueError(f"requests.{i}.name: {request.label!r} is already the name of request "
                                 f"{seen[request.label]}. Fix: give each request its own name")
            seen[request.label] = i
        if not any(r.weight for r in self.requests):
            raise ValueError("requests: every weight is 0, so no request would run. Fix: give one a weight ≥ 1")
        unknown = [n for n in self.request_thresholds if n not in seen]
        if unknown:
            raise ValueError(f"request_thresholds: {unknown[0]!r} is not the name of a request of this scenario. "
                             f"Fix: use one of {', '.join(seen)}")
        if not self.thresholds and not self.request_thresholds and not any(r.thresholds for r in self.requests):
            raise ValueError("thresholds: the scenario has none, so it could never fail. Fix: add one, e.g. "
                             "thresholds: ['p(95) < 200ms', 'error_rate < 1%']")
        return self

    @property
    def scenario_thresholds(self) -> list[str]:
        return texts(self.thresholds)

    def _by_name(self) -> dict[str, list[AnyThreshold]]:
        found = {r.label: list(r.thresholds) for r in self.requests if r.thresholds}
        for name, more in self.request_thresholds.items():
            found[name] = [*found.get(name, []), *more]
        return found

    @property
    def thresholds_by_name(self) -> dict[str, list[str]]:
        """Every request name's thresholds: its own (``requests[].thresholds``) and ``request_thresholds``."""
        return {name: texts(found) for name, found in self._by_name().items()}

    @property
    def aborting(self) -> list[tuple[str | None, AbortingThreshold]]:
        """The thresholds marked ``abort_on_fail``, with their request name (None: the whole scenario)."""
        found: list[tuple[str | None, AbortingThreshold]] = [
            (None, t) for t in self.thresholds if t.abort_on_fail]
        for name, more in self._by_name().items():
            found += [(name, t) for t in more if t.abort_on_fail]
        return found

