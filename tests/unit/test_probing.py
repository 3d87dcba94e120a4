"""The prober under a time budget, with probes that answer at once or never (until the test lets them): a ready
result outlives the budget, an unfinished check says what it waits for, and nothing waits for a probe in flight.
The clock is fake (the budget is spent when the test says so); the probes are real threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from opsproof.governance import Budget, TimedOut
from opsproof.inventory import loads
from opsproof.probes import Connections, Target
from opsproof.probes.base import Outcome, ProbeSpec, probe
from opsproof.probing import Prober
from opsproof.result import Severity
from opsproof.util.poll import wait_until

if TYPE_CHECKING:
    from tests.unit.conftest import FakeClock

INV = loads("environment: t\nhttp:\n" + "".join(f"  {n}: {{url: 'http://u:pw-{n}@{n}.example:8080'}}\n"
                                                for n in "abcd"), "t.yaml")
RELEASE = threading.Event()  # lets every blocked probe end (set after each test)


@probe("t.quick", "http", Severity.HIGH, "true", expected=lambda cfg: "an answer")
def quick(target: Target[Any], conns: Connections) -> Outcome:
    return Outcome(True, "answered")


@probe("t.hung", "http", Severity.HIGH, "sleep infinity", expected=lambda cfg: "an answer")
def hung(target: Target[Any], conns: Connections) -> Outcome:
    RELEASE.wait()
    return Outcome(True, "answered, too late")


def target(name: str) -> Target[Any]:
    return Target("http", name, INV.http[name])


@pytest.fixture
def prober(fake_clock: FakeClock) -> Iterator[Prober]:
    RELEASE.clear()
    made = Prober(Budget(60, start=fake_clock.now), concurrency=2)
    yield made
    made.close()
    RELEASE.set()


def started(prober: Prober, count: int) -> None:
    wait_until(lambda: prober.in_flight == count, 10, f"{count} probe(s) in flight")


def timed_out(prober: Prober, spec: ProbeSpec, name: str) -> str:
    with pytest.raises(TimedOut) as caught:
        prober.fetch(spec, target(name))
    assert caught.value.waiting is not None
    return caught.value.waiting.describe()


def test_a_ready_result_outlives_the_budget(prober: Prober, fake_clock: FakeClock) -> None:
    prober.prefetch([(hung, target("a")), (quick, target("b"))])
    wait_until(lambda: prober.jobs["t.quick:http[b]"].future.done(), 10, "the quick probe answered")
    fake_clock.advance(61)
    assert prober.fetch(quick, target("b")).observed == "answered"
    assert timed_out(prober, hung, "a") == "still waiting for http[a] (http://u:***@a.example:8080), running for 61.0 s"


def test_a_check_never_started_counts_the_checks_ahead_of_it(prober: Prober, fake_clock: FakeClock) -> None:
    prober.prefetch([(hung, target(name)) for name in "abcd"])
    started(prober, 2)
    fake_clock.advance(60)
    assert [timed_out(prober, hung, name) for name in "abcd"] == [
        "still waiting for http[a] (http://u:***@a.example:8080), running for 60.0 s",
        "still waiting for http[b] (http://u:***@b.example:8080), running for 60.0 s",
        "http[c] (http://u:***@c.example:8080) never started (queued behind 2 checks)",
        "http[d] (http://u:***@d.example:8080) never started (queued behind 3 checks)"]


@pytest.mark.parametrize(("concurrency", "second"), [(1, "0 checks"), (2, "1 check")], ids=["on demand", "prefetched"])
def test_no_probe_starts_once_the_budget_is_spent(fake_clock: FakeClock, concurrency: int, second: str) -> None:
    """A start-up that took the whole budget (it counts from the process's start): no probe runs at all."""
    calls: list[str] = []

    @probe("t.counted", "http", Severity.HIGH, "true", expected=lambda cfg: "an answer")
    def counted(target: Target[Any], conns: Connections) -> Outcome:
        calls.append(target.id)
        return Outcome(True, "answered")

    prober = Prober(Budget(5, start=fake_clock.now - 6), concurrency=concurrency)
    prober.prefetch([(counted, target(name)) for name in "ab"])
    assert [timed_out(prober, counted, name) for name in "ab"] == [
        "http[a] (http://u:***@a.example:8080) never started (queued behind 0 checks)",
        f"http[b] (http://u:***@b.example:8080) never started (queued behind {second})"]
    prober.close()
    assert calls == []


def test_closing_waits_for_no_probe_and_the_last_one_closes_the_clients(prober: Prober) -> None:
    prober.prefetch([(hung, target("a")), (hung, target("b"))])
    started(prober, 2)
    threads = [t for t in threading.enumerate() if t.name.startswith("opsproof-probe")]
    assert threads
    assert all(t.daemon for t in threads)  # not joined at interpreter exit
    closed = threading.Event()
    prober.conns.close = closed.set  # type: ignore[method-assign]
    prober.close()  # returns with both probes blocked
    assert not closed.is_set()  # their clients are not closed from under them
    RELEASE.set()
    wait_until(closed.is_set, 10, "the last probe to end closed the clients")
    assert prober.in_flight == 0




ROOT_GATE = threading.Event()  # lets the gated root check end
ORDER: list[str] = []


@probe("t.root", "http", Severity.CRITICAL, "curl -f $URL/health", expected=lambda cfg: "an answer", root=True)
def gated_root(target: Target[Any], conns: Connections) -> Outcome:
    ROOT_GATE.wait(10)
    ORDER.append(f"root {target.id}")
    return Outcome(False, "the server sent 49 bytes, then trickled")


@probe("t.other", "http", Severity.HIGH, "redis-cli info", expected=lambda cfg: "an answer")
def other(target: Target[Any], conns: Connections) -> Outcome:
    ORDER.append(f"other {target.id}")
    return Outcome(False, "waited for the entry's connection")


@pytest.fixture
def gated() -> Iterator[None]:
    ORDER.clear()
    ROOT_GATE.clear()
    yield
    ROOT_GATE.set()


@pytest.mark.usefixtures("gated")
def test_a_targets_checks_start_after_its_reachability_check(prober: Prober) -> None:
    """The checks of one target share its client (one Redis connection): the reachability check runs first and
    sees what the server does; the others start once it has its result (queued ahead of it or not)."""
    prober.prefetch([(other, target("a")), (gated_root, target("a"))])
    started(prober, 2)  # the root, and the check waiting for it
    assert ORDER == []
    ROOT_GATE.set()
    assert prober.fetch(other, target("a")).observed == "waited for the entry's connection"
    assert ORDER == ["root http[a]", "other http[a]"]


@pytest.mark.usefixtures("gated")
def test_a_stopped_run_does_not_keep_the_others_waiting_for_a_hung_root(prober: Prober) -> None:
    prober.prefetch([(gated_root, target("a")), (other, target("a"))])
    started(prober, 2)
    prober.expire()  # the budget is spent: nothing waits for the hung root any more
    wait_until(lambda: "other http[a]" in ORDER, 10, "the other check ran once the run stopped")
    assert ORDER == ["other http[a]"]


def test_requests_is_imported_on_the_main_thread_only_for_kubernetes_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`requests` must be imported while only the main thread runs (see opsproof.probes.MAIN_THREAD_IMPORTS), and
    only by a run that has Kubernetes checks: no probe module imports it when loaded, so a run of HTTP checks does
    not pay its ~80 ms."""
    import ast
    from pathlib import Path

    import opsproof.probes as probes

    folder = Path(probes.__file__).parent
    top_level = {(path.name, alias.name) for path in folder.glob("*.py") for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in top_level if name[1].split(".")[0] in ("requests", "kubernetes")} == set()
    imported: list[str] = []
    monkeypatch.setattr(probes.importlib, "import_module", imported.append)
    probes.prepare(["http", "postgres"])
    assert imported == []
    probes.prepare(["http", "kubernetes", "kubernetes"])
    assert imported == ["requests"]
