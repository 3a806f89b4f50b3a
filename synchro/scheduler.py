"""Daily schedule at *Heure de départ*, with time injected (tests never sleep).

``next_run(now, start)`` is the next occurrence of ``start`` strictly after ``now``.
``DailySchedule.due(now)`` is true once per day, the first time it is asked at or after the
hour; a run that failed is not retried before the next day's hour (the manual: "Elle se
relancera automatiquement le lendemain à la même heure"); MANUELLE is always possible.

The clock may be put back (a date typed wrong and then corrected, a machine whose clock
was reset): the next occurrence is then more than a day ahead of ``now``, which a right
clock never gives, and waiting for it would stop the automatic runs for as long as the
clock went back. The schedule then takes the hour from the clock as it is now
(``MAX_AHEAD``: an hour put back for winter time or a small correction is not that; the
run already made today is not made again for it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# How far ahead of ``now`` the next occurrence may be before the clock is taken to have
# been put back: a day (the farthest a next occurrence can be) and a margin for the hour
# changes and small corrections of a clock, which must not run the day's run again.
MAX_AHEAD = dt.timedelta(days=1, hours=3)


def next_run(now: dt.datetime, start: dt.time) -> dt.datetime:
    today = dt.datetime.combine(now.date(), start)
    return today if today > now else today + dt.timedelta(days=1)


@dataclass
class DailySchedule:
    """``enabled`` = Synchronisation automatique (always on for the Siège's rounds)."""

    start: dt.time
    enabled: bool = True
    armed_at: dt.datetime | None = None  # when the schedule started (nothing before it)
    _next: dt.datetime | None = None

    def arm(self, now: dt.datetime) -> None:
        self.armed_at = now
        self._next = next_run(now, self.start)

    def next(self) -> dt.datetime | None:
        return self._next if self.enabled else None

    def due(self, now: dt.datetime) -> bool:
        """True when the hour has come; the next occurrence is then the next day's."""
        if self._next is None or self._next - now > MAX_AHEAD:
            self.arm(now)  # first call, or the clock was put back
        assert self._next is not None
        if not self.enabled or now < self._next:
            return False
        self._next = next_run(now, self.start)
        return True


def within(limit: dt.datetime, now: dt.datetime, span: dt.timedelta) -> dt.datetime:
    """``limit`` (a deadline set as ``now + span`` or earlier), or ``now + span`` when the
    clock was put back since and ``limit`` is farther than a right clock could have set it."""
    return min(limit, now + span)
