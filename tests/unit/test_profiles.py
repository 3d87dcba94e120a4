"""Sandbox profiles (opsproof/sandbox/profiles/*.yaml): each validates, its profile.env sets every variable its
example reads — so the example on the profile reaches nothing but the sandbox — and a broken profile is refused
with the file and the key named. The profile running for real: tests/integration/test_profiles.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from opsproof.inventory import load as load_inventory
from opsproof.inventory.entries import address_of
from opsproof.sandbox import kube_objects, profiles
from opsproof.sandbox.process import SandboxError
from opsproof.sandbox.profiles import Profile, ProfileError

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
class Ports(dict[str, int]):
    """Any service's port: a fake, the same for the same name."""

    def __missing__(self, name: str) -> int:
        self[name] = 40000 + len(self)
        return self[name]


FAKE = {"ports": Ports(), "passwords": {r: f"pw-{r}" for r in ("opsproof_ro", "opsproof_backup", "redis")},
        "dir": "/tmp/box", "ca_file": "/tmp/box/tls/ca.pem", "kubeconfig": "/tmp/box/kube/kubeconfig"}


@pytest.mark.parametrize("name", profiles.names())
def test_the_profile_sets_every_variable_of_its_example(name: str) -> None:
    """A variable left out would leave the example on its production default: api.example.com, prod-db."""
    profile = profiles.load(name)
    example = REPO / profile.example
    read = set(VARIABLE.findall(example.read_text(encoding="utf-8")))
    assert {var for var, _ in read} <= set(profile.env), f"{profile.example} reads variables {name} does not set"


@pytest.mark.parametrize("name", profiles.names())
def test_each_example_on_its_profile_reaches_only_the_sandbox(name: str) -> None:
    profile = profiles.load(name)
    env = profile.render_env(FAKE)
    inv = load_inventory(REPO / profile.example, env=env)
    assert inv.production  # the examples stay production examples: chaos on them needs --allow-destructive
    for kind in ("http", "postgres", "redis", "prometheus", "alertmanager", "tls"):
        for entry in getattr(inv, kind).values():
            assert "127.0.0.1" in address_of(entry), (kind, address_of(entry))
    read = {var for var, _ in VARIABLE.findall((REPO / profile.example).read_text(encoding="utf-8"))}
    for var, value in env.items():
        if value.startswith("pw-") and var in read:
            assert value in inv.secrets, var  # masked in every output
    assert env["KUBECONFIG"] == "/tmp/box/kube/kubeconfig"
    assert env["SSL_CERT_FILE"] == "/tmp/box/tls/ca.pem"


def test_signx_kubernetes_objects_cover_what_the_example_lists() -> None:
    [k] = profiles.load("signx").kubernetes
    have = {(o["kind"], o["metadata"]["name"]) for o in kube_objects.objects(k)}
    example = yaml.safe_load((REPO / "examples" / "signx-apex-production.yaml").read_text())["kubernetes"]["apex"]
    kinds = {"deployments": "Deployment", "statefulsets": "StatefulSet", "hpa": "HorizontalPodAutoscaler",
             "scaled_objects": "ScaledObject", "cronjobs": "CronJob"}
    for key, kind in kinds.items():
        assert {(kind, n) for n in example[key]} <= have, key
    for key, kind in (("certificates", "Certificate"), ("secrets", "Secret"), ("load_balancers", "Service")):
        assert {(kind, n) for n in example[key]} <= have, key
    assert all({"kind", "apiVersion", "metadata"} <= set(o) for o in kube_objects.objects(k))


def base() -> dict[str, object]:
    return {"name": "x", "description": "d", "example": "examples/x.yaml", "runbook": "r", "env": {"A_URL": "u"}}


def test_an_env_template_naming_nothing_the_sandbox_has_is_refused() -> None:
    with pytest.raises(ValueError, match=r"env\.A_URL: \{port\[app\]\} names nothing the sandbox has\. Fix: use one "
                                         r"of \{ports\}, \{passwords\}"):
        Profile.model_validate({**base(), "env": {"A_URL": "http://127.0.0.1:{port[app]}"}})


def test_an_unknown_key_or_profile_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**base(), "name": "bad", "celery": {"w": {"queue": ["q"]}}}))
    monkeypatch.setattr(profiles, "HERE", tmp_path)
    with pytest.raises(ProfileError, match=r"^.*/bad\.yaml: celery\.w\.queues: Field required; "
                                           r"celery\.w\.queue: Extra inputs are not permitted$"):
        profiles.load("bad")
    with pytest.raises(ProfileError, match=r"^no sandbox profile 'nope'\. Fix: --profile one of bad$"):
        profiles.load("nope")


def test_a_missing_sandbox_value_is_named() -> None:
    profile = Profile.model_validate({**base(), "env": {"A_URL": "http://127.0.0.1:{ports[kube]}"}})
    with pytest.raises(ProfileError, match=r"^profile x: env names 'kube' which this sandbox does not have$"):
        profile.render_env({"ports": {}})


def test_a_profile_needing_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from opsproof.sandbox import profile_setup

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kmock" else real(name, *a))
    with pytest.raises(SandboxError, match=r"^profile signx needs the kmock package \(its Kubernetes API "
                                                      r"emulator\)\. Fix: pip install 'kmock'"):
        profile_setup.require(profiles.load("signx"))


def test_profiles_combine_into_one_sandbox_and_a_conflict_is_refused() -> None:
    both = profiles.load("signx,sophia")
    assert [k.namespace for k in both.kubernetes] == ["apex", "sophia"]
    assert set(both.env) == set(profiles.load("signx").env) | set(profiles.load("sophia").env)
    assert both.services == ("kube", "standins", "celery_apex-worker", "s3")
    a = Profile.model_validate({**base(), "name": "a"})
    b = Profile.model_validate({**base(), "name": "b", "env": {"A_URL": "other"}})
    with pytest.raises(ProfileError, match=r"^profiles a\+b: A_URL is 'u' in one and 'other' in b\. Fix: run them in "
                                           r"two sandboxes$"):
        profiles.combine([a, b])


def test_kubernetes_objects_carry_the_profiles_labels_and_services() -> None:
    [k] = profiles.load("vibethink").kubernetes
    objs = {(o["kind"], o["metadata"]["name"]): o for o in kube_objects.objects(k)}
    green = objs["Deployment", "app-green"]
    assert green["spec"]["template"]["metadata"]["labels"] == {"app": "app", "version": "green"}
    assert objs["Service", "app"]["spec"]["selector"] == {"app": "app", "version": "green"}
    assert sum(kind == "Pod" for kind, _ in objs) == 3 + 2 + 3 + 3  # app, auth, app-blue, app-green: Ready pods


def test_a_standin_spec_names_its_service_port_paths_and_tls() -> None:
    from opsproof.sandbox.standin import parse

    assert parse("app=8443:/health,/health/db:tls") == ("app", 8443, {"/health", "/health/db"}, True)
    assert parse("grafana=3000:/api/health") == ("grafana", 3000, {"/api/health"}, False)


@pytest.mark.parametrize("name", profiles.names())
def test_what_a_profile_cannot_emulate_names_an_entry_of_its_example(name: str) -> None:
    """``not_emulated: {check@target: why}`` — the target is an entry of the example (``kind[name]…``)."""
    profile = profiles.load(name)
    example = yaml.safe_load((REPO / profile.example).read_text())
    for key, why in profile.not_emulated.items():
        target = key.split("@", 1)[1]
        kind, entry = re.match(r"^([a-z]+)\[([^\]]+)\]", target).groups()  # type: ignore[union-attr]
        assert entry in example.get(kind, {}), f"{name}: {key} names no entry of {profile.example}"
        assert why.strip(), key
