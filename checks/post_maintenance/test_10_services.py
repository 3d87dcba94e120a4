"""Post-maintenance checklist, step 1: "all services healthy" — every smoke check, as after a deploy."""

from smoke.suite import *  # noqa: F403  (every smoke check, collected here as a step of the checklist)
