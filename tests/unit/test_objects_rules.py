"""Which lifecycle rules cover a prefix (``backups.s3_lifecycle``): enabled ones whose filter prefix — alone, in an
``And``, or the legacy top-level ``Prefix`` — starts the entry's prefix. The server side: tests/integration."""

from __future__ import annotations

from typing import Any

import pytest

from opsproof.inventory import loads
from opsproof.probes import Connections, Target, objects
from opsproof.result import Result


class Rules(Connections):
    def __init__(self, rules: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rules = rules

    def s3(self, key: str, cfg: Any) -> Any:
        return self

    def get_bucket_lifecycle_configuration(self, Bucket: str) -> dict[str, Any]:  # boto3 names it Bucket
        return {"Rules": self.rules}


def lifecycle(rules: list[dict[str, Any]]) -> Result:
    inv = loads("environment: t\nbackups:\n  b: {s3: {bucket: bkp-x, prefix: db/daily/, lifecycle: true}}\n")
    with Rules(rules) as conns:
        return objects.s3_lifecycle(Target("backups", "b", inv.backups["b"]), conns)


@pytest.mark.parametrize("rule", [
    {"ID": "f", "Status": "Enabled", "Filter": {"Prefix": "db/"}},
    {"ID": "a", "Status": "Enabled", "Filter": {"And": {"Prefix": "db/daily/", "Tags": [{"Key": "k", "Value": "v"}]}}},
    {"ID": "l", "Status": "Enabled", "Prefix": ""},
], ids=["filter", "and", "legacy"])
def test_a_covering_rule_passes(rule: dict[str, Any]) -> None:
    assert lifecycle([rule]).ok is True


def test_disabled_or_elsewhere_is_no_rule() -> None:
    result = lifecycle([{"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}},
                        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}}])
    assert result.ok is False
    assert result.observed == ("no enabled lifecycle rule covers prefix 'db/daily/' (rules: off on '' Disabled, "
                               "expires after 30 days; logs on 'logs/' Enabled, no expiration)")
