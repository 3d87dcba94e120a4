"""Every smoke check in one namespace, for suites that run the smoke suite as one of their steps
(checks/post_deploy, checks/post_maintenance): `from smoke.suite import *`. Not collected itself (not test_*.py).

Derived, not listed: every ``test*`` function defined in a ``smoke/test_*.py`` module is exported, so a new smoke
module or check is in both gates without an edit here (tests/test_smoke_registry.py guards it). Two smoke modules
defining the same name would shadow one another in a gate: that is refused at import.
"""

import importlib
import pkgutil
from pathlib import Path
from types import FunctionType


def _smoke_checks() -> dict[str, FunctionType]:
    found: dict[str, FunctionType] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"smoke.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("test") and isinstance(value, FunctionType) and value.__module__ == module.__name__:
                if name in found:
                    raise ImportError(f"smoke: {name} is defined in both {found[name].__module__} and "
                                      f"{module.__name__}; the gates would run only one. Fix: rename one")
                found[name] = value
    return found


_CHECKS = _smoke_checks()
globals().update(_CHECKS)
__all__ = sorted(_CHECKS)
