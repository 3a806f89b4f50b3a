"""The embedded default: an SQLite file through the standard library's ``sqlite3``.

No ODBC needed. The connection runs in autocommit mode (``isolation_level=None``) and
``atomic()`` issues an explicit ``BEGIN IMMEDIATE`` so that savepoints nest inside it.
Foreign keys are enforced (``PRAGMA foreign_keys = ON``). Values are bound as SQLite
stores them (Decimal and dates as text, bool as 0/1) and normalised back to their kinds
on the way out, text dates included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from synchro.db import columnar
from synchro.db.base import Column, ForeignKey, Table, own_table
from synchro.db.binding import Binder, binder, blob_bytes
from synchro.db.column_kinds import sqlite_kind
from synchro.db.details import sqlite_details, with_details
from synchro.db.dialects import Dialect
from synchro.db.doing import act, failed
from synchro.db.generic import SqlAdapter
from synchro.db.lock_wait import STEP_S, patiently
from synchro.errors import DatabaseError, Say, sqlite_error
from synchro.i18n import render
from synchro.values import Kind

# SQLite's errors after which it may have ended the transaction, or that say its file
# cannot take the write: never a row's fault (``_ends_transaction``).
ENDS_TRANSACTION = frozenset(
    {"SQLITE_FULL", "SQLITE_IOERR", "SQLITE_NOMEM", "SQLITE_CORRUPT", "SQLITE_READONLY"}
)
_HINTS = {  # what SQLite says → what to do (``engine.db.hint.*``)
    "disk is full": "full",
    "database is locked": "locked",
    "unable to open": "open",
    "not a database": "not_sqlite",
    "disk i/o": "io",
}


def _cause(exc: BaseException) -> BaseException | None:
    return exc.__cause__


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.time) else value


def _iso_space(value: Any) -> Any:
    return value.isoformat(" ") if isinstance(value, dt.datetime) else _iso(value)


def _bool(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


# How stdlib sqlite3 gets each kind without its deprecated default adapters: dates as text
# (ISO, the form SQLite's date functions read), bool as 0/1. Numbers (int, decimal, float)
# go through ``synchro.db.binding`` (``_column_binder``): a decimal as the nearest double.
_BINDERS: dict[str, Callable[[Any], Any]] = {
    Kind.DATETIME: _iso_space,
    Kind.DATE: _iso_space,  # a datetime kept in a DATE column: written as SQLite writes it
    Kind.TIME: _iso,
    Kind.BOOL: _bool,
    Kind.BLOB: blob_bytes,
    Kind.INT: _bool,
}


class SqliteAdapter(SqlAdapter):
    """One SQLite database file."""

    dialect = "sqlite"
    _driver_errors = (sqlite3.Error,)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = os.path.abspath(path)
        self.sql = Dialect("sqlite", '"')
        self.described = (
            "engine.db.where.sqlite",
            {"version": sqlite3.sqlite_version, "path": self.path},
        )
        self.description = render(self.described, "fr")
        try:
            self._conn = sqlite3.connect(  # a lock waited for in steps: ``_run``
                self.path, isolation_level=None, timeout=STEP_S, check_same_thread=False
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise self._translate(exc, act("open")) from exc

    # -- driver hooks -----------------------------------------------------------------

    def _binder(self, kind: Kind) -> Callable[[Any], Any] | None:
        return _BINDERS.get(kind)

    def _column_binder(self, table: Table, column: Column) -> Binder | None:
        """Numbers as SQLite keeps them exactly, or refused (``synchro.db.binding``):
        NaN and -0.0 in a REAL column, a DECIMAL of more than 15 digits, an integer
        beyond 64 bits."""
        if column.kind in (Kind.FLOAT, Kind.DECIMAL, Kind.INT):
            return binder("sqlite", column.kind, column.type_name)
        return _BINDERS.get(column.kind)

    def _translate(self, exc: BaseException, doing: Say) -> DatabaseError:
        text = str(exc)
        hint = next((h for k, h in _HINTS.items() if k in text.lower()), None)
        return failed(self.where, doing, text, ("engine.db.hint." + hint, {}) if hint else None)

    def _ends_transaction(self, error: DatabaseError) -> bool:
        """SQLite ended the transaction (it does after a full disk, an I/O error, lack of
        memory: what follows its error would run outside of it), or said its file cannot
        be written: no row's fault."""
        return not self._conn.in_transaction or sqlite_error(error.__cause__) in ENDS_TRANSACTION

    def _in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)

    def gave_up_waiting(self, error: Exception) -> bool:
        return sqlite_error(error.__cause__) == "SQLITE_BUSY"  # another writer kept it

    def _run(self, sql: str, params: Sequence[Any], doing: Say) -> Any:
        """Another program's lock waited for ``lock_wait.WAIT_S`` as before, but in steps:
        a stop (``stopping``) ends the wait (``Cancelled``)."""
        run = super()._run
        return patiently(lambda: run(sql, params, doing), self.stopping, cause=_cause)

    def _begin(self) -> None:
        self._run("BEGIN IMMEDIATE", [], act("begin")).close()

    def _commit(self) -> None:
        self._run("COMMIT", [], act("commit")).close()

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._run("ROLLBACK", [], act("rollback")).close()

    def close(self) -> None:
        self._conn.close()

    # -- columnar reads (issue 13) -------------------------------------------------------

    def arrow_ready(self) -> bool:
        return columnar.available()

    def arrow_batches(self, table: Table, *, ordered: bool) -> Iterator[Any] | None:
        """Through ADBC on a read-only connection of its own, so never while this
        connection holds uncommitted writes the other would not see."""
        if self._conn.in_transaction:
            return None
        return columnar.batches(self.sql, self.path, table, ordered=ordered)

    # -- discovery --------------------------------------------------------------------

    def _pragma(self, sql: str) -> list[Any]:
        cursor = self._run(sql, [], act("schema"))
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _has_mark_table(self) -> bool:
        return has_mark_table(self._pragma)

    def tables(self) -> list[Table]:
        self._forget_types()
        return discover(self._pragma, self.sql.quote)

    def _read_deferred(self) -> list[Table]:
        return deferred_tables(self._pragma, self.sql.quote)


def has_mark_table(query: Callable[[str], list[Any]]) -> bool:
    """Whether the SQLite database holds ``MARK_TABLE`` (read through ``query``)."""
    names = query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return any(own_table(str(row[0])) for row in names)


def _deferred(made: str) -> bool:
    """Whether a ``CREATE TABLE`` statement declares a key checked at the commit."""
    return "INITIALLY DEFERRED" in " ".join(made.upper().split())


def deferred_tables(query: Callable[[str], list[Any]], quote: Callable[[str], str]) -> list[Table]:
    """The tables of an SQLite database with a foreign key checked at the commit
    (``db.deferred``), synchronised or not."""
    names = query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    made = [(str(n), str(sql or "")) for n, sql in names]
    return [_table(query, quote, n, sql) for n, sql in made if _deferred(sql)]


def discover(query: Callable[[str], list[Any]], quote: Callable[[str], str]) -> list[Table]:
    """Every user table of an SQLite database, read with PRAGMAs through ``query``.

    Shared by the stdlib adapter and the SQLite ODBC driver (whose catalog functions
    report a unique index as the primary key). Numbers are read with ``int()`` because
    the ODBC driver returns PRAGMA columns as text.
    """
    names = query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    )
    inner = _shadow_tables(query, [(str(n), str(sql or "")) for n, sql in names])
    tables = [
        _table(query, quote, str(row[0]), str(row[1] or ""))
        for row in names
        if not own_table(str(row[0])) and str(row[0]) not in inner
    ]
    return [_as_named(t, tables) for t in tables]


def _as_named(table: Table, tables: list[Table]) -> Table:
    """``table`` with each foreign key naming its parent and the parent's columns as they
    are named: SQLite keeps ``REFERENCES Clients(ID)`` as written, and finds ``clients``
    (``id``) whatever the case of its ASCII letters."""
    by_name = {_folded(t.name): t for t in tables}
    own = {_folded(c): c for c in table.column_names}
    keys = []
    for fk in table.foreign_keys:
        columns = tuple(own.get(_folded(c), c) for c in fk.columns)
        parent = by_name.get(_folded(fk.ref_table))
        if parent is None:
            keys.append(dataclasses.replace(fk, columns=columns))
            continue
        theirs = {_folded(c): c for c in parent.column_names}
        ref_columns = tuple(theirs.get(_folded(c), c) for c in fk.ref_columns)
        keys.append(
            dataclasses.replace(fk, columns=columns, ref_table=parent.name, ref_columns=ref_columns)
        )
    return dataclasses.replace(table, foreign_keys=tuple(keys))


def _folded(name: str) -> str:
    """A name as SQLite compares names: its ASCII letters in lower case only."""
    return "".join(c.lower() if c.isascii() else c for c in name)


def _shadow_tables(query: Callable[[str], list[Any]], names: list[tuple[str, str]]) -> set[str]:
    """The tables a virtual table (full-text search, R*Tree) keeps its data in: its own
    inner workings, written by it alone, never synchronised (the virtual table itself has
    no key: left out and named). ``PRAGMA table_list`` says so (SQLite 3.37); before it,
    the tables named after a virtual table (``docs_data`` of ``docs``)."""
    listed = query("PRAGMA table_list")
    if listed:
        return {str(row[1]) for row in listed if str(row[2]) == "shadow"}
    virtual = [n for n, sql in names if sql.lstrip().upper().startswith("CREATE VIRTUAL TABLE")]
    return {n for n, _sql in names for v in virtual if n.startswith(v + "_")}


def _primary(info: list[Any]) -> tuple[str, ...]:
    return tuple(str(r[1]) for r in sorted(info, key=lambda r: int(r[5])) if int(r[5]))


def _table(
    query: Callable[[str], list[Any]], quote: Callable[[str], str], name: str, made: str = ""
) -> Table:
    """The table ``name``; ``made``: its ``CREATE TABLE`` statement."""
    info = query(f"PRAGMA table_info({quote(name)})")
    columns = tuple(
        with_details(
            Column(str(col), sqlite_kind(decl or ""), decl or "", not int(notnull) and not int(pk)),
            sqlite_details(decl or "", sqlite_kind(decl or "")),
        )
        for _cid, col, decl, notnull, _default, pk in info
    )
    pk = _primary(info)
    uniques = _unique_indexes(query, quote, name)
    fks = _foreign_keys(query, quote, name)
    if _deferred(made):  # (taken for any of them)
        fks = tuple(dataclasses.replace(f, deferred=True) for f in fks)
    table = Table(name, columns, pk, "primary" if pk else "", fks, uniques=uniques)
    not_null = {c.name for c in columns if not c.nullable}
    keys = sorted((len(cols), cols) for cols in uniques if set(cols) <= not_null)
    if not pk and keys:  # the smallest unique index whose columns are all NOT NULL
        table = table.with_key(keys[0][1], "unique")
    return table


def _unique_indexes(
    query: Callable[[str], list[Any]], quote: Callable[[str], str], name: str
) -> tuple[tuple[str, ...], ...]:
    """The columns of each unique, non-partial index on columns (not expressions)."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for row in query(f"PRAGMA index_list({quote(name)})"):
        index, unique, partial = str(row[1]), int(row[2]), int(row[4])
        if not unique or partial:
            continue
        info = query(f"PRAGMA index_info({quote(index)})")
        cols = tuple(str(r[2]) for r in sorted(info, key=lambda r: int(r[0])) if r[2] is not None)
        if cols and len(cols) == len(info):
            found.append((index, cols))
    return tuple(cols for _index, cols in sorted(found))


def _foreign_keys(
    query: Callable[[str], list[Any]], quote: Callable[[str], str], name: str
) -> tuple[ForeignKey, ...]:
    groups: dict[int, list[Any]] = {}
    for row in query(f"PRAGMA foreign_key_list({quote(name)})"):
        groups.setdefault(int(row[0]), []).append(row)
    keys = []
    for _id, rows in sorted(groups.items()):
        rows.sort(key=lambda r: int(r[1]))
        ref_table = str(rows[0][2])
        ref_cols = tuple(r[4] for r in rows)
        if None in ref_cols:  # REFERENCES parent: the parent's primary key
            ref_cols = _primary(query(f"PRAGMA table_info({quote(ref_table)})"))
        keys.append(
            ForeignKey(tuple(str(r[3]) for r in rows), ref_table, tuple(map(str, ref_cols)))
        )
    return tuple(keys)
