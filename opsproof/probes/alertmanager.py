"""Alertmanager: `amtool check-config`, `curl $AM/api/v2/status`, `curl $AM/api/v2/receivers`."""

from __future__ import annotations

from opsproof.inventory import Alertmanager
from opsproof.probes.base import Outcome, Target, probe
from opsproof.probes.connections import Connections
from opsproof.probes.prometheus import api
from opsproof.result import Severity


@probe("alertmanager.ready", "alertmanager", Severity.HIGH, "curl $AM/api/v2/status",
       expected=lambda cfg: "cluster ready or disabled, config loaded", root=True)
def ready(target: Target[Alertmanager], conns: Connections) -> Outcome:
    """Alertmanager answers its status API with a loaded configuration and a ready cluster."""
    status = api(target, conns, "/api/v2/status")
    cluster = status.get("cluster", {}).get("status", "?")
    has_config = bool(status.get("config", {}).get("original"))
    ok = cluster in ("ready", "disabled") and has_config
    return Outcome(ok, f"cluster {cluster}, config {'loaded' if has_config else 'missing'}, "
                       f"version {status.get('versionInfo', {}).get('version', '?')}",
                   {"cluster": cluster, "uptime": status.get("uptime")})


@probe("alertmanager.receivers", "alertmanager", Severity.HIGH, "amtool config routes  # receivers exist",
       applies=lambda cfg: bool(cfg.receivers),
       expected=lambda cfg: f"receivers {', '.join(cfg.receivers)} configured")
def receivers(target: Target[Alertmanager], conns: Connections) -> Outcome:
    """The receivers alerts are routed to exist in the running configuration."""
    names = sorted(r["name"] for r in api(target, conns, "/api/v2/receivers"))
    missing = [r for r in target.config.receivers if r not in names]
    return Outcome(not missing, f"missing receivers: {', '.join(missing)} (configured: {', '.join(names)})" if missing
                   else f"receivers present: {', '.join(target.config.receivers)}", {"receivers": names})
