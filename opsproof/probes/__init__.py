"""One module per resource kind. ``ALL`` lists every declared probe."""

from opsproof.probes import alertmanager, backups, http, kubernetes, postgres, prometheus, redis, slo, tls
from opsproof.probes.base import ProbeSpec, Target, run
from opsproof.probes.connections import Connections

ALL: tuple[ProbeSpec, ...] = tuple(
    value
    for module in (http, tls, postgres, redis, prometheus, alertmanager, slo, kubernetes, backups)
    for value in vars(module).values()
    if isinstance(value, ProbeSpec)
)

__all__ = ["ALL", "Connections", "ProbeSpec", "Target", "run"]
