"""What a Redis entry may say about its clients, latency, persistence and Sentinel (``clients:``, ``latency:``,
``persistence:``, ``sentinel:`` under a ``redis`` entry).

```yaml
redis:
  cache:
    url: redis://:${REDIS_PASSWORD}@cache:6379/0
    clients: {max_connected: 500, max_blocked: 10}
    latency: {samples: 20, max_median_ms: 5, max_ms: 50, max_event_ms: 100, events_within: 1h}
    persistence: {appendonly: true, appendfsync: everysec, save: "3600 1 300 100", max_save_age: 2h}
    sentinel:
      master: mymaster
      quorum: 2
      sentinels: ["sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"]
      password: ${SENTINEL_PASSWORD}  # the sentinels' own `requirepass` (sentinel.conf), not the data nodes'
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from opsproof.inventory.base import _Model
from opsproof.redact import MASK
from opsproof.util.durations import parse_duration


class RedisClients(_Model):
    """`redis-cli info clients`: connected_clients (opsproof's own connection included) and blocked_clients."""

    max_connected: int = Field(ge=1, description="500")
    max_blocked: int | None = Field(None, ge=0, description="10 (clients in BLPOP/BRPOP/WAIT …)")


class RedisLatency(_Model):
    """`redis-cli --latency`: the round trip of PING, ``samples`` times on the entry's one connection."""

    samples: int = Field(20, ge=3, le=1000)
    max_median_ms: float = Field(10, gt=0, description="10")
    max_ms: float | None = Field(None, gt=0, description="100 (the slowest sample)")
    # `redis-cli latency latest`: a spike the server's latency monitor recorded within `events_within` above this
    # fails the check (the monitor must be on: latency-monitor-threshold > 0)
    max_event_ms: float | None = Field(None, gt=0, description="100")
    events_within: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = Field(3600, description="1h")


def _save_rules(v: str) -> str:
    """``save`` as Redis writes it: pairs of seconds and changes (``3600 1 300 100``), or "" for no snapshots."""
    words = v.split()
    if len(words) % 2 or not all(w.isdigit() and int(w) > 0 for w in words):
        raise ValueError(f"save {v!r} is not pairs of seconds and changes. Fix: write it as "
                         "`redis-cli config get save` shows it, e.g. \"3600 1 300 100\", or \"\" for no RDB snapshots")
    return " ".join(words)


class RedisPersistence(_Model):
    """`redis-cli config get save|appendonly|appendfsync` against what the runbook states, and `info persistence`
    (last RDB save and AOF write succeeded; the newest snapshot at most ``max_save_age`` old)."""

    save: Annotated[str, AfterValidator(_save_rules)] | None = Field(None, description='"3600 1 300 100", or ""')
    appendonly: bool | None = None
    appendfsync: Literal["always", "everysec", "no"] | None = None
    max_save_age: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] | None = Field(None, description="2h")

    @property
    def settings(self) -> dict[str, str]:
        """The expected CONFIG values, as Redis writes them (``yes``/``no``)."""
        wanted: dict[str, str] = {}
        if self.save is not None:
            wanted["save"] = self.save
        if self.appendonly is not None:
            wanted["appendonly"] = "yes" if self.appendonly else "no"
        if self.appendfsync is not None:
            wanted["appendfsync"] = self.appendfsync
        return wanted


_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")


def host_port(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:26379`` for IPv6) → (host, port)."""
    m = _HOST_PORT.match(text)
    if not m or not 1 <= int(m["port"]) <= 65535:
        raise ValueError(f"{text!r} is not host:port. Fix: write e.g. sentinel-1:26379 or [::1]:26379")
    return m["host"].strip("[]"), int(m["port"])


def _address(v: str) -> str:
    host_port(v)
    return v


class Sentinel(_Model):
    """The Sentinels that watch this entry's master: `redis-cli -p 26379 sentinel get-master-addr-by-name NAME`,
    `sentinel ckquorum NAME`. The master they name is reached with the credentials of the entry's ``url``; the
    sentinels themselves with ``password`` (and ``username``, for an ACL user), the ``requirepass`` of their own
    sentinel.conf — `redis-cli -p 26379 -a $SENTINEL_PASSWORD`. Never shown: give it as ``${VAR}``."""

    master: str = Field(min_length=1, pattern=r"^\S+$", description="mymaster")
    quorum: int = Field(ge=1, description="2 (as in `sentinel monitor NAME HOST PORT 2`)")
    sentinels: list[Annotated[str, AfterValidator(_address)]] = Field(
        min_length=1, description='["sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"]')
    password: str | None = Field(None, min_length=1, description="${SENTINEL_PASSWORD}")
    username: str | None = Field(None, min_length=1, description="sentinel-probe (an ACL user; default: default)")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() without the password (a model's repr reaches output where no redactor runs)."""
        for name, value in super().__repr_args__():
            yield name, MASK if name == "password" and value else value

    @field_validator("sentinels")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        twice = sorted({s for s in v if v.count(s) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed twice. Fix: list each sentinel once")
        return v

    @model_validator(mode="after")
    def _enough(self) -> Sentinel:
        if self.username is not None and self.password is None:
            raise ValueError("username without a password. Fix: add password: ${SENTINEL_PASSWORD}, or drop "
                             "username")
        if len(self.sentinels) < self.quorum:
            raise ValueError(f"quorum {self.quorum} but only {len(self.sentinels)} sentinel(s) listed: no failover "
                             "could ever be agreed. Fix: list every sentinel, or correct the quorum")
        return self
