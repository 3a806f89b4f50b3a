"""An import whose transaction the database ended itself, made again.

A deadlock with the shop's own program (MariaDB rolls the import's whole transaction back,
PostgreSQL aborts it) is no fault of the package and seldom happens twice in a row: the
apply was undone whole (``db.sql_core``: ``TransactionLost``), so it is simply made again,
a little later, instead of failing the day's synchronisation. Not a full disk: a second
does not empty it; and not when the user stopped the run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from synchro.engine.node_results import ImportResult
from synchro.errors import ErrorKind, TransactionLost

log = logging.getLogger("synchro.engine")
LOST_TRIES = 3  # imports made in all, the first included
LOST_PAUSE_S = 1.0  # between two: the other program ends its transaction meanwhile


def again_when_lost(
    attempt: Callable[[], ImportResult], cancel: threading.Event | None = None
) -> ImportResult:
    """``attempt()``, made again after a ``TransactionLost`` that is not the disk's, up to
    ``LOST_TRIES`` times; the result says how many it took (``attempts``)."""
    for tries in range(1, LOST_TRIES):
        try:
            result = attempt()
        except TransactionLost as exc:
            if exc.kind is ErrorKind.DISK:
                raise
            log.warning("%s ; nouvel essai (%d sur %d)", exc, tries + 1, LOST_TRIES)
            if cancel is not None and cancel.wait(LOST_PAUSE_S):
                raise
            if cancel is None:
                time.sleep(LOST_PAUSE_S)
            continue
        return dataclasses.replace(result, attempts=tries) if tries > 1 else result
    return dataclasses.replace(attempt(), attempts=LOST_TRIES)  # the last: its error stands
