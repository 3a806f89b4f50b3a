"""Discovering the tables of an ODBC source: the ODBC catalog functions (``columns``,
``primaryKeys``, ``statistics``, ``foreignKeys``) read into ``Table``s, with the names a
driver cannot be handed marked unusable.

SQLite goes through PRAGMAs (its driver reports a unique index as the primary key),
MariaDB's ``tinyint(1)`` is read from ``information_schema`` to be a bool. ``OdbcDiscovery``
is a part of ``odbc.OdbcAdapter``: its methods use the adapter's connection, dialect and
what it learnt of the driver when the connection opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from synchro.db.base import MARK_TABLE, Column, Table, own_table
from synchro.db.column_kinds import odbc_kind
from synchro.db.details import odbc_details, with_details
from synchro.db.doing import act
from synchro.db.generic import SqlAdapter
from synchro.db.mysql_catalog import catalog_rows, cut_by_driver, unsafe_names
from synchro.db.odbc_connect import not_offered, text_fault_say
from synchro.db.odbc_schema import column_details, foreign_keys, unique_indexes
from synchro.db.sqlite import deferred_tables, has_mark_table
from synchro.db.sqlite import discover as discover_sqlite
from synchro.errors import Say


class OdbcDiscovery(SqlAdapter):
    """The tables of an ODBC source, for ``OdbcAdapter``."""

    _database: str  # SQL_DATABASE_NAME (the catalog of MariaDB's lookups)
    _schema: str | None  # the session's default schema (PostgreSQL, SQL Server)
    _utf16_fault: bool  # MariaDB Connector/ODBC (``odbc_connect``, ``mysql_catalog``)
    _text_fault: str  # what narrow statement text not in ASCII becomes

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        cursor = self._run(sql, params, act("schema"))
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _ready(self) -> None:
        """Before the connection is used (``OdbcAdapter``: a new one after a loss)."""

    def _catalog(self, method: str, **kwargs: Any) -> list[Any]:
        """Rows of an ODBC catalog function; [] when the driver does not offer it
        (``odbc_connect.not_offered``), a ``DatabaseError`` on any other error.

        MariaDB: a table name the driver would cut (``mysql_catalog.cut_by_driver``) is
        looked up in ``information_schema`` instead, with rows of the same shape.
        """
        name = kwargs.get("table", kwargs.get("foreignTable"))
        if self.dialect == "mysql" and isinstance(name, str) and cut_by_driver(name):
            return catalog_rows(self._query, method, name)
        self._ready()
        try:
            cursor = self._conn.cursor()
        except self._driver_errors as exc:
            raise self._translate(exc, act("schema")) from exc
        try:
            return list(getattr(cursor, method)(**kwargs).fetchall())
        except self._driver_errors as exc:
            # Only a function the driver lacks is « nothing »: "no table" or "no key" from
            # a lost session (MariaDB's driver says 08S01, or HY000 « Write error: Broken
            # pipe (5014) », 2 times in 30) or from a query the server interrupted (its
            # max_statement_time: HY018) would have had a run capture nothing, or a
            # table's rows with no key, and say OK.
            if not_offered(exc):
                return []
            raise self._translate(exc, act("schema")) from exc
        finally:
            with contextlib.suppress(*self._driver_errors):
                cursor.close()

    def _where(self) -> dict[str, Any]:
        if self.dialect == "mysql":
            return {"catalog": self._database}
        return {"schema": self._schema} if self._schema else {}

    def _has_mark_table(self) -> bool:
        if self.dialect == "sqlite":
            return has_mark_table(lambda sql: self._query(sql))
        rows = self._catalog("tables", table=MARK_TABLE, tableType="TABLE", **self._where())
        return any(own_table(str(r[2])) for r in rows)

    def tables(self) -> list[Table]:
        self._forget_types()
        if self.dialect == "sqlite":
            return discover_sqlite(lambda sql: self._query(sql), self.sql.quote)
        rows = self._catalog("tables", tableType="TABLE", **self._where())
        found = {str(r[2]) for r in rows} - self._partitions()
        names = sorted(n for n in found if not n.startswith("MSys") and not own_table(n))
        heirs = self._heirs()
        return [self._table(name, heirs.get(name, [])) for name in names]

    def _read_deferred(self) -> list[Table]:
        if self.dialect != "sqlite":
            return []  # PostgreSQL checks them at each statement (``SET CONSTRAINTS``)
        return deferred_tables(lambda sql: self._query(sql), self.sql.quote)

    def _partitions(self) -> set[str]:
        """PostgreSQL's partitions: their rows are the partitioned table's (read and
        written through it, each node partitioning its own way), never sent twice."""
        if self.dialect != "postgresql":
            return set()
        rows = self._query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relispartition"
        )
        return {str(r[0]) for r in rows}

    def _heirs(self) -> dict[str, list[str]]:
        """PostgreSQL tables that others inherit from (not partitioned ones), and those
        others: a read of the table returns their rows too, a delete deletes them."""
        if self.dialect != "postgresql":
            return {}
        rows = self._query(
            "SELECT p.relname, c.relname FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " JOIN pg_namespace n ON n.oid = p.relnamespace"
            " WHERE n.nspname = current_schema() AND NOT c.relispartition"
        )
        heirs: dict[str, list[str]] = {}
        for parent, child in rows:
            heirs.setdefault(str(parent), []).append(str(child))
        return heirs

    def _table(self, name: str, heirs: list[str]) -> Table:
        table = self._table_found(name)
        if heirs:
            inherited: Say = ("engine.err.unusable.inherited", {"tables": ", ".join(sorted(heirs))})
            return dataclasses.replace(table, unusable=inherited)
        altered, miscounts = bool(self._text_fault), self._utf16_fault
        if not (altered or miscounts):
            return table
        where = unsafe_names(name, table.column_names, altered=altered, miscounts=miscounts)
        if where is None:
            return table
        why = {"name": [where], "fault": [self._name_fault()]}
        return dataclasses.replace(table, unusable=("engine.err.unusable.names", why))

    def _name_fault(self) -> Say:
        """Why names of some characters cannot be handed to this driver."""
        if self._text_fault:
            fault = text_fault_say(self._text_fault)
            return ("engine.err.text_altered", {"fault": [fault]})
        return ("engine.err.utf16_fault", {})

    def _table_found(self, name: str) -> Table:
        where = self._where()
        rows = [r for r in self._catalog("columns", table=name, **where) if r[2] == name]
        rows.sort(key=lambda r: int(r[16]))  # ORDINAL_POSITION
        details = column_details(self.dialect, self._query, name)
        mysql_types = {c: d.pop("column_type") for c, d in details.items() if "column_type" in d}
        # A column the server computes is no data of its own: never read, sent or written
        # (each node computes it, as SQLite's table_info leaves it out).
        computed = {c for c, d in details.items() if d.pop("computed", False)}
        rows = [r for r in rows if str(r[3]) not in computed]
        columns = tuple(
            with_details(
                Column(
                    str(r[3]),
                    odbc_kind(self.dialect, mysql_types.get(r[3], str(r[5])), int(r[4]), r[6]),
                    str(r[5]),
                    r[10] != 0,  # NULLABLE: 0 = SQL_NO_NULLS
                ),
                details.get(str(r[3]), {}) if details else odbc_details(int(r[4]), r[6], r[8]),
            )
            for r in rows
        )
        indexes = unique_indexes(self._catalog, name, where)
        pk_rows = [r for r in self._catalog("primaryKeys", table=name, **where) if r[2] == name]
        pk = tuple(str(r[3]) for r in sorted(pk_rows, key=lambda r: int(r[4])))
        if self.dialect == "mysql" and "PRIMARY" not in indexes:
            pk = ()  # MariaDB reports its first UNIQUE NOT NULL index as PRIMARY
        fks = tuple(
            f
            for f in foreign_keys(self.dialect, self._query, self._catalog, name, where)
            if not computed & {*f.columns}
        )
        if computed & set(pk):
            column = min(computed & set(pk))
            why = ("engine.err.unusable.computed_key", {"column": column})
            return Table(name, columns, (), "", fks, unusable=why)
        indexes = {i: cols for i, cols in indexes.items() if not computed & set(cols)}
        uniques = tuple(indexes[i] for i in sorted(indexes))
        if pk:
            return Table(name, columns, pk, "primary", fks, uniques=uniques)
        not_null = {c.name for c in columns if not c.nullable}
        candidates = sorted(
            (len(cols), index, cols) for index, cols in indexes.items() if set(cols) <= not_null
        )
        if not candidates:
            return Table(name, columns, (), "", fks, uniques=uniques)
        _n, index, key = candidates[0]
        source = "primary" if index.lower() in ("primarykey", "primary") else "unique"
        return Table(name, columns, key, source, fks, uniques=uniques)
