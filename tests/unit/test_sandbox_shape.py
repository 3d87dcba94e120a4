"""The sandbox's shape (opsproof/shape.py) is what the sandbox builds, and what chaos validation checks against."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from opsproof import shape
from opsproof.chaos.validate import SANDBOX_SHAPE
from opsproof.inventory import loads
from opsproof.sandbox import configs
from opsproof.sandbox.control import Sandbox


def written_inventory(tmp_path: Path) -> dict[str, dict[str, object]]:
    """The inventory `opsproof sandbox up` writes, from a state folder with made-up ports and passwords."""
    ports = {n: 10000 + i for i, n in enumerate([*shape.SERVICES, "app_tls", "proxy_control", "pgproxy_control"])}
    passwords = {r: "pw" for r in ("postgres", "opsproof_monitor", "opsproof_backup", "app", "redis")}
    (tmp_path / "sandbox.json").write_text(json.dumps({"ports": ports, "passwords": passwords}))
    box = Sandbox(tmp_path)
    box._write_inventory()
    data: dict[str, dict[str, object]] = yaml.safe_load(box.inventory_path.read_text())
    return data


def test_the_inventory_the_sandbox_writes_has_the_shapes_entries(tmp_path: Path) -> None:
    data = written_inventory(tmp_path)
    entries = {k: tuple(v) for k, v in data.items() if isinstance(v, dict)}
    assert entries == shape.ENTRIES
    assert data["prometheus"]["main"]["rules"] == shape.RULE_NAMES  # type: ignore[index]


def test_the_sandbox_loads_the_shapes_rules() -> None:
    rules = yaml.safe_load(configs.rules_yaml())["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == shape.RULE_NAMES


def test_chaos_validation_checks_against_the_shape() -> None:
    inventory = loads(SANDBOX_SHAPE)
    for kind in ("http", "postgres", "redis", "prometheus", "alertmanager"):
        assert tuple(inventory.targets(kind)) == shape.ENTRIES[kind]  # type: ignore[arg-type]
    assert inventory.prometheus["main"].rules == shape.RULE_NAMES
