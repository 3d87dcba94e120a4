"""Kubernetes chaos faults (pod delete, deployment scale) through the official client, against kmock's
KubernetesEmulator — an API-level stand-in, not a cluster: it stores and serves objects over real HTTP but runs no
controllers (a deleted pod is not recreated) and ignores selectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from test_kubernetes import Emulator, healthy

from opsproof.chaos import k8s
from opsproof.chaos.context import ChaosError, ChaosRefused


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(tmp_path / "kubeconfig") as emulator:
        emulator.put(healthy("shop").values())
        yield emulator


def configuration(tmp_path: Path, emu: Emulator, production: bool = False, **extra: Any) -> dict[str, Any]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"environment": "k8s-test", "production": production, "kubernetes": {
        "shop": {"namespace": "shop", "kubeconfig": str(emu.kubeconfig), "timeout_s": 5}}}))
    return {"opsproof_inventory": str(inventory), **extra}


def test_delete_pods_deletes_through_the_api(tmp_path: Path, emu: Emulator) -> None:
    out = k8s.delete_pods("app=api", configuration=configuration(tmp_path, emu))
    assert out["deleted"] == ["api-7c9b4-0"]
    deletes = [r for r in emu.requests() if r.method.value == "DELETE"]
    assert [r.name for r in deletes] == ["api-7c9b4-0"]


def test_delete_pods_fails_when_the_api_refuses(tmp_path: Path, emu: Emulator) -> None:
    emu.react("shop", kmock.KubernetesError(status=403, reason="Forbidden", message="pods is forbidden"))
    with pytest.raises(ChaosError, match=r"^kubernetes\[shop\]: API call failed \(\w+Exception 403 Forbidden\), "
                                         r"expected pods app=api deleted$"):
        k8s.delete_pods("app=api", configuration=configuration(tmp_path, emu))


def test_scale_deployment_returns_the_previous_count(tmp_path: Path, emu: Emulator) -> None:
    cfg = configuration(tmp_path, emu)
    out = k8s.scale_deployment("api", 0, configuration=cfg)
    assert (out["previous"], out["replicas"]) == (3, 0)
    back = k8s.scale_deployment("api", out["previous"], configuration=cfg)  # the rollback
    assert (back["previous"], back["replicas"]) == (0, 3)


def test_scale_missing_deployment_names_it(tmp_path: Path, emu: Emulator) -> None:
    with pytest.raises(ChaosError, match=r"^kubernetes\[shop\]: deployment nope: API call failed "
                                         r"\(NotFoundException 404 Not Found\), expected deployment nope scaled to 1$"):
        k8s.scale_deployment("nope", 1, configuration=configuration(tmp_path, emu))


def test_production_refuses_without_allow_destructive(tmp_path: Path, emu: Emulator) -> None:
    with pytest.raises(ChaosRefused, match=r"marked production: true; refusing to delete pods app=api\. "
                                           r"Fix: run with --allow-destructive"):
        k8s.delete_pods("app=api", configuration=configuration(tmp_path, emu, production=True))
    assert not [r for r in emu.requests() if r.method.value == "DELETE"]
    allowed = configuration(tmp_path, emu, production=True, opsproof_allow_destructive="true")
    assert k8s.delete_pods("app=api", configuration=allowed)["deleted"] == ["api-7c9b4-0"]


def test_an_unreachable_api_server_is_a_failed_fault(tmp_path: Path, emu: Emulator) -> None:
    """Nothing listens where the kubeconfig points: urllib3's MaxRetryError is neither an ApiException nor an
    OSError, and used to escape as a traceback."""
    kubeconfig = yaml.safe_load(emu.kubeconfig.read_text())
    for cluster in kubeconfig["clusters"]:
        cluster["cluster"]["server"] = "http://127.0.0.1:1"
    emu.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
    cfg = configuration(tmp_path, emu)
    with pytest.raises(ChaosError, match=r"^kubernetes\[shop\]: API call failed \(MaxRetryError: .*127\.0\.0\.1.*\), "
                                         r"expected pods app=api deleted$"):
        k8s.delete_pods("app=api", configuration=cfg)
    with pytest.raises(ChaosError, match=r"^kubernetes\[shop\]: deployment api: API call failed \(MaxRetryError: "):
        k8s.scale_deployment("api", 1, configuration=cfg)


def test_scale_through_the_target_backend_rolls_back_once_and_audits(tmp_path: Path, emu: Emulator,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same scale behind the target-backend interface: the rollback restores the replicas read before the
    fault, a second rollback has nothing to do, and the audit finds the deployment while it is scaled down."""
    from opsproof.chaos import audit, run, targets

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    run.begin()
    cfg = configuration(tmp_path, emu)
    out = targets.inject_fault("shop", "scale", deployment="api", replicas=0, configuration=cfg)
    assert (out["backend"], out["previous"], out["replicas"]) == ("kubernetes", 3, 0)
    assert any("deployment api has 0 replicas, 3 before the run" in p for p in audit.audit(cfg).problems)
    assert targets.rollback_fault("shop", "scale", configuration=cfg)["actions"] == ["api scaled back to 3"]
    assert targets.rollback_fault("shop", "scale", configuration=cfg)["actions"] == []
    assert audit.audit(cfg).clean
    deleted = targets.inject_fault("shop", "delete_pods", selector="app=api", configuration=cfg)
    assert deleted["deleted"] == ["api-7c9b4-0"]
    assert targets.rollback_fault("shop", "delete_pods", configuration=cfg)["actions"] == []  # its controller's job
    run.begin()  # the next test (in this worker) starts a run of its own
