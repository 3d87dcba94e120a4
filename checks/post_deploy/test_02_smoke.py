"""Post-deploy gate, step 2: the smoke suite (the same checks as `pytest smoke`)."""

from smoke.suite import *  # noqa: F403  (every smoke check, collected here as a step of the gate)
