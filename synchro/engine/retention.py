"""What a node keeps of its past: its Rapport rows and its conflicts, ``KEEP_DAYS`` long.

Both grew without end: a row per run (at the Siège, per establishment and round, its details
holding up to 200 conflicts and 200 quarantined rows) and every losing version of the
conflict log, on a server left to run for years. After each run (a Serveur's) or round (the
Siège's), what is older than ``KEEP_DAYS`` is dropped. Rows still to apply (the quarantine)
and the change log (compacted on its own) are not touched.

``KEEP_DAYS`` count back from the start of the node's ``KEEP_RUNS``-th last run or round,
when that is earlier than now: a clock put forward (a year typed wrong, a battery reset to
a date ahead) used to wipe, at its first run, every Rapport row and every losing version
of the conflict log; now the last ``KEEP_RUNS`` runs' dates decide, so it would take that
many runs at the wrong date (two months of daily runs) before anything real is dropped. A
node back after a long stop keeps the year before it stopped until it has made as many.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable

from synchro.errors import SynchroError
from synchro.reports import ReportStore
from synchro.state import StateDB

log = logging.getLogger("synchro")
KEEP_DAYS = 400  # a year of history, and a month more to compare with the year before
KEEP_RUNS = 60  # the runs whose dates the cut is counted from (see above)


def forget_old(reports: ReportStore, state: StateDB, now: dt.datetime) -> tuple[int, int]:
    """Drop the Rapport rows and conflicts older than ``KEEP_DAYS``, counted as above:
    (rows, conflicts).
    A store that cannot be written (a full disk) leaves them, said in the log: the run
    or round that just ended keeps its verdict."""
    try:
        anchor = reports.started_back(KEEP_RUNS)
    except (SynchroError, sqlite3.Error) as exc:
        log.warning("Historique ancien non effacé : %s", exc)
        return 0, 0
    if anchor is None:
        return 0, 0  # fewer runs than that: nothing is old enough to be dropped yet
    before = min(now, anchor) - dt.timedelta(days=KEEP_DAYS)
    dropped = _each(reports.forget_before, before), _each(state.forget_conflicts_before, before)
    if any(dropped):
        text = "Historique de plus de %d jours effacé : %d rapports, %d conflits"
        log.info(text, KEEP_DAYS, *dropped)
    return dropped


def _each(forget: Callable[[dt.datetime], int], before: dt.datetime) -> int:
    try:
        return forget(before)
    except (SynchroError, sqlite3.Error) as exc:  # the run is over: it stays as it ended
        log.warning("Historique ancien non effacé : %s", exc)
        return 0
