"""The ``logs:`` entry: error lines in an application's log files on this host, counted over a window against a
ceiling — `grep ERROR /var/log/app.log | wc -l`, but only the lines of the last ``window``. What is counted and
judged (``pattern``, ``window``, ``max_matches``, ``samples``) is :class:`ErrorScan`, shared with the pods' logs of a
``kubernetes`` entry (:class:`PodLogs`, ``kubernetes.<name>.logs``).

The window is judged by the timestamps written in the lines (``time_regex`` finds one, ISO 8601 by default, or
``time_format`` parses it with strptime), never by a file's mtime alone: a line without a timestamp (a stack
trace's continuation) belongs to the timestamped line above it. A file is read from its end, at most
``tail_bytes`` of it; rotated predecessors (``app.log.1``) are read too, and a file last written before the window
is not read at all.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from opsproof.inventory.base import Duration, _Entry, _Model
from opsproof.inventory.objects import Size

ISO_TIME = r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"


def _regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as e:
        raise ValueError(f"{v!r} is not a regular expression ({e}). Fix: escape it, e.g. 'ERROR|FATAL' or "
                         r"'\[error\]'") from None
    return v


Regex = Annotated[str, AfterValidator(_regex)]
_REQUIREMENT = re.compile(r"^\s*(?:(?P<not>!)\s*(?P<absent>[\w./-]+)|(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*"
                          r"(?P<value>[\w.-]*)|\s+(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$")


def parse_selector(text: str) -> dict[str, Any]:
    """A label selector as `kubectl -l` takes it — ``app=backend``, ``app`` (has the label), ``!canary``,
    ``track!=canary``, ``tier in (web,api)``, ``tier notin (db)``, comma-separated — as a LabelSelector."""
    parts = re.split(r",(?![^()]*\))", text)
    labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for part in parts:
        m = _REQUIREMENT.match(part)
        if m is None or not part.strip():
            raise ValueError(f"{part.strip()!r} of selector {text!r} is not a label requirement. Fix: write it as "
                             "kubectl -l takes it: app=backend, app, !canary, track!=canary, tier in (web,api)")
        if m["absent"]:
            expressions.append({"key": m["absent"], "operator": "DoesNotExist"})
        elif m["op"] in ("=", "=="):
            labels[m["key"]] = m["value"]
        elif m["op"] == "!=":
            expressions.append({"key": m["key"], "operator": "NotIn", "values": [m["value"]]})
        elif m["set"]:
            values = [v.strip() for v in m["values"].split(",") if v.strip()]
            expressions.append({"key": m["key"], "operator": "In" if m["set"] == "in" else "NotIn", "values": values})
        else:
            expressions.append({"key": m["key"], "operator": "Exists"})
    return {"matchLabels": labels, "matchExpressions": expressions}


def _selector(v: Any) -> Any:
    if isinstance(v, str):
        parse_selector(v)
    return v


# labels to equal ({app: worker}), or a selector as `kubectl -l` takes it ("app=backend", "app", "tier in (web,api)")
Selector = Annotated[dict[str, str] | str, BeforeValidator(_selector)]


class ErrorScan(_Model):
    """What an error scan counts and how it is judged: lines matching ``pattern`` within the last ``window``, at
    most ``max_matches``; the first/latest ``samples`` matching lines shown in the finding (masked)."""

    pattern: Regex = Field("ERROR", min_length=1, description="ERROR|FATAL|Traceback")
    window: Duration = Field(600, description="10m")
    max_matches: int = Field(0, ge=0, description="5")
    samples: int = Field(3, ge=0, le=20)  # matching lines shown in the finding (masked with the secrets)


class Logs(_Entry, ErrorScan):
    """Lines matching ``pattern`` in ``path`` (a file or a glob, with its rotated ``.1``) over the last ``window``:
    at most ``max_matches`` (``logs.errors``)."""

    path: str = Field(min_length=1, pattern=r"^/", description="/var/log/app.log, or /var/log/app/*.log")
    # where a line's timestamp is: the regex's first group (default: an ISO 8601 time anywhere in the line)
    time_regex: Regex = Field(ISO_TIME, description=r"^\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")
    time_format: str | None = Field(None, description="%d/%b/%Y:%H:%M:%S %z")  # strptime; default ISO 8601
    utc: bool = True  # a timestamp without an offset is UTC (false: this host's local time)
    rotated: bool = True  # also read PATH.1 (logrotate's first predecessor; compressed ones are not read)
    tail_bytes: Size = Field(16 << 20, description="16MiB")  # read at most this much of each file, from its end

    @model_validator(mode="after")
    def _group(self) -> Logs:
        if re.compile(self.time_regex).groups < 1:
            raise ValueError("time_regex has no group. Fix: put the timestamp in parentheses, e.g. "
                             r"'^(\S+ \S+)'")
        return self


class PodLogs(ErrorScan):
    """`kubectl logs deploy/api --all-containers --since=10m --timestamps | grep -cE ERROR`: the logs of every pod
    the key's workload selects (``deployment/api``, ``statefulset/db``, ``daemonset/agent``, ``pod/toolbox``), or
    that ``selector`` picks (the key is then a name of your own), container by container, through the API server's
    ``pods/NAME/log``. Counted over all of them against ``max_matches``.

    The API server filters the window (``sinceSeconds``) and bounds what it sends per container (the newest
    ``tail_lines`` lines, at most ``limit_bytes``): a chatty pod costs at most that much memory. A container whose
    window holds more than those bounds fails the check (the lines not read could hold the errors): raise them.
    """

    # with a key of your own: labels to equal ({app: worker}), or a selector as `kubectl -l` takes it
    # ("app=backend", "app", "tier in (web,api),track!=canary")
    selector: Selector = Field(default_factory=dict, description="{app: worker}, or 'app=worker'")
    containers: list[str] = Field(default_factory=list, description="[app]")  # default: every container of the pod
    tail_lines: int = Field(10_000, ge=1, le=1_000_000)  # per container: the newest lines of the window read
    limit_bytes: Size = Field(4 << 20, description="4MiB")  # per container: at most this much is sent
    previous: bool = True  # also read the previous instance of a container that restarted within the window

    @property
    def label_selector(self) -> dict[str, Any]:
        """``selector`` as a Kubernetes LabelSelector (matchLabels, matchExpressions)."""
        if isinstance(self.selector, dict):
            return {"matchLabels": dict(self.selector)}
        return parse_selector(self.selector)
