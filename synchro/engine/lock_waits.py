"""Rows another program keeps locked (a form left open in a transaction, a report holding
a table): the apply and the retry of set-aside rows give up waiting for them after
``odbc.LOCK_WAIT_S`` and set them aside for the next run, and apply the others.

One rule for both: a wait given up is no row's fault (no other rule is tried for it); two
rows in a row whose waits were given up mean the table is kept locked, and its remaining
rows are set aside at once instead of waiting again for each (500 rows × 50 s).
"""

from __future__ import annotations

from collections.abc import Sequence

from synchro.db.base import Adapter, Key, Row, Table
from synchro.errors import DatabaseError


class LockWaits:
    """The waits given up on one table, in a row; ``locked`` once two were (the error)."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.waited = 0
        self.locked: Exception | None = None

    def gave_up(self, error: DatabaseError) -> bool:
        """Whether ``error`` is a lock wait given up (counted: the second in a row marks the
        table locked); any other error ends the run of waits."""
        if not self.adapter.gave_up_waiting(error):
            self.waited = 0
            return False
        self.waited += 1
        if self.waited >= 2:
            self.locked = error
        return True

    def passed(self) -> None:
        """A row went through: the waits are no longer in a row."""
        self.waited = 0


def read_locked(
    adapter: Adapter, table: Table, keys: Sequence[Key], waits: LockWaits
) -> tuple[list[Row], list[tuple[int, Exception]]]:
    """The rows of ``keys``, locked until the transaction commits (``Dialect.locking``: a
    shop's write committed between this read and the write over it would be overwritten
    unseen), and the keys (their index in ``keys``) whose row another program keeps
    locked, with the error, to be set aside. When the read of them all gives up waiting,
    each is read on its own, so that one locked row does not hold back the others."""
    if waits.locked is not None:
        return [], [(index, waits.locked) for index in range(len(keys))]
    try:
        return fetch_locked(adapter, table, keys), []
    except DatabaseError as exc:
        if not adapter.gave_up_waiting(exc):
            raise
    rows: list[Row] = []
    aside: list[tuple[int, Exception]] = []
    for index, key in enumerate(keys):
        if waits.locked is not None:
            aside.append((index, waits.locked))
            continue
        try:
            rows += fetch_locked(adapter, table, [key])
            waits.passed()
        except DatabaseError as exc:
            if not waits.gave_up(exc):
                raise
            aside.append((index, exc))
    return rows, aside


def fetch_locked(adapter: Adapter, table: Table, keys: Sequence[Key]) -> list[Row]:
    with adapter.savepoint():  # (a statement that failed leaves the transaction usable)
        return adapter.fetch(table, keys, lock=True)
