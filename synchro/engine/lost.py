"""An import whose transaction the database ended itself, made again; an export whose
connection the database server lost, made again.

A deadlock with the shop's own program (MariaDB rolls the import's whole transaction back,
PostgreSQL aborts it) is no fault of the package and seldom happens twice in a row: the
apply was undone whole (``db.sql_core``: ``TransactionLost``), so it is simply made again,
a little later, instead of failing the day's synchronisation. Not a full disk: a second
does not empty it; and not when the user stopped the run. An export reads the database
(and writes only its number, ``engine.marks``, which may go ahead of the state) and keeps
what it captured in one state transaction, undone with it: a server restarted or a network
cut in the middle of it is met again on a new connection (``Adapter.lost_connection``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from synchro.engine.node_results import ImportResult
from synchro.errors import DatabaseError, ErrorKind, SynchroError, TransactionLost

log = logging.getLogger("synchro.engine")
LOST_TRIES = 3  # imports made in all, the first included
LOST_PAUSE_S = 1.0  # between two: the other program ends its transaction meanwhile
T = TypeVar("T")


def again_when_lost(
    attempt: Callable[[], ImportResult],
    cancel: threading.Event | None = None,
    lost: Callable[[Exception], bool] = lambda _exc: False,
) -> ImportResult:
    """``attempt()``, made again after a ``TransactionLost`` that is not the disk's, or an
    error caused by a lost connection (``lost``: ``Adapter.lost_connection``; the server
    still down when the apply is made again, its begin refused: before, that try ended
    the tries, the third never made; a COMMIT whose connection was lost, the server
    killed: whether it kept the transaction is not known, and an apply made again sets
    the same values), up to ``LOST_TRIES`` times; the result says how many it took
    (``attempts``)."""
    result, tries = _again(attempt, lambda exc: _disconnected(exc, lost), cancel)
    return dataclasses.replace(result, attempts=tries) if tries > 1 else result


def again_when_disconnected(
    attempt: Callable[[], T],
    lost: Callable[[Exception], bool],
    cancel: threading.Event | None = None,
) -> T:
    """``attempt()`` (an export), made again after an error caused by a lost connection to
    the database (``lost``: ``Adapter.lost_connection``; the capture words it as its own,
    the database's error as its cause) or by a transaction the database ended (not the
    disk's), up to ``LOST_TRIES`` times in all."""
    return _again(attempt, lambda exc: _disconnected(exc, lost), cancel)[0]


def _again(
    attempt: Callable[[], T],
    again: Callable[[SynchroError], bool],
    cancel: threading.Event | None,
) -> tuple[T, int]:
    """``attempt()`` up to ``LOST_TRIES`` times while it fails with an error ``again``
    says is worth another try, ``LOST_PAUSE_S`` apart (not once the user stopped); its
    result and the number of tries it took."""
    for tries in range(1, LOST_TRIES):
        try:
            return attempt(), tries
        except SynchroError as exc:
            if not again(exc):
                raise
            log.warning("%s ; nouvel essai (%d sur %d)", exc, tries + 1, LOST_TRIES)
            if cancel is not None and cancel.wait(LOST_PAUSE_S):
                raise
            if cancel is None:
                time.sleep(LOST_PAUSE_S)
    return attempt(), LOST_TRIES  # the last: its error stands


def _disconnected(exc: BaseException, lost: Callable[[Exception], bool]) -> bool:
    """Whether ``exc`` or an error that caused it is a lost connection or transaction."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TransactionLost):
            return seen.kind is not ErrorKind.DISK
        if isinstance(seen, DatabaseError) and lost(seen):
            return True
        seen = seen.__cause__
    return False
