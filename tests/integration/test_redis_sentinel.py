"""Redis Sentinel, for real: a master, a replica and three `redis-server --sentinel` processes on loopback (one set
for the module, started together), the sentinels with a password of their own (`requirepass` in sentinel.conf, and
`sentinel sentinel-pass` to reach each other). Healthy, every check of the entry passes; the sentinels' password
wrong or missing fails exactly the two sentinel checks, saying authentication failed; sentinels killed below the
quorum fail exactly redis.sentinel_quorum, naming them; the master killed under sentinels that have not failed over
(their down-after is a minute) fails exactly redis.sentinel_master, naming the address they still give."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from redis_servers import Server, failing, results, servers

from opsproof.inventory import loads
from opsproof.result import Result
from opsproof.util.poll import wait_until

pytestmark = pytest.mark.integration

PASSWORD = "sentinel-test-pw"  # the master's and the replica's
SENTINEL_PASSWORD = "sentinels-own-pw-3Kd9"  # the sentinels' own, distinct from the data nodes'
SENTINEL = ("sentinel monitor mymaster 127.0.0.1 {port_master} 2\n"
            f"sentinel auth-pass mymaster {PASSWORD}\n"
            "sentinel down-after-milliseconds mymaster 60000\n"
            f"requirepass {SENTINEL_PASSWORD}\nsentinel sentinel-pass {SENTINEL_PASSWORD}\n")
CONFIGS = {
    "master": f'requirepass {PASSWORD}\nsave ""\nappendonly no\n',
    "replica": f'requirepass {PASSWORD}\nmasterauth {PASSWORD}\nreplicaof 127.0.0.1 {{port_master}}\nsave ""\n',
    "s1": SENTINEL, "s2": SENTINEL, "s3": SENTINEL,
}
SENTINELS = ("s1", "s2", "s3")


def agreed(sentinel: Server) -> bool:
    """The sentinel knows the two others (their hellos, every 2 s) and the quorum can be reached."""
    with sentinel.client() as c:
        master = c.execute_command("SENTINEL", "MASTER", "mymaster")
        return int(master["num-other-sentinels"]) == 2 and str(
            c.execute_command("SENTINEL", "CKQUORUM", "mymaster")).startswith("OK")


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    folder = tmp_path_factory.mktemp("sentinel")
    args = {key: ["--sentinel"] for key in SENTINELS}
    passwords = {"master": PASSWORD, "replica": PASSWORD, **dict.fromkeys(SENTINELS, SENTINEL_PASSWORD)}
    with servers(folder, CONFIGS, passwords, args) as made:
        for name in SENTINELS:
            wait_until(lambda s=made[name]: agreed(s), 20, f"sentinel {name} knowing the others, quorum reachable")
        yield made


def inventory(made: dict[str, Server], password: str | None = "'${SENTINEL_PASSWORD}'") -> str:
    """The entry's url is the replica: it stays up when the master is killed, so the entry's other checks keep
    answering; the sentinel checks find the master through the sentinels, with this url's password, and reach the
    sentinels with theirs (``password``: None, none given)."""
    listed = ", ".join(f"'{made[n].address}'" for n in SENTINELS)
    given = f", password: {password}" if password else ""
    return ("environment: t\nredis:\n  ha:\n"
            f"    url: 'redis://:{PASSWORD}@127.0.0.1:{made['replica'].port}/0'\n"
            f"    sentinel: {{master: mymaster, quorum: 2, sentinels: [{listed}]{given}}}\n")


def checked(made: dict[str, Server], password: str | None = "'${SENTINEL_PASSWORD}'") -> dict[str, Result]:
    return results(inventory(made, password), {"SENTINEL_PASSWORD": SENTINEL_PASSWORD})["ha"]


def test_healthy_sentinels_pass(sentinels: dict[str, Server]) -> None:
    found = checked(sentinels)
    assert failing(found) == {}
    assert found["redis.sentinel_quorum"].observed == (
        "3 of 3 sentinels answer for mymaster, quorum 2 on each, each knowing all of them, ckquorum OK")
    assert found["redis.sentinel_master"].observed == (
        f"master mymaster is {sentinels['master'].address} (per 3 of 3 sentinels): role:master, "
        "1 replica(s) connected")


@pytest.mark.parametrize(("password", "reason"), [
    ("wrong-password", "AuthenticationError: invalid username-password pair or user is disabled."),
    (None, "it requires a password; set sentinel.password"),
], ids=["wrong", "missing"])
def test_the_sentinels_password_wrong_or_missing(sentinels: dict[str, Server], password: str | None,
                                                 reason: str) -> None:
    """Each sentinel refuses: exactly the two sentinel checks fail, saying authentication failed for each — not
    unreachable, not a traceback; the data node's checks (its own password) pass."""
    found = checked(sentinels, password)
    refused = "; ".join(f"sentinel {sentinels[n].address}: authentication failed ({reason})"
                        for n in SENTINELS)
    assert failing(found) == {
        "redis.sentinel_quorum": f"redis[ha]: {refused}; 0 of 3 sentinels answer for mymaster, fewer than quorum 2: "
                                 "no failover can be agreed, expected all 3 sentinels answer for mymaster with quorum "
                                 "2, and SENTINEL ckquorum OK",
        "redis.sentinel_master": f"redis[ha]: no sentinel names a master for mymaster: {refused}, expected the "
                                 "sentinels agree on mymaster's address, and it answers role:master"}
    assert all(r.error is None for r in found.values())


def test_the_sentinels_password_is_a_secret() -> None:
    inv = loads("environment: t\nredis:\n  ha:\n    url: redis://cache:6379/0\n    sentinel: {master: m, quorum: 1, "
                "sentinels: ['s1:26379'], password: literally-written-pw}\n", env={})
    sentinel = inv.redis["ha"].sentinel
    assert sentinel is not None
    assert sentinel.password == "literally-written-pw"
    assert "literally-written-pw" in inv._secrets  # masked in every output, though not given as ${…}
    assert "literally-written-pw" not in repr(inv.redis["ha"])


def test_sentinels_killed_below_the_quorum(sentinels: dict[str, Server]) -> None:
    for name in ("s2", "s3"):
        sentinels[name].kill()
    try:
        found = checked(sentinels)
    finally:
        for name in ("s2", "s3"):
            sentinels[name].start()  # from the configuration it rewrote: same id, the others known
        for name in SENTINELS:
            wait_until(lambda s=sentinels[name]: agreed(s), 20, f"sentinel {name} back, quorum reachable")
    s2, s3 = sentinels["s2"].address, sentinels["s3"].address
    [(check, text)] = failing(found).items()
    assert check == "redis.sentinel_quorum"
    assert re.match(
        rf"^redis\[ha\]: sentinel {s2} unreachable \(ConnectionError: Error 111 connecting to {s2}\. Connection "
        rf"refused\.\); sentinel {s3} unreachable \(ConnectionError: Error 111 connecting to {s3}\. Connection "
        r"refused\.\); 1 of 3 sentinels answer for mymaster, fewer than quorum 2: no failover can be agreed, "
        r"expected all 3 sentinels answer for mymaster with quorum 2, and SENTINEL ckquorum OK$", text), text
    assert found["redis.sentinel_master"].observed.endswith("(per 1 of 3 sentinels): role:master, "
                                                            "1 replica(s) connected")


def test_sentinels_pointing_at_a_dead_master(sentinels: dict[str, Server]) -> None:
    """Last in the module: the master stays dead."""
    sentinels["master"].kill()
    found = checked(sentinels)
    master = sentinels["master"].address
    assert failing(found) == {"redis.sentinel_master": (
        f"redis[ha]: master {master} (per 3 of 3 sentinels) unreachable (ConnectionError: Error 111 connecting to "
        f"{master}. Connection refused.), expected the sentinels agree on mymaster's address, and it answers "
        "role:master")}
    assert PASSWORD not in str(found)
    assert SENTINEL_PASSWORD not in str(found)
