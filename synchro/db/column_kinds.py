"""The kind of a column from what its database declares (SQLite affinity, ODBC metadata).

Pure functions of type names and codes, unit-tested without a connection; the adapters
(``sqlite.py``, ``odbc.py``) call them when they discover a table.
"""

from __future__ import annotations

from synchro.values import Kind

# ODBC SQL data type codes (sql.h / sqlext.h) mapped to kinds.
_ODBC_TYPES: dict[int, Kind] = {
    -7: Kind.BOOL,  # SQL_BIT
    -6: Kind.INT,  # SQL_TINYINT
    -5: Kind.INT,  # SQL_BIGINT
    4: Kind.INT,
    5: Kind.INT,
    2: Kind.DECIMAL,  # SQL_NUMERIC
    3: Kind.DECIMAL,  # SQL_DECIMAL
    6: Kind.FLOAT,
    7: Kind.FLOAT,
    8: Kind.FLOAT,
    1: Kind.TEXT,  # SQL_CHAR
    12: Kind.TEXT,
    -1: Kind.TEXT,
    -8: Kind.TEXT,  # SQL_WCHAR
    -9: Kind.TEXT,
    -10: Kind.TEXT,
    -11: Kind.TEXT,  # SQL_GUID
    9: Kind.DATE,  # SQL_DATE (ODBC 2) / SQL_DATETIME
    91: Kind.DATE,
    10: Kind.TIME,
    92: Kind.TIME,
    -154: Kind.TIME,  # SQL Server TIME
    11: Kind.DATETIME,
    93: Kind.DATETIME,
    -155: Kind.DATETIME,  # SQL Server DATETIMEOFFSET
    -2: Kind.BLOB,
    -3: Kind.BLOB,
    -4: Kind.BLOB,
}


def sqlite_kind(declared: str) -> Kind:
    """The kind of an SQLite column from its declared type (affinity rules, refined)."""
    t = declared.upper()
    if "BOOL" in t:
        return Kind.BOOL
    if "INT" in t:
        return Kind.INT
    if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
        return Kind.TEXT
    if "BLOB" in t or not t.strip():
        return Kind.BLOB
    if any(s in t for s in ("REAL", "FLOA", "DOUB")):
        return Kind.FLOAT
    if "DATETIME" in t or "TIMESTAMP" in t:
        return Kind.DATETIME
    if "DATE" in t:
        return Kind.DATE
    if "TIME" in t:
        return Kind.TIME
    return Kind.DECIMAL  # NUMERIC affinity: DECIMAL, NUMERIC, MONEY...


def odbc_kind(dialect: str, type_name: str, data_type: int, column_size: int | None) -> Kind:
    """The kind of a column from ODBC metadata (``cursor.columns`` row)."""
    if dialect == "sqlite":
        return sqlite_kind(type_name)
    t = type_name.lower()
    if dialect == "mysql" and t.startswith("tinyint") and (column_size == 1 or "(1)" in t):
        return Kind.BOOL
    if t in ("bool", "boolean", "yesno") or (t == "bit" and column_size in (None, 0, 1)):
        return Kind.BOOL
    if t in ("inet6", "inet4"):  # MariaDB's addresses: read and written as their text
        return Kind.TEXT
    if t in ("money", "smallmoney", "currency"):
        return Kind.DECIMAL
    if t in ("uuid", "uniqueidentifier"):  # MariaDB's UUID is reported as binary
        return Kind.UUID
    if t in ("json", "jsonb"):
        return Kind.JSON
    if t in ("bytea", "image", "longbinary") or t.endswith("blob"):
        return Kind.BLOB
    if t.startswith("timestamp") or t.startswith("datetime") or t == "smalldatetime":
        return Kind.DATETIME
    return _ODBC_TYPES.get(data_type, Kind.TEXT)
