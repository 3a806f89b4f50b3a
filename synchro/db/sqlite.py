"""The embedded default: an SQLite file through the standard library's ``sqlite3``.

No ODBC needed. The connection runs in autocommit mode (``isolation_level=None``) and
``atomic()`` issues an explicit ``BEGIN IMMEDIATE`` so that savepoints nest inside it.
Foreign keys are enforced (``PRAGMA foreign_keys = ON``). Values are bound as SQLite
stores them (Decimal and dates as text, bool as 0/1) and normalised back to their kinds
on the way out, text dates included.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from decimal import Decimal
from typing import Any

from synchro.db.base import Column, ForeignKey, Table
from synchro.db.dialects import Dialect, sqlite_kind
from synchro.db.generic import SqlAdapter
from synchro.errors import DatabaseError

_HINTS = {
    "database is locked": "un autre programme écrit dans la base ; réessayez plus tard",
    "unable to open": "vérifiez le chemin du fichier et les droits d'accès",
    "not a database": "ce fichier n'est pas une base SQLite",
    "disk i/o": "vérifiez le disque (place libre, erreurs matérielles)",
}


def bind_sqlite(kind: str, value: Any) -> Any:
    """A value as stdlib ``sqlite3`` binds it without deprecated default adapters."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


class SqliteAdapter(SqlAdapter):
    """One SQLite database file."""

    dialect = "sqlite"
    _driver_errors = (sqlite3.Error,)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = os.path.abspath(path)
        self.sql = Dialect("sqlite", '"')
        self.description = f"SQLite {sqlite3.sqlite_version} (fichier {self.path})"
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise self._translate(exc, "ouverture") from exc

    # -- driver hooks -----------------------------------------------------------------

    def _bind(self, kind: str, value: Any) -> Any:
        return bind_sqlite(kind, value)

    def _translate(self, exc: BaseException, doing: str) -> DatabaseError:
        text = str(exc)
        hint = next((h for k, h in _HINTS.items() if k in text.lower()), "")
        suffix = f" ({hint})" if hint else ""
        return DatabaseError(f"{self.description} : {doing} impossible : {text}{suffix}")

    def _begin(self) -> None:
        self._run("BEGIN IMMEDIATE", [], "début de transaction").close()

    def _commit(self) -> None:
        self._run("COMMIT", [], "validation de la transaction").close()

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._run("ROLLBACK", [], "annulation de la transaction").close()

    def close(self) -> None:
        self._conn.close()

    # -- discovery --------------------------------------------------------------------

    def _pragma(self, sql: str) -> list[Any]:
        cursor = self._run(sql, [], "lecture du schéma")
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def tables(self) -> list[Table]:
        names = self._pragma(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        return [self._table(name) for (name,) in names]

    def _table(self, name: str) -> Table:
        q = self.sql.quote(name)
        info = self._pragma(f"PRAGMA table_info({q})")
        columns = tuple(
            Column(col, sqlite_kind(decl or ""), decl or "", not notnull and not pk)
            for _cid, col, decl, notnull, _default, pk in info
        )
        pk = tuple(r[1] for r in sorted(info, key=lambda r: r[5]) if r[5])
        table = Table(name, columns, pk, "primary" if pk else "", self._foreign_keys(name))
        if not pk:
            unique = self._unique_key(name, columns)
            if unique:
                table = table.with_key(unique, "unique")
        return table

    def _unique_key(self, name: str, columns: tuple[Column, ...]) -> tuple[str, ...]:
        """The smallest unique, non-partial index whose columns are all NOT NULL."""
        not_null = {c.name for c in columns if not c.nullable}
        found: list[tuple[int, str, tuple[str, ...]]] = []
        for _seq, index, unique, _origin, partial in self._pragma(
            f"PRAGMA index_list({self.sql.quote(name)})"
        ):
            if not unique or partial:
                continue
            info = self._pragma(f"PRAGMA index_info({self.sql.quote(index)})")
            cols = tuple(col for _rank, _cid, col in sorted(info))
            if cols and None not in cols and set(cols) <= not_null:
                found.append((len(cols), index, cols))
        return min(found)[2] if found else ()

    def _foreign_keys(self, name: str) -> tuple[ForeignKey, ...]:
        groups: dict[int, list[Any]] = {}
        for row in self._pragma(f"PRAGMA foreign_key_list({self.sql.quote(name)})"):
            groups.setdefault(row[0], []).append(row)
        keys = []
        for _id, rows in sorted(groups.items()):
            rows.sort(key=lambda r: r[1])
            ref_table = rows[0][2]
            ref_cols = tuple(r[4] for r in rows)
            if None in ref_cols:  # REFERENCES parent: the parent's primary key
                info = self._pragma(f"PRAGMA table_info({self.sql.quote(ref_table)})")
                ref_cols = tuple(r[1] for r in sorted(info, key=lambda r: r[5]) if r[5])
            keys.append(ForeignKey(tuple(r[3] for r in rows), ref_table, ref_cols))
        return tuple(keys)
