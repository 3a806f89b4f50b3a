"""Any ODBC source through pyodbc (being written; SQLite files work through synchro.db.sqlite)."""

from __future__ import annotations

from synchro.db.base import Adapter
from synchro.errors import DatabaseError


def OdbcAdapter(connection: str) -> Adapter:  # noqa: N802 - replaced by the class soon
    raise DatabaseError("ODBC adapter not available yet")
