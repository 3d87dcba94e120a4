"""Redis Sentinel: `redis-cli -p 26379 sentinel master NAME`, `sentinel ckquorum NAME`,
`sentinel get-master-addr-by-name NAME`, then `redis-cli -h MASTER info replication`.

Read commands only (SENTINEL MASTER / CKQUORUM / GET-MASTER-ADDR-BY-NAME, INFO): nothing a sentinel or the master
could act on. The sentinels are reached with the sentinel entry's own ``password`` (their ``requirepass``), the
master with the entry's URL; a sentinel that refuses the password (or wants one) is named as such — authentication
failed — not as unreachable. Each sentinel and the master get one connection of their own for the run; the
sentinels are asked one after another, within the check's deadline (a refused connection costs nothing; one that
hangs spends it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from opsproof.inventory import Redis
from opsproof.inventory.redis_checks import Sentinel, host_port
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.deadline import Finding, current
from opsproof.result import Severity


def _cfg(cfg: Redis) -> Sentinel:
    assert cfg.sentinel is not None
    return cfg.sentinel


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


REFUSED = ("authentication failed", "permission denied")  # a sentinel's answer to who asked, not its silence


def _credentials(cfg: Sentinel) -> str:
    """``user:password@`` of a sentinel's URL (quoted), or nothing without a password."""
    if cfg.password is None:
        return ""
    return f"{quote(cfg.username or '', safe='')}:{quote(cfg.password, safe='')}@"


def _ask(target: Target[Redis], conns: Connections, address: str, *command: str) -> Any:
    host, port = host_port(address)
    url = f"redis://{_credentials(_cfg(target.config))}{_netloc(host, port)}/0"
    client: Any = conns.redis(f"{target.id} sentinel {address}", url, target.config.timeout_s)
    return client.execute_command("SENTINEL", *command)


def _unless_the_deadline(exc: Exception) -> None:
    """Re-raise what the check's deadline ended (its finding says what did not happen in time); a server's own
    refusal or error is the caller's to report."""
    deadline = current()
    if isinstance(exc, Finding) or (deadline is not None and deadline.ended_check()):
        raise exc


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _each(target: Target[Redis], conns: Connections, *command: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Every listed sentinel's answer to SENTINEL ``command`` → (answers, why the others gave none). A sentinel's
    error reply (no such master) is an answer: an exception instance."""
    import redis

    assert target.config.sentinel is not None
    answers: dict[str, Any] = {}
    silent: dict[str, str] = {}
    for address in target.config.sentinel.sentinels:
        try:
            answers[address] = _ask(target, conns, address, *command)
        except redis.exceptions.AuthenticationError as exc:  # WRONGPASS, NOAUTH, a password it does not have
            why = ("it requires a password; set sentinel.password" if target.config.sentinel.password is None
                   else _reason(exc))
            silent[address] = f"{REFUSED[0]} ({why})"
        except redis.exceptions.NoPermissionError as exc:  # an ACL user without the SENTINEL command
            silent[address] = f"{REFUSED[1]} ({_reason(exc)})"
        except redis.exceptions.ResponseError as exc:
            answers[address] = exc
        except (redis.exceptions.RedisError, OSError) as exc:
            _unless_the_deadline(exc)
            silent[address] = _reason(exc)
    return answers, silent


def _fields(answer: Any) -> Mapping[str, Any]:
    """SENTINEL MASTER's answer: redis-py makes it a dict; a flat [k, v, …] list otherwise."""
    if isinstance(answer, Mapping):
        return answer
    return dict(zip(answer[::2], answer[1::2], strict=True))


def _silent_text(silent: Mapping[str, str]) -> str:
    return "; ".join(f"sentinel {a}: {why}" if why.startswith(REFUSED) else f"sentinel {a} unreachable ({why})"
                     for a, why in silent.items())


def judge_quorum(cfg: Sentinel, masters: Mapping[str, Any], checks: Mapping[str, Any],
                 silent: Mapping[str, str]) -> Outcome:
    """Each sentinel's SENTINEL MASTER (its quorum, the sentinels it knows) and SENTINEL CKQUORUM answer, and the
    ones that gave none."""
    problems = [_silent_text(silent)] if silent else []
    seen: dict[str, Any] = {}
    for address, answer in masters.items():
        if isinstance(answer, Exception):
            problems.append(f"sentinel {address} does not monitor {cfg.master} ({answer})")
            continue
        fields = _fields(answer)
        quorum, others = int(fields.get("quorum", 0)), int(fields.get("num-other-sentinels", 0))
        seen[address] = {"quorum": quorum, "sentinels_known": others + 1, "flags": fields.get("flags")}
        if quorum != cfg.quorum:
            problems.append(f"sentinel {address} has quorum {quorum}")
        if others + 1 < len(cfg.sentinels):  # it has not heard the others' hellos: a partition, or another master
            problems.append(f"sentinel {address} knows {others + 1} of the {len(cfg.sentinels)} sentinels listed "
                            "(itself included)")
        verdict = checks.get(address)
        if isinstance(verdict, Exception):
            problems.append(f"sentinel {address}: {' '.join(str(verdict).split())}")
            seen[address]["ckquorum"] = str(verdict)
        elif verdict is not None:
            seen[address]["ckquorum"] = str(verdict)
    answering = len(seen)
    evidence = {"sentinels": seen, "silent": dict(silent), "listed": len(cfg.sentinels), "quorum": cfg.quorum}
    if answering < cfg.quorum:
        problems.append(f"{answering} of {len(cfg.sentinels)} sentinels answer for {cfg.master}, fewer than quorum "
                        f"{cfg.quorum}: no failover can be agreed")
    if problems:
        return Outcome(False, "; ".join(problems), evidence)
    return Outcome(True, f"{answering} of {len(cfg.sentinels)} sentinels answer for {cfg.master}, quorum "
                         f"{cfg.quorum} on each, each knowing all of them, ckquorum OK", evidence)


@probe("redis.sentinel_quorum", "redis", Severity.CRITICAL,
       "redis-cli -p 26379 sentinel master NAME; sentinel ckquorum NAME  # on each sentinel",
       applies=lambda cfg: cfg.sentinel is not None,
       expected=lambda cfg: f"all {len(_cfg(cfg).sentinels)} sentinels answer for {_cfg(cfg).master} with "
                            f"quorum {_cfg(cfg).quorum}, and SENTINEL ckquorum OK")
def sentinel_quorum(target: Target[Redis], conns: Connections) -> Outcome:
    """Every listed sentinel answers, monitors the master with the expected quorum, and can reach that quorum and
    the majority a failover needs (``SENTINEL CKQUORUM``)."""
    cfg = target.config.sentinel
    assert cfg is not None
    masters, silent = _each(target, conns, "MASTER", cfg.master)
    checks: dict[str, Any] = {}
    for address, answer in masters.items():
        if not isinstance(answer, Exception):
            checks.update(_each_one(target, conns, address, "CKQUORUM", cfg.master))
    return judge_quorum(cfg, masters, checks, silent)


def _each_one(target: Target[Redis], conns: Connections, address: str, *command: str) -> dict[str, Any]:
    import redis

    try:
        return {address: _ask(target, conns, address, *command)}
    except redis.exceptions.ResponseError as exc:  # NOQUORUM …
        return {address: exc}


def judge_addresses(cfg: Sentinel, answers: Mapping[str, Any], silent: Mapping[str, str]
                    ) -> tuple[tuple[str, int] | None, Outcome | None]:
    """The master address the answering sentinels agree on, or the outcome that says they do not."""
    said = {a: (str(v[0]), int(v[1])) for a, v in answers.items() if isinstance(v, list | tuple) and len(v) == 2}
    unknown = [a for a in answers if a not in said]
    evidence = {"addresses": {a: _netloc(*hp) for a, hp in said.items()}, "silent": dict(silent)}
    if not said:
        why = _silent_text(silent) or f"sentinels {', '.join(unknown)} do not know master {cfg.master}"
        return None, Outcome(False, f"no sentinel names a master for {cfg.master}: {why}", evidence)
    if len(set(said.values())) > 1 or unknown:
        views = [f"{a} says {_netloc(*hp)}" for a, hp in said.items()] + [f"{a} knows no {cfg.master}"
                                                                        for a in unknown]
        return None, Outcome(False, f"sentinels disagree on {cfg.master}: {', '.join(views)}", evidence)
    return next(iter(said.values())), None


def master_url(url: str, host: str, port: int) -> str:
    """The entry's URL (scheme, credentials, database) pointed at ``host:port``."""
    parts = urlsplit(url)
    scheme = parts.scheme if parts.scheme in ("redis", "rediss") else "redis"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    netloc = f"{userinfo}@{_netloc(host, port)}" if userinfo else _netloc(host, port)
    return urlunsplit((scheme, netloc, parts.path if scheme == parts.scheme else "/0", parts.query, ""))


@probe("redis.sentinel_master", "redis", Severity.CRITICAL,
       "redis-cli -p 26379 sentinel get-master-addr-by-name NAME; redis-cli -h MASTER info replication",
       applies=lambda cfg: cfg.sentinel is not None,
       expected=lambda cfg: f"the sentinels agree on {_cfg(cfg).master}'s address, and it answers role:master")
def sentinel_master(target: Target[Redis], conns: Connections) -> Outcome:
    """The answering sentinels name one master, and that server is up and says it is the master."""
    import redis

    cfg = target.config.sentinel
    assert cfg is not None
    answers, silent = _each(target, conns, "GET-MASTER-ADDR-BY-NAME", cfg.master)
    address, disagreement = judge_addresses(cfg, answers, silent)
    if disagreement is not None or address is None:
        assert disagreement is not None
        return disagreement
    where = _netloc(*address)
    per = f"per {len(answers)} of {len(cfg.sentinels)} sentinels"
    evidence: dict[str, Any] = {"master": where, "sentinels_answering": sorted(answers), "silent": dict(silent)}
    client = conns.redis(f"{target.id} master {where}", master_url(target.config.url, *address),
                         target.config.timeout_s)
    try:
        info = client.info("replication")
    except (redis.exceptions.RedisError, OSError) as exc:
        _unless_the_deadline(exc)
        return Outcome(False, f"master {where} ({per}) unreachable ({_reason(exc)})", evidence)
    role = info.get("role")
    evidence |= {"role": role, "connected_slaves": info.get("connected_slaves")}
    if role != "master":
        return Outcome(False, f"{where} ({per} the master of {cfg.master}) says role:{role}", evidence)
    return Outcome(True, f"master {cfg.master} is {where} ({per}): role:master, "
                         f"{info.get('connected_slaves', 0)} replica(s) connected", evidence)
