"""A statement waiting on a database server, ended by a stop.

A PostgreSQL or MariaDB statement that waits for a row another program keeps locked waits
inside the driver up to ``odbc.LOCK_WAIT_S`` (50 s), deaf to anything else: a service asked
to stop then outlived what a service manager allows (5-20 s) and was killed. SQLite's waits
are cut in short steps instead (``db.lock_wait``); a server's wait is on the server, so it
is cancelled: while a statement runs, ``StatementWatch`` looks at ``stopping()`` every
``POLL_S`` from a thread of its own and, once the program stops, cancels it (pyodbc's
``Cursor.cancel``, ODBC's SQLCancel: psqlODBC sends PostgreSQL's cancel request, MariaDB
Connector/ODBC a ``KILL QUERY`` on a connection of its own). The statement fails at once,
and the adapter raises ``Cancelled`` in place of its error (kind stopped: the run ends
« Arrêt », its transaction is rolled back by its owner and made again by the next run, as
after a stop during SQLite's wait).

Only a statement still running when the stop is seen is cancelled: the watch never touches
a cursor between two statements.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

POLL_S = 0.25
"""How often the watch looks at ``stopping()`` (its only cost while the adapter is open)."""


class StatementWatch:
    """Cancels the running statement (``running``) once ``stopping()`` holds."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self.stopping = stopping
        self._lock = threading.Lock()
        self._cursor: Any = None
        self._cancelled: Any = None  # the cursor last cancelled by the watch
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def running(self, cursor: Any) -> Iterator[None]:
        """While the block runs ``cursor``'s statement, a stop cancels it."""
        if self._thread is None and not self._closed.is_set():
            self._thread = threading.Thread(
                target=self._watch, name="synchro-db-cancel", daemon=True
            )
            self._thread.start()
        with self._lock:
            self._cursor, self._cancelled = cursor, None
        try:
            yield
        finally:
            with self._lock:
                self._cursor = None

    def cancelled(self, cursor: Any) -> bool:
        """Whether the watch cancelled ``cursor``'s statement (its error is the stop's)."""
        return self._cancelled is cursor

    def _watch(self) -> None:
        while not self._closed.wait(POLL_S):
            if self._cursor is None or not self.stopping():
                continue
            with self._lock:
                cursor = self._cursor
                if cursor is None:
                    continue
                self._cancelled = cursor
                with contextlib.suppress(Exception):  # (the statement may just have ended)
                    cursor.cancel()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2 * POLL_S + 1)
        self._thread = None
