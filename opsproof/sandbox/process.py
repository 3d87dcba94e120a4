"""Moved to :mod:`opsproof.util.process` (drill and chaos use it without the sandbox); kept for import paths."""

from opsproof.util.process import (
           ProcessError,
           Spec,
           Supervisor,
           die_with_parent,
           find_binary,
           free_port,
           port_open,
           postgres_user,
           proc_state,
           wait_for,
           write_atomic,
)

SandboxError = ProcessError  # the sandbox's name for it

__all__ = ["ProcessError", "SandboxError", "Spec", "Supervisor", "die_with_parent", "find_binary", "free_port",
           "port_open", "postgres_user", "proc_state", "wait_for", "write_atomic"]
