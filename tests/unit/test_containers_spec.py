"""The docker provider's shape and the containers spec of ``opsproof_environment``, without a daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsproof.containers.environment import SpecError, _fill, read_spec
from opsproof.containers.labels import extra_labels
from opsproof.sandbox.docker_services import PORTS, WAVES, services
from opsproof.shape import SERVICES


def test_the_waves_start_every_service_once() -> None:
    started = [name for wave in WAVES for name in wave]
    assert sorted(started) == sorted(SERVICES)
    assert len(started) == len(set(started))


def test_every_service_has_a_container_and_its_ports() -> None:
    found = services(Path("/tmp/x"), dict.fromkeys(("postgres", "app", "opsproof_monitor", "opsproof_backup",
                                                      "redis"), "pw"))
    assert set(found) == set(SERVICES)
    for service in found.values():
        assert all(p in PORTS for p in service.published), service.name
        assert service.ready_log or service.ready_http, f"{service.name}: nothing to wait for"
        assert all(mode in ("ro", "rw") for _, _, mode in service.mounts)
        assert "pw" not in " ".join(service.command).replace("pwfile", "").replace("/tmp/pw", ""), (
            f"{service.name}: a password in argv (`ps` on the host shows it)")


def test_placeholders_are_filled_from_the_ports() -> None:
    hosts = {"db": {5432: 32001}}
    assert _fill({"dsn": "postgresql://u:p@{db.host}:{db.port.5432}/x", "n": [1, "{job=\"a\"}"]}, hosts) == {
        "dsn": "postgresql://u:p@127.0.0.1:32001/x", "n": [1, '{job="a"}']}
    with pytest.raises(SpecError, match=r"^inventory: \{cache.host\} names no service \(known: db\)$"):
        _fill("{cache.host}", hosts)
    with pytest.raises(SpecError, match=r"^inventory: \{db.port.6379\}: services.db.ports does not list 6379$"):
        _fill("{db.port.6379}", hosts)


def test_a_spec_without_services_or_images_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"expected a mapping with 'services:'"):
        read_spec({"inventory": {}})
    (tmp_path / "spec.yaml").write_text("services:\n  db: {ports: [5432]}\n")
    with pytest.raises(SpecError, match=r"^services.db: needs 'image:' \(e.g. postgres:15\)$"):
        read_spec(tmp_path / "spec.yaml")


def test_extra_labels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPROOF_CONTAINER_LABELS", "org.opsproof.test=h21, ci.job = 42")
    assert extra_labels() == {"org.opsproof.test": "h21", "ci.job": "42"}
