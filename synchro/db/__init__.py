"""Database access: ``open_database(connection)`` gives an ``Adapter``.

A connection string that names an ODBC source (``DSN=``, ``DRIVER=``, ``FILEDSN=``, or any
``key=value;...`` text) opens through pyodbc; anything else is the path of an SQLite file,
opened with the standard library (the embedded default, no ODBC needed).
"""

from __future__ import annotations

from collections.abc import Callable

from synchro.db.base import Adapter, Column, ForeignKey, Key, Row, Table

__all__ = ["Adapter", "Column", "ForeignKey", "Key", "Row", "Table", "is_odbc", "open_database"]

_ODBC_PREFIXES = ("dsn=", "driver=", "filedsn=")


def is_odbc(connection: str) -> bool:
    """True when ``connection`` is an ODBC connection string or DSN, not a file path."""
    text = connection.strip().lower()
    return text.startswith(_ODBC_PREFIXES) or ("=" in text and ";" in text)


def open_database(connection: str, stopping: Callable[[], bool] | None = None) -> Adapter:
    """Open the user's database. Raises ``synchro.errors.DatabaseError`` when it cannot.
    ``stopping``: the adapter's (``Adapter.stopping``), set before it connects, so that
    a stop ends an ODBC connection's opening too (``Cancelled``)."""
    if is_odbc(connection):
        from synchro.db.odbc import OdbcAdapter  # imports pyodbc: only when ODBC is used

        return OdbcAdapter(connection, stopping)
    from synchro.db.sqlite import SqliteAdapter

    adapter = SqliteAdapter(connection)
    adapter.stopping = stopping
    return adapter
