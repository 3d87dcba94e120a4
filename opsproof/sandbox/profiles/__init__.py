"""Sandbox profiles: the shape of one runbook's system, as data (``<name>.yaml`` here), added to the sandbox.

``opsproof sandbox up --profile signx`` starts the sandbox with what the profile adds — databases, roles and tables
the example's queries read, Alertmanager receivers, alert rules, a Celery worker, Kubernetes objects on an API
emulator — and writes ``profile.env``: the variables that point the profile's example inventory at it (the example
reads its addresses as ``${VAR:-production default}``). A profile is validated like an inventory: unknown keys,
and env templates naming something the sandbox does not have, are errors naming the file and the key.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from opsproof.util.process import ProcessError

HERE = Path(__file__).parent
# What an env template may name: {ports[NAME]}, {passwords[ROLE]}, {dir}, {ca_file}, {kubeconfig}
TEMPLATE_FIELDS = ("ports", "passwords", "dir", "ca_file", "kubeconfig")
NAME = r"^[a-z][a-z0-9_-]*$"


class ProfileError(ProcessError):
    """A profile that cannot be used: the message names the file, the key and the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SQL_NAME = r"^[a-z][a-z0-9_]*$"  # written into SQL as it is: a plain identifier only


class Role(_Model):
    member_of: list[Annotated[str, Field(pattern=SQL_NAME)]] = Field(default_factory=list)  # e.g. [pg_monitor]


class Database(_Model):
    sql: str = ""  # run once as the superuser in that database after it is created (tables, rows, grants)
    create: bool = True  # false: a database every cluster has (postgres), only its sql is run


class Postgres(_Model):
    roles: dict[str, Role] = Field(default_factory=dict)
    databases: dict[str, Database] = Field(default_factory=dict)
    ssl: bool = False  # the sandbox's PostgreSQL takes TLS (its certificate from the sandbox CA), for sslmode=require
    # server settings (`postgres -c NAME=VALUE`), e.g. archive_mode: "on" with a real archive_command; a value may
    # name {dir}, the sandbox's folder
    settings: dict[Annotated[str, Field(pattern=SQL_NAME)], str] = Field(default_factory=dict)

    @field_validator("roles", "databases")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.match(SQL_NAME, name):
                raise ValueError(f"{name!r} is not a plain lower-case SQL identifier. Fix: use letters, digits, _")
        return v


class CeleryWorker(_Model):
    queues: list[str] = Field(min_length=1)  # `celery worker -Q …`; the worker's node name is NAME@host


class Resources(_Model):
    requests: dict[str, str] = Field(default_factory=dict)  # {memory: 512Mi, cpu: 500m}
    limits: dict[str, str] = Field(default_factory=dict)


class Workload(_Model):
    replicas: int = Field(1, ge=0)
    resources: Resources | None = None
    labels: dict[str, str] = Field(default_factory=dict)  # its pods' labels (default app: NAME)


class Service(_Model):
    selector: dict[str, str] = Field(min_length=1)


class Hpa(_Model):
    target: str  # the Deployment it scales
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    cpu: int | None = Field(None, ge=1)  # averageUtilization, %
    memory: int | None = Field(None, ge=1)
    pods_metrics: dict[str, str] = Field(default_factory=dict)  # Pods-type metric -> averageValue ("100")
    behavior: dict[str, Any] = Field(default_factory=dict)  # spec.behavior as the API has it (scaleUp, scaleDown)


class ScaledObject(_Model):
    target: str
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    triggers: list[str] = Field(min_length=1)  # trigger types (redis, cpu …)


class CronJob(_Model):
    schedule: str
    last_success_ago: str = "1h"  # when its last Job succeeded, as a duration before `up`


class Certificate(_Model):
    days_left: int = Field(90, ge=0)
    issuer: str | None = None  # spec.issuerRef.name (a ClusterIssuer)


class Kubernetes(_Model):
    """The objects of one namespace, given by what the runbook states; the emulator serves them as the
    controllers would have left them after a healthy rollout (:mod:`opsproof.sandbox.kube_objects`)."""

    namespace: str = Field(pattern=NAME)
    deployments: dict[str, Workload] = Field(default_factory=dict)
    statefulsets: dict[str, Workload] = Field(default_factory=dict)
    hpa: dict[str, Hpa] = Field(default_factory=dict)
    scaled_objects: dict[str, ScaledObject] = Field(default_factory=dict)
    cronjobs: dict[str, CronJob] = Field(default_factory=dict)
    certificates: dict[str, Certificate] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    load_balancers: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(default_factory=list)  # Endpoints of a Deployment's name: its Ready pods' addresses
    ingresses: list[str] = Field(default_factory=list)  # Ingresses with a load balancer address
    services: dict[str, Service] = Field(default_factory=dict)  # ClusterIP Services and what they select
    # a Service's ports (port -> targetPort; default 80 -> 80), an Ingress' annotations, PVCs Bound with a capacity
    service_ports: dict[str, dict[int, int]] = Field(default_factory=dict)
    ingress_annotations: dict[str, dict[str, str]] = Field(default_factory=dict)
    volume_claims: dict[str, str] = Field(default_factory=dict)  # name -> capacity ("10Gi")


class HttpStandin(_Model):
    """A service of the runbook the sandbox has no application for: a stand-in answers its health paths."""

    paths: list[Annotated[str, Field(pattern=r"^/[^\s,]*$")]] = Field(default_factory=lambda: ["/health"])
    tls: bool = False  # HTTPS, with the sandbox CA's certificate for 127.0.0.1


class Bucket(_Model):
    """A bucket of the S3 API the profile serves (moto's server): the objects written into it when the sandbox
    starts (so the newest is as fresh as a backup just taken) and whether it has a lifecycle (expiration) rule."""

    objects: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    lifecycle_days: int | None = Field(None, ge=1)  # an expiration rule after that many days (mc ilm / aws s3api)


class ScrapeJob(_Model):
    """A Prometheus job of the runbook's name scraping a sandbox service; ``labels`` are what service discovery
    would attach (``namespace: sophia``). Written ``NAME: SERVICE`` when it needs none."""

    service: Literal["app", "prometheus", "alertmanager"]
    labels: dict[str, str] = Field(default_factory=dict)


class Profile(_Model):
    name: str = Field(pattern=NAME)
    description: str
    example: str  # the example inventory it runs (a path from the repository root)
    runbook: str
    env: dict[str, str] = Field(min_length=1)  # profile.env: VAR -> template over the sandbox (TEMPLATE_FIELDS)
    postgres: Postgres = Postgres()
    alert_receivers: list[str] = Field(default_factory=list)  # Alertmanager receivers (each to the sandbox webhook)
    alert_rules: list[dict[str, Any]] = Field(default_factory=list)  # Prometheus rules, added to the sandbox's
    celery: dict[str, CeleryWorker] = Field(default_factory=dict)
    # one namespace (a mapping), or several (profiles combined: `--profile signx,sophia`)
    kubernetes: Annotated[list[Kubernetes], BeforeValidator(lambda v: [v] if isinstance(v, dict) else v)] = Field(
        default_factory=list)
    # services on ports of their own ({ports[http_NAME]}), answered by stand-ins (opsproof/sandbox/standin.py)
    http_services: dict[Annotated[str, Field(pattern=NAME)], HttpStandin] = Field(default_factory=dict)
    # buckets of an S3 API on a port of its own ({ports[s3]}; moto's server), any access key accepted
    s3: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")], Bucket] = Field(default_factory=dict)
    # extra Prometheus jobs, each scraping a sandbox service's /metrics under the runbook's job name (e.g.
    # kubernetes-pods: app)
    scrape_jobs: dict[Annotated[str, Field(pattern=NAME)], Annotated[ScrapeJob, BeforeValidator(
        lambda v: {"service": v} if isinstance(v, str) else v)]] = Field(default_factory=dict)
    # checks of the example the profile cannot make pass honestly (`check@target` → why: a metric no exporter here
    # produces, an extension Debian does not package); tests/integration/test_profiles.py requires that exactly
    # these fail on the healthy profile, so an entry that starts passing, or a new gap, is a test failure
    not_emulated: dict[Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z_]+@\S.*$")], str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _templates(cls, env: dict[str, str]) -> dict[str, str]:
        for var, template in env.items():
            if not var.replace("_", "").isalnum() or not var[0].isalpha() or var != var.upper():
                raise ValueError(f"env: {var!r} is not an upper-case variable name")
            for _, field, _, _ in string.Formatter().parse(template):
                root = field.split("[")[0].split(".")[0] if field is not None else None
                if root is not None and root not in TEMPLATE_FIELDS:
                    raise ValueError(f"env.{var}: {{{field}}} names nothing the sandbox has. "
                                     f"Fix: use one of {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}")
        return env

    @property
    def services(self) -> tuple[str, ...]:
        """The processes the profile adds to the sandbox's services."""
        return ((("kube",) if self.kubernetes else ()) + (("standins",) if self.http_services else ())
                + tuple(f"celery_{w}" for w in self.celery) + (("s3",) if self.s3 else ()))

    def render_env(self, values: dict[str, Any]) -> dict[str, str]:
        try:
            return {var: template.format_map(values) for var, template in self.env.items()}
        except (KeyError, IndexError) as e:
            raise ProfileError(f"profile {self.name}: env names {e} which this sandbox does not have") from None


def combine(parts: list[Profile]) -> Profile:
    """Several profiles in one sandbox (one start for all of them, as CI runs them): everything of each; a variable
    two of them set differently, or a name two of them define, is refused."""
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = {"name": "+".join(p.name for p in parts), "description": "; ".join(
        p.description for p in parts), "example": " ".join(p.example for p in parts),
        "runbook": " ".join(p.runbook for p in parts), "env": {}, "postgres": {"roles": {}, "databases": {}},
        "alert_receivers": [], "alert_rules": [], "celery": {}, "kubernetes": [], "http_services": {},
        "scrape_jobs": {}, "s3": {}, "not_emulated": {}}
    for p in parts:
        data = p.model_dump()
        for var, template in p.env.items():
            if merged["env"].setdefault(var, template) != template:
                raise ProfileError(f"profiles {merged['name']}: {var} is {merged['env'][var]!r} in one and "
                                   f"{template!r} in {p.name}. Fix: run them in two sandboxes")
        for key in ("celery", "http_services", "scrape_jobs", "s3"):
            _disjoint(merged[key], data[key], f"{key} of {p.name}")
        for key in ("roles", "databases"):
            _disjoint(merged["postgres"][key], data["postgres"][key], f"postgres.{key} of {p.name}")
        merged["postgres"]["ssl"] = merged["postgres"].get("ssl", False) or p.postgres.ssl
        _disjoint(merged["postgres"].setdefault("settings", {}), data["postgres"]["settings"],
                  f"postgres.settings of {p.name}")
        merged["alert_receivers"] += [r for r in p.alert_receivers if r not in merged["alert_receivers"]]
        merged["alert_rules"] += data["alert_rules"]
        merged["kubernetes"] += data["kubernetes"]
        # not_emulated stays each profile's own: it is about that profile's example (load it alone to read it)
    namespaces = [k["namespace"] for k in merged["kubernetes"]]
    if len(set(namespaces)) != len(namespaces):
        raise ProfileError(f"profiles {merged['name']}: two define namespace(s) "
                           f"{sorted({n for n in namespaces if namespaces.count(n) > 1})}")
    return Profile.model_validate({**merged, "name": merged["name"].replace("+", "-")})


def _disjoint(into: dict[str, Any], add: dict[str, Any], what: str) -> None:
    for key, value in add.items():
        if key in into and into[key] != value:  # the same definition twice (a read-only role) is one
            raise ProfileError(f"{what}: {key!r} is defined by another profile too. Fix: run them in two sandboxes")
    into.update(add)


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def load(name: str) -> Profile:
    """The profile ``name`` (``opsproof/sandbox/profiles/NAME.yaml``), validated; ``a,b``: both, combined."""
    if "," in name:
        return combine([load_one(n.strip()) for n in name.split(",")])
    return load_one(name)


def load_one(name: str) -> Profile:
    path = HERE / f"{name}.yaml"
    if not path.exists():
        raise ProfileError(f"no sandbox profile {name!r}. Fix: --profile one of {', '.join(names()) or '(none)'}")
    try:
        data = yaml.safe_load(path.read_text())
        profile = Profile.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ProfileError(f"{path}: {problems}") from None
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not YAML: {e}") from None
    if profile.name != name:
        raise ProfileError(f"{path}: name: {profile.name!r}, expected {name!r} (the file's name)")
    return profile
