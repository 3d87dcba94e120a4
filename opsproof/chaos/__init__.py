"""Chaos Toolkit extension: faults (actions) and probes as plain typed functions for ``provider: python``.

Every function takes the experiment's ``configuration`` (see :mod:`opsproof.chaos.context` for its keys), reaches
its targets through the inventory (and, for processes and the fault proxy, the sandbox), raises
:class:`~opsproof.chaos.context.ChaosError` naming the target, what it observed and what it expected when it
fails, and returns a JSON-serializable dict for the journal.
"""
