"""The daily schedule at Heure de départ, with an injected clock."""

from __future__ import annotations

import datetime as dt

from synchro.scheduler import DailySchedule, next_run


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute)


def test_next_run_is_today_or_tomorrow() -> None:
    assert next_run(at(29, 22), dt.time(23, 0)) == at(29, 23)
    assert next_run(at(29, 23), dt.time(23, 0)) == at(30, 23)
    assert next_run(at(29, 23, 30), dt.time(23, 0)) == at(30, 23)


def test_due_once_a_day_at_the_hour() -> None:
    schedule = DailySchedule(dt.time(23, 0))
    schedule.arm(at(29, 9))
    assert schedule.next() == at(29, 23)
    assert not schedule.due(at(29, 22, 59))
    assert schedule.due(at(29, 23, 0))
    assert not schedule.due(at(29, 23, 1))  # a failed run waits for the next day
    assert schedule.next() == at(30, 23)
    assert not schedule.due(at(30, 22))
    assert schedule.due(at(30, 23, 5))


def test_started_after_the_hour_waits_for_tomorrow() -> None:
    schedule = DailySchedule(dt.time(23, 0))
    schedule.arm(at(29, 23, 30))
    assert not schedule.due(at(29, 23, 31))
    assert schedule.due(at(30, 23))


def test_disabled_never_fires_and_has_no_next() -> None:
    schedule = DailySchedule(dt.time(23, 0), enabled=False)
    schedule.arm(at(29, 9))
    assert schedule.next() is None
    assert not schedule.due(at(30, 23))


def test_a_clock_put_back_does_not_stop_the_runs() -> None:
    """A date typed a year ahead, one run made then, the date corrected: the next run is
    today's hour by the corrected clock, not a year later."""
    schedule = DailySchedule(dt.time(23, 0))
    schedule.arm(dt.datetime(2027, 11, 29, 9))
    assert schedule.due(dt.datetime(2027, 11, 29, 23))
    assert schedule.next() == dt.datetime(2027, 11, 30, 23)
    assert not schedule.due(at(29, 22))  # the clock put back a year
    assert schedule.next() == at(29, 23)
    assert schedule.due(at(29, 23))
    assert not schedule.due(at(29, 23, 1))
    assert schedule.next() == at(30, 23)


def test_winter_time_does_not_run_the_day_twice() -> None:
    """02:30 comes twice the night the clocks go back an hour: one run."""
    schedule = DailySchedule(dt.time(2, 30))
    schedule.arm(at(1, 0))
    assert schedule.due(at(1, 2, 30))
    assert not schedule.due(at(1, 2, 0))  # 03:00 summer time is 02:00 again
    assert not schedule.due(at(1, 2, 30))
    assert not schedule.due(at(1, 2, 45))
    assert schedule.due(at(2, 2, 30))


def test_summer_time_skipping_the_hour_still_runs() -> None:
    """02:30 never comes the night the clocks go forward: the run is made at 03:00."""
    schedule = DailySchedule(dt.time(2, 30))
    schedule.arm(at(1, 0))
    assert not schedule.due(at(1, 1, 59))
    assert schedule.due(at(1, 3, 0))
    assert not schedule.due(at(1, 3, 30))
