"""SQL text for each database family, as pure functions of names and counts.

A ``Dialect`` knows how to quote identifiers, how many parameters one statement may bind,
and how to write the handful of statements the adapters need: key-ordered scan (binary
order, so it equals Python's tuple order of the normalised key values), fetch and delete by
keys (here), multi-row upsert, savepoints (``dialect_writes``). It never touches a
connection, so the SQL of databases that cannot run here (SQL Server, MS Access) is
unit-tested as strings.

Families: ``sqlite``, ``postgresql``, ``mysql`` (MariaDB and MySQL), ``mssql``, ``access``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from synchro.db.base import Column, Table
from synchro.db.dialect_writes import WriteSql
from synchro.db.pg_keys import array_types, arrays_condition, values_condition
from synchro.db.tagged import tagged, untagged
from synchro.values import Kind
from synchro.values.convert import single_read_back

DIALECTS = ("sqlite", "postgresql", "mysql", "mssql", "access")


def detect_dialect(dbms_name: str) -> str:
    """The family of a database from ODBC ``SQL_DBMS_NAME`` (``""`` when unknown)."""
    name = dbms_name.lower()
    for needle, family in (
        ("sqlite", "sqlite"),
        ("postgres", "postgresql"),
        ("mariadb", "mysql"),
        ("mysql", "mysql"),
        ("sql server", "mssql"),
        ("access", "access"),
        ("ace", "access"),
    ):
        if needle in name:
            return family
    return ""


HEXED = (Kind.TEXT, Kind.JSON)  # the kinds a ``raw_text`` read gives as hex text


@dataclass(frozen=True)
class Dialect(WriteSql):
    """SQL writer for one family. ``quote_char`` as ``SQL_IDENTIFIER_QUOTE_CHAR`` gives it."""

    name: str
    quote_char: str = '"'
    # The SQLite ODBC driver changes values it reads (REAL with 15 digits, 4.5 in an INTEGER
    # column as 4, a text there as NULL, a blob in a TEXT column as "X'FF00'"...): such a
    # driver gets every column as text tagged with the value's storage class (``db.tagged``).
    tagged_values: bool = False

    # -- reading ----------------------------------------------------------------------

    def _order_term(self, expr: str, kind: Kind) -> str:
        """``expr`` (a quoted column or ``?``) as it sorts in code point order."""
        if kind == Kind.UUID and self.name == "mysql":  # MariaDB sorts UUIDs by swapped parts
            return f"CAST(CONVERT({expr} USING utf8mb4) AS BINARY)"
        if kind != Kind.TEXT:
            return expr
        if self.name == "postgresql":
            return f'{expr} COLLATE "C"'
        if self.name == "mysql":  # bytes of UTF-8 whatever the column's character set
            return f"CAST(CONVERT({expr} USING utf8mb4) AS BINARY)"
        if self.name == "mssql":
            return f"{expr} COLLATE Latin1_General_BIN2"
        if self.name == "sqlite":
            return f"{expr} COLLATE BINARY"
        return expr

    @property
    def page_rows(self) -> int:
        """Rows per keyset page for scans, 0 for one query.

        MariaDB Connector/ODBC before 3.1.17 keeps a whole result in client memory, so
        scans there read the table in key-ordered pages of this many rows.
        """
        return 50_000 if self.name == "mysql" else 0

    # -- reading ----------------------------------------------------------------------

    def select(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        ordered: bool,
        modified_column: str | None = None,
        after_key: bool = False,
        limit: int = 0,
    ) -> str:
        """Scan ``columns``, optionally by key.

        Parameters in order: the lower bound of ``modified_column`` (``>= ?``) if given,
        then with ``after_key`` the values ``after_key_params`` lists (keys strictly after
        a given key, in scan order); ``limit`` caps the number of rows.
        """
        sql = f"SELECT {self._read_cols(table, columns)} FROM {self.quote(table.name)}"
        where = [f"{self.quote(modified_column)} >= ?"] if modified_column else []
        if after_key:
            where.append(f"({self.after_key(table)})")
        if where:
            sql += " WHERE " + " AND ".join(where)
        if (ordered or after_key or limit) and table.key:
            sql += self.key_order(table)
        if limit:
            fetch = f" OFFSET 0 ROWS FETCH NEXT {int(limit)} ROWS ONLY"
            sql += fetch if self.name == "mssql" else f" LIMIT {int(limit)}"
        return sql

    def key_order(self, table: Table) -> str:
        """`` ORDER BY`` the key, in code point order (the snapshot's order)."""
        terms = (
            self._order_term(self.quote(k), kind)
            for k, kind in zip(table.key, table.key_kinds, strict=True)
        )
        return " ORDER BY " + ", ".join(terms)

    def after_key(self, table: Table, marks: Sequence[str] = ()) -> str:
        """``k1 > ? OR (k1 = ? AND k2 > ?) OR ...``: ranges every optimiser understands.
        ``marks``: the parameter of each key column (``?`` when not given; a reader whose
        parameters are all text casts them, e.g. ``CAST(? AS SIGNED)``)."""
        marks = marks or ["?"] * len(table.key)
        terms = [
            (self._order_term(self.quote(k), kind), self._order_term(mark, kind))
            for k, kind, mark in zip(table.key, table.key_kinds, marks, strict=True)
        ]
        ors = []
        for i in range(len(terms)):
            parts = [f"{col} = {mark}" for col, mark in terms[:i]]
            parts.append(f"{terms[i][0]} > {terms[i][1]}")
            ors.append("(" + " AND ".join(parts) + ")")
        return " OR ".join(ors)

    @staticmethod
    def after_key_params(key: Sequence[object]) -> list[object]:
        """The parameters of the ``after_key`` condition for the last key read."""
        return [key[j] for i in range(len(key)) for j in range(i + 1)]

    def keys_condition(self, key: Sequence[str], nkeys: int) -> str:
        """``WHERE`` text matching ``nkeys`` keys (parameters: keys flattened in order)."""
        if len(key) == 1:
            marks = ", ".join("?" * nkeys)
            return f"{self.quote(key[0])} IN ({marks})"
        if self.row_values:
            one = "(" + ", ".join("?" * len(key)) + ")"
            return f"({self._cols(key)}) IN ({', '.join([one] * nkeys)})"
        one = "(" + " AND ".join(f"{self.quote(k)} = ?" for k in key) + ")"
        return " OR ".join([one] * nkeys)

    def key_array_types(self, table: Table) -> tuple[str, ...] | None:
        """PostgreSQL: the types a batch of ``table``'s keys is sent as, one array per key
        column (``db.pg_keys``); None: one parameter per key value."""
        return array_types(table) if self.name == "postgresql" else None

    def table_keys_condition(
        self, table: Table, nkeys: int, arrays: Sequence[str] | None = None
    ) -> str:
        """``keys_condition`` for ``table``'s key; on PostgreSQL a key of several columns
        as a typed list, or as one array per key column of the types ``arrays``
        (``key_array_types``): ``db.pg_keys``."""
        key = table.key
        if arrays:
            return arrays_condition(self._cols(key), arrays)
        if self.name == "postgresql" and len(key) > 1 and nkeys > 1:
            listed = values_condition(self._cols(key), table, nkeys)
            if listed:
                return listed
        return self.keys_condition(key, nkeys)

    def fetch(
        self,
        table: Table,
        nkeys: int,
        *,
        raw_text: bool = False,
        arrays: Sequence[str] | None = None,
        lock: bool = False,
    ) -> str:
        """Rows by key; ``raw_text``: the columns ``hexed_columns`` names as hex text;
        ``arrays``: see ``table_keys_condition``; ``lock``: the rows locked until the
        transaction ends (``locking``)."""
        cond = self.table_keys_condition(table, nkeys, arrays)
        cols = self._read_cols(table, table.column_names, raw_text=raw_text)
        hint, suffix = self.locking() if lock else ("", "")
        return f"SELECT {cols} FROM {self.quote(table.name)}{hint} WHERE {cond}{suffix}"

    def locking(self) -> tuple[str, str]:
        """What a read adds to lock the rows it reads until its transaction ends (a table
        hint, a suffix): another program's write of one of them then waits for the
        transaction, and one committed before is what the read returns (PostgreSQL's
        ``FOR UPDATE`` reads the latest committed version, as MariaDB's does; both lock
        only the rows found, MariaDB's transactions running in READ COMMITTED as
        PostgreSQL's: ``odbc._read_committed``). SQLite's ``BEGIN IMMEDIATE`` already
        keeps every other writer out; Access has no such read."""
        if self.name in ("postgresql", "mysql"):
            return "", " FOR UPDATE"
        if self.name == "mssql":
            return " WITH (UPDLOCK, ROWLOCK)", ""
        return "", ""

    def hexed_columns(self, table: Table) -> tuple[int, ...]:
        """Positions of the columns a ``raw_text`` fetch reads as the hex of their UTF-8
        bytes: a second path past the driver's character conversion (for verification)."""
        if self.name not in ("sqlite", "postgresql", "mysql"):
            return ()
        return tuple(i for i, c in enumerate(table.columns) if c.kind in HEXED)

    def read_fixes(
        self, table: Table, names: Sequence[str], *, raw_text: bool = False
    ) -> dict[int, Callable[[Any], Any]]:
        """What is done to the value a driver gives for some of ``names`` (by position),
        before it is normalised to its kind:

        - 4-byte float columns (PostgreSQL ``real``, MariaDB ``FLOAT``): read as the
          shortest text of the stored float, as psqlODBC gives it (MariaDB prints 6 digits:
          it is read as a double and shortened here);
        - with ``tagged_values`` (SQLite ODBC) every column ``read_term`` reads as tagged
          text (not text read as hex, ``raw_text``): the value stdlib ``sqlite3`` gives
          (``db.tagged``).
        """
        singles = {"postgresql": ("float4", "real"), "mysql": ("float",)}.get(self.name, ())
        columns = {c.name: c for c in table.columns}
        fixes: dict[int, Callable[[Any], Any]] = {}
        for i, n in enumerate(names):
            column = columns[n]
            if column.kind == Kind.FLOAT and column.type_name.lower() in singles:
                fixes[i] = _single
            elif self.tagged_values and not (raw_text and column.kind in HEXED):
                fixes[i] = untagged
        return fixes

    def _read_cols(self, table: Table, names: Sequence[str], *, raw_text: bool = False) -> str:
        columns = {c.name: c for c in table.columns}
        terms = [self.read_term(columns[n], raw_text=raw_text) for n in names]
        if self.name != "sqlite" or all(t.isascii() for t in terms):
            return ", ".join(terms)
        # The SQLite ODBC driver gives a result column's name with its length in UTF-8
        # bytes: a name that is not ASCII comes back with what follows it in memory, which
        # now and then is no UTF-16 and makes pyodbc fail the read. Each column is named in
        # ASCII, with a prefix no column of the table starts with (``ORDER BY`` and
        # ``WHERE`` name the table's columns, which an output name must not shadow).
        taken = [c.name.lower() for c in table.columns]
        prefix = "synchro_c"
        while any(name.startswith(prefix) for name in taken):
            prefix = "_" + prefix
        return ", ".join(f"{t} AS {self.quote(f'{prefix}{i}')}" for i, t in enumerate(terms))

    def read_term(self, column: Column, *, raw_text: bool = False) -> str:
        """How one column is read so that its value comes back exactly.

        - with ``tagged_values`` (SQLite ODBC) every column as text tagged with each
          value's storage class, REAL with 20 digits (``db.tagged``), except text read as hex;
        - MariaDB TIME, DATE and DATETIME as text (the driver drops the fractional seconds
          of a TIME and cannot convert a zero date such as ``0000-00-00``: the value then
          stays text and cannot travel, instead of stopping the whole read);
        - PostgreSQL DATE, TIME[TZ] and TIMESTAMP[TZ] as ISO text: the driver drops the
          offset of a timestamptz and turns ``infinity`` into today's date or 9999-12-31
          and a BC date into an AD one, and a TIME of ``24:00:00`` stopped the whole read
          (as text these values stay what they are);
        - PostgreSQL MONEY as numeric (the driver reads it into a double);
        - with ``raw_text``, text as the hex of its UTF-8 bytes (see ``hexed_columns``).
        """
        col = self.quote(column.name)
        kind = column.kind
        hexed = self.name in ("sqlite", "postgresql", "mysql")
        if raw_text and kind in HEXED and hexed:
            # PostgreSQL: the text of a value is its type's output, as the driver reads it,
            # but CAST of an inet or cidr adds its /32 or /128 (format('%s') does not)
            text = f"CAST({col} AS text)"
            if column.type_name.lower() in ("inet", "cidr"):
                text = f"CASE WHEN {col} IS NULL THEN NULL ELSE format('%s', {col}) END"
            return {
                "sqlite": f"CASE WHEN {col} IS NULL THEN NULL ELSE hex(CAST({col} AS BLOB)) END",
                "postgresql": f"encode(convert_to({text}, 'UTF8'), 'hex')",
                "mysql": f"HEX(CONVERT({col} USING utf8mb4))",
            }[self.name]
        if self.tagged_values:
            return tagged(col)
        if self.name == "mysql" and kind == Kind.FLOAT and column.type_name.lower() == "float":
            return f"CAST({col} AS DOUBLE)"  # MariaDB prints a FLOAT with 6 digits
        if self.name == "mysql" and kind in (Kind.TIME, Kind.DATE, Kind.DATETIME):
            return f"CAST({col} AS CHAR)"
        if self.name == "postgresql" and kind in (Kind.DATE, Kind.DATETIME, Kind.TIME):
            return f"CAST({col} AS text)"
        if self.name == "postgresql" and column.type_name.lower() == "money":
            return f"CAST({col} AS numeric)"  # the driver hands a double: 17 digits lost
        return col

    def count(self, table: Table) -> str:
        return f"SELECT COUNT(*) FROM {self.quote(table.name)}"

    # -- writing ----------------------------------------------------------------------

    def delete(self, table: Table, nkeys: int, arrays: Sequence[str] | None = None) -> str:
        where = self.table_keys_condition(table, nkeys, arrays)
        return f"DELETE FROM {self.quote(table.name)} WHERE {where}"


def _single(value: Any) -> Any:
    return single_read_back(value) if isinstance(value, float) else value
