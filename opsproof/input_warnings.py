"""Input that is valid but deserves a word: a waiver that waives everything, or one that never really ends.

They are warnings, not errors (a team may mean it for a day). ``opsproof validate --waivers FILE`` prints them on
stderr, and a pytest run lists them at the end with the waivers it applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta

from opsproof.governance import Waiver

LONGEST = timedelta(days=366)  # a waiver further away than this is a waiver that is not meant to end


def waiver_warnings(waivers: Sequence[Waiver], source: str, today: date) -> list[str]:
    found = []
    for i, w in enumerate(waivers):
        who = f"({w.owner}, {w.ticket})"
        if not re.sub(r"[*?@.\[\]]", "", w.check):  # only wildcards: `*`, `*@*`, `*.*@*[*]`
            found.append(f"{source}: [{i}].check: {w.check!r} matches every check: it waives any failure, known or "
                         f"not {who}. Fix: name the check and target it accepts, e.g. redis.hit_rate@redis[cache].")
        if w.expires - today > LONGEST:
            found.append(f"{source}: [{i}].expires: {w.expires.isoformat()} is more than a year away {who}: a waiver "
                         "is meant to end. Fix: set the date by which the finding is to be fixed.")
    return found
