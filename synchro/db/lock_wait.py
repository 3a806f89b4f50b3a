"""Waiting for another program's SQLite lock in short steps, so that a stop ends the wait.

SQLite waits for a lock inside the call (its busy timeout, 30 s here), in C, deaf to
anything else: a service asked to stop while another program held its database or its
state locked ended 28-30 s later (``bench/bench_stop.py``), past what a service manager
allows (5-20 s). The connection waits ``STEP_S`` at a time instead, and ``patiently``
tries the statement again until ``WAIT_S`` have passed — the same patience as before,
then the same error — unless ``stopping()`` says the program stops: ``Cancelled`` then
(kind stopped: the run ends « Arrêt », a transaction open is rolled back by its owner and
made again by the next run, as after ARRETER). A statement refused for a lock did nothing,
so trying it again is safe (SQLite's own busy handler does the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from synchro.errors import Cancelled, sqlite_error

T = TypeVar("T")
WAIT_S = 30.0
STEP_S = 0.25
Stopping = Callable[[], bool]


def is_busy(exc: BaseException | None) -> bool:
    """``exc`` (a ``sqlite3`` error) is another connection's lock (SQLITE_BUSY/LOCKED)."""
    return sqlite_error(exc) in ("SQLITE_BUSY", "SQLITE_LOCKED")


def patiently(
    attempt: Callable[[], T],
    stopping: Stopping | None,
    *,
    cause: Callable[[BaseException], BaseException | None] = lambda exc: exc,
    wait_s: float = WAIT_S,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``attempt()`` again while it fails on a lock (``is_busy(cause(error))``), ``wait_s``
    at most; ``Cancelled`` as soon as ``stopping()`` holds. Any other error is raised."""
    end = clock() + wait_s
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not is_busy(cause(exc)):
                raise
            if stopping is not None and stopping():
                raise Cancelled() from exc
            if clock() >= end:
                raise
