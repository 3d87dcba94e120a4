"""opsproof: runbook checks as pytest suites, driven by one inventory."""

from opsproof.assertions import verify
from opsproof.result import Result, Severity

__all__ = ["Result", "Severity", "verify"]
__version__ = "0.1.0"
