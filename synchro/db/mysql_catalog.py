"""MariaDB/MySQL catalog rows read from ``information_schema``, shaped as ODBC returns them.

pyodbc hands table names to the ODBC catalog functions (``SQLColumnsW``,
``SQLPrimaryKeysW``...) as UTF-16, and MariaDB Connector/ODBC 3.1 converts UTF-16 wrongly
(see ``odbc_connect.narrow_utf8``): a table whose name holds a character whose UTF-16 low byte is
D8-DB (Ú, Ø, ヘ...) is looked up under a cut name, so its columns or key come back empty
and the table would be reported as having no key. For such names the adapter asks
``information_schema`` instead, with the name bound as UTF-8 like every other parameter;
these functions give the rows in the columns ODBC uses (only the fields discovery reads
are filled, the others are ``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from synchro.errors import Say

Query = Callable[[str, tuple[Any, ...]], list[Any]]

# information_schema DATA_TYPE -> the ODBC SQL type the driver reports.
_TYPES = {
    "tinyint": -6,
    "smallint": 5,
    "mediumint": 4,
    "int": 4,
    "integer": 4,
    "bigint": -5,
    "year": 5,
    "decimal": 3,
    "numeric": 2,
    "float": 7,
    "double": 8,
    "real": 8,
    "bit": -7,
    "char": -8,
    "varchar": -9,
    "enum": -8,
    "set": -8,
    "tinytext": -10,
    "text": -10,
    "mediumtext": -10,
    "longtext": -10,
    "json": -10,
    "date": 91,
    "time": 92,
    "datetime": 93,
    "timestamp": 93,
    "binary": -2,
    "varbinary": -3,
    "tinyblob": -4,
    "blob": -4,
    "mediumblob": -4,
    "longblob": -4,
    "uuid": -4,
}


def lead_units(text: str) -> int:
    """How many UTF-16 code units of ``text`` have a low byte D8-DB: MariaDB Connector/ODBC
    3.1 takes each for the first half of a surrogate pair (Ø Ù Ú Û, ט, ヘ...)."""
    if text.isascii():
        return 0
    data = text.encode("utf-16-le", "surrogatepass")
    return sum(1 for b in data[0::2] if 0xD8 <= b <= 0xDB)


def cut_by_driver(name: str) -> bool:
    """True when the driver's UTF-16 conversion cuts ``name`` (``lead_units``)."""
    return lead_units(name) > 0


# Statement text reaches the driver as UTF-16 whatever pyodbc is told (unixODBC converts the
# narrow calls of a Unicode connection), and the driver measures it with the same fault:
# one code unit more per such character, read past the end of the text. Measured
# (Connector/ODBC 3.1.15): one such character per statement never failed (the one unit
# read is the zero unixODBC ends its converted text with; pyodbc's own wide buffer has none,
# and a wide statement holding one reached the server with junk: « near '甀' »); two failed
# 2 times in 960, three 5, six 13 and then the process aborted ("corrupted size vs.
# prev_size"). A table or column name is used in many statements, so it may hold none,
# apart from a single one in the table's name.
STATEMENT_LIMIT = 1


def unsafe_names(
    table: str, columns: Sequence[str], *, altered: bool, miscounts: bool
) -> Say | None:
    """Which name of this table the driver cannot be given ("" when none can be):
    ``altered``, the connection alters statement text that is not ASCII (any narrow ODBC
    connection: ``odbc_connect.statement_text_fault``); ``miscounts``, the driver reads
    past the end of text holding ``lead_units`` (MariaDB Connector/ODBC)."""
    if altered:
        bad = [c for c in columns if not c.isascii()]
        if bad or not table.isascii():
            return _column_named(bad[0]) if bad else TABLE_NAME
        return None
    if not miscounts:
        return None
    bad = [c for c in columns if lead_units(c)]
    if bad:
        return _column_named(bad[0])
    return TABLE_NAME if lead_units(table) > STATEMENT_LIMIT else None


TABLE_NAME: Say = ("engine.err.unusable.table_name", {})


def _column_named(name: str) -> Say:
    return ("engine.err.unusable.column", {"column": name})


def unsafe_statement(sql: str, *, altered: bool, miscounts: bool) -> bool:
    """True when ``sql`` must not be handed to the driver (``unsafe_names``)."""
    if sql.isascii():
        return False
    return altered or (miscounts and lead_units(sql) > STATEMENT_LIMIT)


def catalog_rows(query: Query, method: str, name: str) -> list[tuple[Any, ...]]:
    """The rows of ODBC catalog function ``method`` for table ``name`` of the current
    database (``columns``, ``primaryKeys``, ``statistics`` of unique indexes,
    ``foreignKeys`` of this table); [] for another method."""
    where = " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
    if method == "columns":
        rows = query(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH,"
            " NUMERIC_PRECISION, DATETIME_PRECISION, NUMERIC_SCALE, IS_NULLABLE,"
            " ORDINAL_POSITION FROM information_schema.COLUMNS" + where,
            (name,),
        )
        return [_column(r) for r in rows]
    if method == "primaryKeys":
        rows = query(
            "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION"
            " FROM information_schema.KEY_COLUMN_USAGE"
            + where
            + " AND CONSTRAINT_NAME = 'PRIMARY'",
            (name,),
        )
        return [(None, None, r[0], r[1], int(r[2]), "PRIMARY") for r in rows]
    if method == "statistics":
        rows = query(
            "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME"
            " FROM information_schema.STATISTICS" + where + " AND NON_UNIQUE = 0",
            (name,),
        )
        return [(None, None, r[0], 0, None, r[1], 3, int(r[2]), r[3]) for r in rows]
    if method == "foreignKeys":
        rows = query(
            "SELECT REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME, TABLE_NAME, COLUMN_NAME,"
            " ORDINAL_POSITION, CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE"
            + where
            + " AND REFERENCED_TABLE_NAME IS NOT NULL",
            (name,),
        )
        return [
            (None, None, r[0], r[1], None, None, r[2], r[3], int(r[4]), None, None, r[5], None)
            for r in rows
        ]
    return []


def _column(r: Any) -> tuple[Any, ...]:
    table, column, data_type, chars, precision, fraction, scale, nullable, position = r
    base = str(data_type).lower()
    size = chars if chars is not None else precision if precision is not None else fraction
    size = int(size) if size is not None and int(size) < 2**31 else None
    return (
        None,
        None,
        table,
        column,
        _TYPES.get(base, -10),
        base.upper(),
        size,
        None,
        int(scale) if scale is not None else None,
        None,
        1 if str(nullable).upper() == "YES" else 0,
        None,
        None,
        None,
        None,
        None,
        int(position),
        str(nullable).upper(),
    )
