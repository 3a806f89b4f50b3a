"""Whether this establishment's clock and the Siège's agree (said in the Rapport).

The rule « la plus récente gagne » compares the dates the establishments' programs write;
a shop whose server is two hours slow loses every conflict it should win, and nothing said
why. Synchro cannot set a clock, but it can compare: the Siège's FTP server dates a file
by its own clock when it is written (``SiteClient.remote_time``), so a file this node has
just sent tells the Siège's time to a second or two.
"""

from __future__ import annotations

import datetime as dt

TOLERANCE_S = 120  # apart by more than this (a transfer takes a few seconds) is said


def ahead_by(mine: dt.datetime, theirs: dt.datetime) -> int | None:
    """Seconds this machine's clock (``mine``: local time, naive, or aware) is ahead of
    the Siège's (``theirs``, aware) — negative when behind — or None when they agree
    within ``TOLERANCE_S``."""
    seconds = round((mine.astimezone(dt.UTC) - theirs).total_seconds())
    return seconds if abs(seconds) > TOLERANCE_S else None
