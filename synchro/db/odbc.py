"""Any ODBC source (connection string or DSN) through pyodbc.

pyodbc is imported inside functions only: it links the system's unixODBC, and the embedded
SQLite path must work on a machine without it (``odbc_connect``). The family is detected from
``SQL_DBMS_NAME`` and identifiers are quoted with ``SQL_IDENTIFIER_QUOTE_CHAR``. The
connection stays in autocommit between transactions (reads hold no locks) and ``atomic()``
turns autocommit off for its duration. ``fast_executemany`` is never used: it crashes the
SQLite ODBC driver and multi-row ``VALUES`` is faster anyway.

Discovery (the ODBC catalog functions, SQLite's PRAGMAs) is ``odbc_discovery.OdbcDiscovery``'s,
which this adapter builds on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from synchro.db import columnar_odbc
from synchro.db.base import Column, Key, Row, Table
from synchro.db.binding import Binder, binder, blob_bytes
from synchro.db.dialects import Dialect, detect_dialect
from synchro.db.doing import act, failed
from synchro.db.mysql_catalog import cut_by_driver, unsafe_statement
from synchro.db.odbc_connect import (
    SQL_DATABASE_NAME,
    SQL_DBMS_NAME,
    SQL_DBMS_VER,
    SQL_DRIVER_NAME,
    SQL_IDENTIFIER_QUOTE_CHAR,
    SQL_SERVER_NAME,
    STREAMING,
    connect,
    connection_lost,
    load_pyodbc,
    narrow_utf8,
    probe_text,
    sql_state,
    utf8mb4_connection,
)
from synchro.db.odbc_session import OdbcSession
from synchro.db.statement_watch import StatementWatch
from synchro.errors import Cancelled, DatabaseError, Say, server_disk_full
from synchro.i18n import render
from synchro.values import Kind

LOCK_WAIT_S = 50  # seconds a statement waits for a row another program locked
IDLE_CHECK_S = 1.0  # a connection unused that long is asked whether it lives before use
log = logging.getLogger("synchro.db")


class OdbcAdapter(OdbcSession):
    """One ODBC connection. ``connection``: ``DSN=...`` or ``DRIVER={...};...``."""

    _utf16_fault = False  # MariaDB Connector/ODBC: set when the connection opens
    _text_fault = ""  # what narrow statement text not in ASCII becomes ("" = itself, hex)

    def __init__(self, connection: str, stopping: Callable[[], bool] | None = None) -> None:
        """``stopping``: a stop ends the opening too (``odbc_connect.Opening``)."""
        super().__init__()
        self.stopping = stopping
        self._types_of: dict[str, dict[str, str]] = {}
        self._watch: StatementWatch | None = None  # made at the first statement with ``stopping``
        self._healing = False  # ``_after_lost`` making a new connection
        self._gone = False  # the connection closed after a loss, no new one made yet
        self._used = time.monotonic()  # when the connection was last used (``_ready``)
        pyodbc = load_pyodbc()
        self._driver_errors = (pyodbc.Error,)
        pyodbc.pooling = False  # a pooled connection is never really closed
        self._conn = connect(pyodbc, connection, stopping)
        info = self._conn.getinfo
        dbms = str(info(SQL_DBMS_NAME))
        self.dialect = detect_dialect(dbms) or "odbc"
        streaming = STREAMING.get(self.dialect, "")
        wanted = connection
        if streaming and streaming.split("=")[0].lower() not in connection.lower():
            # Reopen with the option that makes the driver stream results (memory flat).
            wanted = connection.rstrip("; ") + ";" + streaming
        if self.dialect == "mysql":
            wanted = utf8mb4_connection(wanted)
        self._connection = wanted  # also what the columnar reader connects with
        if wanted != connection:
            self._conn.close()
            self._conn = connect(pyodbc, wanted, stopping)
        self._session(dbms)

    def _session(self, dbms: str) -> None:
        """What this adapter knows of its connection, and the session it sets up there."""
        pyodbc = load_pyodbc()
        info = self._conn.getinfo
        self.sql = Dialect(
            self.dialect,
            str(info(SQL_IDENTIFIER_QUOTE_CHAR) or '"'),
            tagged_values=self.dialect == "sqlite",
        )
        self._database = str(info(SQL_DATABASE_NAME) or "")
        driver = str(info(SQL_DRIVER_NAME) or "")
        server = str(info(SQL_SERVER_NAME) or "")
        on: Say = ("engine.db.where.base", {"database": self._database})
        if server:
            on = ("engine.db.where.base_on", {"database": self._database, "server": server})
        self.described = ("engine.db.where", {"dbms": f"{dbms} {info(SQL_DBMS_VER)}", "on": [on]})
        self.description = render(self.described, "fr")
        if self.dialect in ("mysql", "sqlite"):
            narrow_utf8(pyodbc, self._conn)
        # What narrow statement text becomes on the way (``odbc_connect``), and MariaDB
        # Connector/ODBC's UTF-16 fault (``mysql_catalog``; another MySQL driver is not
        # known to have it): checked on names and on every statement.
        self._utf16_fault = self.dialect == "mysql" and "maodbc" in driver.lower()
        if self._utf16_fault and cut_by_driver(self._database):
            self._conn.close()
            cut = {"where": self.where, "database": self._database}
            raise DatabaseError(say=("engine.err.database_name", cut))
        if self.dialect in ("mysql", "sqlite"):
            self._text_fault = probe_text(self._query)
        self._schema = self._default_schema()
        if self.dialect == "sqlite":  # as the stdlib adapter: refuse orphans
            self._run("PRAGMA foreign_keys = ON", [], act("open")).close()
        if self.dialect == "postgresql":  # dates read as text: ISO whatever the server says
            self._run("SET DateStyle = 'ISO'", [], act("open")).close()
            # A row another program keeps locked: wait ``LOCK_WAIT_S`` (as long as MariaDB
            # does by default), then that row is set aside and retried by the next run.
            # PostgreSQL would wait for ever, and the round with it.
            self._run(f"SET lock_timeout = '{LOCK_WAIT_S}s'", [], act("open")).close()
        self._marked()
        if self.dialect == "mysql":
            self._strict()
            self._read_committed()
            # A row (InnoDB) or a whole table (LOCK TABLES, a metadata lock: MariaDB would
            # wait a year for it) another program keeps locked.
            for wait in ("innodb_lock_wait_timeout", "lock_wait_timeout"):
                self._run(f"SET SESSION {wait} = {LOCK_WAIT_S}", [], act("open")).close()

    def _after_lost(self) -> None:
        """A new connection after the database ended a transaction itself: a driver may not
        know it (SQLite's ran the next transaction's statements in autocommit, each kept:
        11,500 rows of a failed import), and a connection lost may be back."""
        if self._healing:  # (the new connection's own set-up met a lost connection)
            return
        with contextlib.suppress(*self._driver_errors):
            self._conn.close()
        self._gone = True
        with contextlib.suppress(*self._driver_errors, DatabaseError):
            self._reconnect()

    def _reconnect(self) -> None:
        """A new connection in place of the one closed after a loss, or the error that
        says why none can be made (the server still down: « injoignable »). Before, the
        closed one stayed: the next statement met pyodbc's « Attempt to use a closed
        connection », raw (an « erreur interne » of the round) or as the begin's error."""
        self._healing = True
        try:
            self._conn = connect(load_pyodbc(), self._connection, self.stopping)
            self._gone = False
            self._session(str(self._conn.getinfo(SQL_DBMS_NAME)))
        except BaseException:
            if not self._gone:  # its set-up failed: not a connection to use either
                with contextlib.suppress(*self._driver_errors):
                    self._conn.close()
                self._gone = True
            raise
        finally:
            self._healing = False

    def _ready(self) -> None:
        """Before the connection is used: a new one if it was closed after a loss, or if
        the server ended it while it lay unused (``_still_there``)."""
        if self._gone and not self._healing:
            self._reconnect()
        elif time.monotonic() - self._used > IDLE_CHECK_S and not (self._depth or self._healing):
            self._still_there()
        self._used = time.monotonic()

    def _still_there(self) -> None:
        """A connection unused for a while, outside any transaction, asked whether it
        lives (``SELECT 1``) and made again at once when the server ended it. A Siège's
        service keeps its connection from one day's round to the next, and servers end
        idle sessions (MariaDB's ``wait_timeout``: 8 hours by default; PostgreSQL's
        ``idle_session_timeout``): the round's first statement met the lost connection,
        and every day began with a « connexion perdue » and one of the export's three
        tries spent. Only on servers (a file database does not end sessions)."""
        if self.dialect not in ("postgresql", "mysql", "mssql"):
            return
        try:
            if not self._conn.autocommit:  # (in a transaction: its loss is the block's)
                return
            cursor = self._conn.cursor()
            try:
                cursor.execute("SELECT 1").fetchall()
            finally:
                cursor.close()
        except self._driver_errors as exc:
            if not connection_lost(exc):
                return  # the statement about to run says what is wrong
            log.info("%s : session fermée par le serveur, nouvelle connexion", self.description)
            self._after_lost()
            if self._gone:  # none could be made: the error that says why
                self._reconnect()

    def _run(self, sql: str, params: Sequence[Any], doing: Say) -> Any:
        self._ready()
        altered, miscounts = bool(self._text_fault), self._utf16_fault
        if (altered or miscounts) and unsafe_statement(sql, altered=altered, miscounts=miscounts):
            # never handed to the driver
            raise failed(self.where, doing, [self._name_fault()])
        return super()._run(sql, params, doing)

    def _execute(self, cursor: Any, sql: str, params: list[Any]) -> None:
        """A stop cancels a statement that waits on the server (``db.statement_watch``):
        ``Cancelled`` then, not the driver's error (PostgreSQL's 57014, a statement that
        failed: its row would be set aside)."""
        if self.stopping is None:
            cursor.execute(sql, params)
            return
        if self._watch is None:
            self._watch = StatementWatch(self.stopping)
        try:
            with self._watch.running(cursor):
                cursor.execute(sql, params)
        except self._driver_errors as exc:
            if not self._watch.cancelled(cursor):
                raise
            self._close(cursor)
            raise Cancelled() from exc

    # -- driver hooks -----------------------------------------------------------------

    def _binder(self, kind: Kind) -> Callable[[Any], Any] | None:
        return blob_bytes if kind == Kind.BLOB else None  # pyodbc binds the other kinds natively

    def _column_binder(self, table: Table, column: Column) -> Binder | None:
        if self.dialect not in ("sqlite", "postgresql", "mysql"):
            return self._binder(column.kind)
        full = self._full_types(table).get(column.name) or column.type_name
        return binder(self.dialect, column.kind, full, nul=self.dialect != "sqlite")

    def _forget_types(self) -> None:
        super()._forget_types()
        self._types_of.clear()

    def _forget_table_types(self, name: str) -> None:
        super()._forget_table_types(name)
        self._types_of.pop(name, None)

    def _full_types(self, table: Table) -> dict[str, str]:
        """Column types with their sizes (``numeric(38,10)``, ``datetime(6)``): what the
        ODBC catalog leaves out and the binders need to know what a column keeps.
        Read once per table until the next discovery (``tables()``), and again after a
        refusal (``_read_types_again``)."""
        cached = self._types_of.get(table.name)
        if cached is None:
            cached = self._types_of[table.name] = self._read_full_types(table.name)
        return cached

    def _read_full_types(self, name: str) -> dict[str, str]:
        sql = {
            "mysql": "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            "postgresql": "SELECT a.attname, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = ? AND n.nspname = current_schema()"
            " AND a.attnum > 0 AND NOT a.attisdropped",
        }.get(self.dialect)
        if sql is None:
            return {}
        return {str(r[0]): str(r[1]) for r in self._query(sql, (name,))}

    def arrow_ready(self) -> bool:
        return self.dialect in ("postgresql", "mysql") and columnar_odbc.available()

    def arrow_batches(self, table: Table, *, ordered: bool) -> Iterator[Any] | None:
        """Through arrow-odbc on a connection of its own, so never while this connection
        holds uncommitted writes the other would not see (``db.columnar_odbc``)."""
        if self._depth or not self.arrow_ready():
            return None
        types = self._full_types(table)
        return columnar_odbc.batches(self.sql, self._connection, table, types, ordered=ordered)

    def read_back(self, table: Table, keys: Sequence[Key], *, raw: bool = False) -> list[Row]:
        """The rows by key with text read as the hex of its UTF-8 bytes (``HEX()``,
        ``encode(convert_to())``), decoded here: the driver converts no character."""
        return self._fetch(table, keys, raw_text=True, raw=raw)

    def _translate(self, exc: BaseException, doing: Say) -> DatabaseError:
        """The driver's error in words. One that says the connection is gone, met in no
        transaction (a read, the schema, a transaction's begin), also gets the adapter a
        new connection for what follows: a Siège's service keeps its connection for days
        and its server may restart in the night; before, every later statement of the
        process failed on the dead one. (In a transaction, ``atomic`` does it once the
        transaction is undone.)"""
        args: tuple[Any, ...] = exc.args
        state = sql_state(exc)
        text = str(args[1]) if len(args) > 1 else str(exc)
        lost = connection_lost(exc)
        error = failed(
            self.where, doing, f"[{state}] {text}", ("engine.db.hint.lost", {}) if lost else None
        )
        if lost and not self._depth:
            self._after_lost()
        return error

    def _ends_transaction(self, error: DatabaseError) -> bool:
        """Errors that are no row's fault and end (or must end) the transaction: SQLSTATE
        classes 08 and 57 (the connection lost, the session ended by the server's operator:
        ``connection_lost``), 40 (deadlock, serialization: MariaDB has rolled back the whole
        transaction), 53 (out of disk or memory), 58 (system error); MariaDB's full disk
        under a table (``errors.server_disk_full``: its SQLSTATE is HY000, any error's)."""
        cause = error.__cause__
        return (
            connection_lost(cause)
            or server_disk_full(cause)
            or (cause is not None and sql_state(cause)[:2] in ("40", "53", "58"))
        )

    def gave_up_waiting(self, error: Exception) -> bool:
        """PostgreSQL's ``lock_timeout`` (55P03), MariaDB's lock waits (1205: a row, or the
        table another program locked), SQLite's busy file."""
        cause = error.__cause__
        if cause is None:
            return False
        text = str(cause)
        return sql_state(cause) == "55P03" or "(1205)" in text or "database is locked" in text

    def lost_connection(self, error: Exception) -> bool:
        return connection_lost(error.__cause__)

    def _begin(self) -> None:
        """Begin a transaction; on a connection the server ended since its last use (a
        restart of the server, a cut network: a Siège's service lives for days), on a new
        one. Before, every later transaction of the process failed on the dead one."""
        try:
            self._start()
        except DatabaseError as exc:
            if not self.lost_connection(exc):  # (one that says so: made again by _translate)
                self._after_lost()  # e.g. a connection closed when a reconnect failed
            self._start()  # the server still unreachable: its error

    def _start(self) -> None:
        self._ready()
        try:
            self._conn.autocommit = False
        except self._driver_errors as exc:  # (a raw driver error was an "internal error")
            raise self._translate(exc, act("begin")) from exc
        if self.dialect == "postgresql":  # psqlODBC loses a savepoint that is the first
            # statement of a transaction at the first error in it (« savepoint does not
            # exist »: the transaction taken for lost): it must begin with another one.
            # This one: a constraint declared DEFERRABLE INITIALLY DEFERRED (every foreign
            # key Django makes) checked at each statement, as the others: a row it refuses
            # is set aside alone, where at the commit it failed the whole apply, every run.
            self._run("SET CONSTRAINTS ALL IMMEDIATE", [], act("begin")).close()

    def _commit(self) -> None:
        self._end("commit", act("commit"))

    def _rollback(self) -> None:
        self._end("rollback", act("rollback"))

    def _end(self, how: str, doing: Say) -> None:
        """Commit or roll back, then autocommit again. When the first fails (the connection
        lost, SQLite's disk full), its error is the one raised: turning autocommit on then
        fails too, and its raw driver error hid the first (an "internal error" instead)."""
        try:
            getattr(self._conn, how)()
        except self._driver_errors as exc:
            with contextlib.suppress(*self._driver_errors):
                self._conn.autocommit = True
            raise self._translate(exc, doing) from exc
        try:
            self._conn.autocommit = True
        except self._driver_errors as exc:
            raise self._translate(exc, doing) from exc

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        with contextlib.suppress(*self._driver_errors):  # already gone: nothing to release
            self._conn.close()
