"""The state database's connection, transactions and ``meta`` key/value table.

The base of ``StateDB`` (``synchro.state.database``): every part of the state (snapshots,
packages, quarantine, change log) is a mixin over this one connection.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from synchro.db.lock_wait import STEP_S, WAIT_S, Stopping, patiently
from synchro.errors import DISK_SAY, ErrorKind, StateError, kind_of

BUSY_MS = int(WAIT_S * 1000)  # another program's lock, waited for by any other statement


def now_text() -> str:
    """The local time as the state database stores it (``YYYY-MM-DD HH:MM:SS``)."""
    return dt.datetime.now().isoformat(" ", "seconds")


class Store:
    """One connection to the state database: ``conn`` is the writer; ``reader()`` gives an
    isolated read view."""

    path: Path
    conn: sqlite3.Connection
    # Write transactions begun on ``conn``: what a mixin learns of the database inside one
    # (``ChangeLog.newer_versions``) holds only while that one lasts, when no other
    # connection can write.
    transactions = 0
    # the program stops: a wait for another program's write lock ends (``db.lock_wait``)
    stopping: Stopping | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on the disk before it returns. NORMAL (WAL) lets a power cut
        # take back the last commits, e.g. the mark of a package applied after the user's
        # database kept its rows: those rows would then be captured as this site's own
        # changes and sent on (rule 2). A run commits the state a few times: ~1 ms each.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        return conn

    def close(self) -> None:
        self.conn.close()

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection (nested use is not allowed). The
        error that ends it is the one raised: after a full disk SQLite has ended the
        transaction itself, and a ROLLBACK then failed ("no transaction is active") in
        its place, an internal error instead of the disk's. A ``sqlite3`` error of the state
        is raised as a ``StateError``: of kind ``disk`` when the disk refused it, else
        ``internal`` (a fault of the program, as the raw error was)."""
        self._begin()
        self.transactions += 1
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:  # said as the state's (a full disk: kind disk)
            self._rollback()
            self.make_room()
            disk = kind_of(exc) is ErrorKind.DISK
            said = {"path": str(self.path), "detail": str(exc)}
            raise StateError(
                say=("engine.state.disk", {**said, "advice": [DISK_SAY]})
                if disk
                else ("engine.state.unwritable", said),
                kind=ErrorKind.DISK if disk else ErrorKind.INTERNAL,  # else a fault of ours
            ) from exc
        except BaseException:
            self._rollback()
            raise

    def _begin(self) -> None:
        """BEGIN IMMEDIATE: another program's write lock is waited for as long as the
        connection's busy timeout says, in steps a stop ends (``db.lock_wait``)."""
        self.conn.execute(f"PRAGMA busy_timeout={int(STEP_S * 1000)}")
        try:
            patiently(lambda: self.conn.execute("BEGIN IMMEDIATE"), self.stopping)
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def make_room(self) -> None:
        """Copy the WAL into the database and truncate it to nothing (best effort: a
        reader may hold it). Called before a big write and after a failed one: a rolled
        back transaction leaves the WAL file as big as it made it (measured: an import
        that filled the disk left it full, so nothing of the program could write, not even
        the Rapport), and a checkpoint then has to copy only what was committed before,
        i.e. nothing but the intent when the WAL was emptied before the import began."""
        with suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def dry_run(self) -> Iterator[None]:
        """A write transaction that is always rolled back (what a capture would do now)."""
        self._begin()
        self.transactions += 1
        try:
            yield
        finally:
            self._rollback()

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A second connection reading the last committed state (WAL isolation)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn
        finally:
            conn.close()

    # -- meta ---------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def drop_meta(self, key: str) -> None:
        self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    @property
    def instance(self) -> str:
        """This state's identity: a new one after a reinstall or a lost state database."""
        return self.get_meta("instance") or ""

    def get_int(self, key: str, default: int = 0) -> int:
        value = self.get_meta(key)
        return int(value) if value is not None else default
