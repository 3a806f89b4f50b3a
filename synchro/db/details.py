"""What a column can hold, read from what each database says about its type.

Discovery (``odbc.py``, ``sqlite.py``) adds these details to each ``Column``: text length in
characters, decimal precision and scale, bytes of an integer or float, unsigned, digits of
fractional seconds, the years a date accepts, the character set. The pre-flight check
(``synchro.engine.preflight``) compares them between the Siège and an establishment;
packages and ``schemas.json`` carry them as JSON (``to_json`` / ``from_json``).

Pure functions of the type names and catalog values: no connection here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from synchro.db.base import Column
from synchro.values import Kind

Details = dict[str, Any]

# Bytes per character at most, for limits MariaDB counts in bytes (TEXT, BLOB).
_MB_MAX = {"latin1": 1, "ascii": 1, "ucs2": 2, "utf8": 3, "utf8mb3": 3, "utf16": 4}
_MYSQL_INT = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
_MYSQL_TEXT = {"tinytext": 255, "text": 65535, "mediumtext": 16777215, "longtext": 4294967295}
_MYSQL_BLOB = {"tinyblob": 255, "blob": 65535, "mediumblob": 16777215, "longblob": 4294967295}
MYSQL_TIMESTAMP_YEARS = (1970, 2038)  # TIMESTAMP: 1970-01-01 to 2038-01-19 UTC
SQLITE_DIGITS = 15  # NUMERIC affinity keeps a decimal as a double: 15 digits exactly
_PG_INT = {"smallint": 2, "integer": 4, "bigint": 8}
_ARGS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
_FIELDS = ("length", "precision", "scale", "width", "fraction")


def _args(type_name: str) -> tuple[int | None, int | None]:
    m = _ARGS.search(type_name)
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None


def full_unicode(charset: str) -> bool:
    """True when a character set stores every Unicode character (4-byte UTF-8 included)."""
    c = charset.lower().replace("-", "")
    return not c or c.startswith(("utf8mb4", "utf16", "utf32")) or c in ("utf8", "unicode")


def mysql_details(column_type: str, charset: str | None, dialect_utf8: str = "utf8mb3") -> Details:
    """MariaDB/MySQL ``information_schema.COLUMNS.COLUMN_TYPE`` (+ ``CHARACTER_SET_NAME``).

    MariaDB's ``utf8`` is ``utf8mb3`` (3 bytes at most: no emoji): it is named so here.
    """
    t = column_type.lower().strip()
    base = t.split("(")[0].split()[0] if t else ""
    n, s = _args(t)
    cs = (charset or "").lower()
    cs = dialect_utf8 if cs == "utf8" else cs
    d: Details = {}
    if base in _MYSQL_INT:
        d.update(width=_MYSQL_INT[base], unsigned="unsigned" in t)
    elif base in ("decimal", "numeric", "dec", "fixed"):
        d.update(precision=n or 10, scale=s or 0)
    elif base in ("float", "double", "real"):
        d.update(width=4 if base == "float" and (n is None or n <= 24) else 8)
    elif base in ("varchar", "char"):
        d.update(length=n, charset=cs)
    elif base in _MYSQL_TEXT or base == "json":
        d.update(length=_MYSQL_TEXT.get(base, _MYSQL_TEXT["longtext"]) // _MB_MAX.get(cs, 4))
        d.update(charset=cs)
    elif base in _MYSQL_BLOB:
        d.update(length=_MYSQL_BLOB[base])
    elif base in ("varbinary", "binary"):
        d.update(length=n)
    elif base == "timestamp":
        d.update(years=MYSQL_TIMESTAMP_YEARS, fraction=n or 0, zone=False)
    elif base in ("datetime", "time"):  # DATE/DATETIME store years 1-9999 (measured)
        d.update(fraction=n or 0, zone=False)
    elif base == "year":
        d.update(width=1, unsigned=True)
    return d


def postgresql_details(
    data_type: str,
    char_length: int | None,
    num_precision: int | None,
    num_scale: int | None,
    fraction: int | None,
    encoding: str,
) -> Details:
    """PostgreSQL ``information_schema.columns`` values and the database's encoding."""
    t = data_type.lower()
    cs = "" if encoding.upper() in ("UTF8", "UTF-8", "") else encoding.lower()
    d: Details = {}
    if t in _PG_INT:
        d.update(width=_PG_INT[t])
    elif t == "numeric":
        d.update(precision=num_precision, scale=num_scale if num_precision else None)
    elif t == "real":
        d.update(width=4)
    elif t == "double precision":
        d.update(width=8)
    elif t in ("character varying", "character", "text"):
        d.update(length=char_length, charset=cs)
    elif t.startswith(("timestamp", "time")):
        d.update(fraction=fraction, zone=t.endswith("with time zone"))
    return d


_ODBC_TEXT = (1, 12, -1, -8, -9, -10, -2, -3, -4)  # characters and bytes
_ODBC_LONG = (-1, -10, -4)  # SQL_LONGVARCHAR, SQL_WLONGVARCHAR, SQL_LONGVARBINARY
_ODBC_INT = {-6: 1, 5: 2, 4: 4, -5: 8}
_ODBC_TIME = (10, 11, 92, 93, -154, -155)


def odbc_details(data_type: int, column_size: int | None, digits: int | None) -> Details:
    """Any other ODBC source (SQL Server, Access...): what ``SQLColumns`` says (SQL data
    type, COLUMN_SIZE, DECIMAL_DIGITS). A size of 0 or of 2^30 and more is "no limit"
    (``nvarchar(max)``)."""
    size = column_size if column_size and column_size < 2**30 else None
    d: Details = {}
    if data_type in _ODBC_TEXT:
        d.update(length=None if data_type in _ODBC_LONG else size)
    elif data_type in (2, 3):
        d.update(precision=size, scale=digits if size else None)
    elif data_type in _ODBC_INT:
        d.update(width=_ODBC_INT[data_type])
    elif data_type in (6, 7, 8):
        d.update(width=4 if data_type == 7 else 8)
    elif data_type in _ODBC_TIME:
        d.update(fraction=digits, zone=True if data_type == -155 else None)
    return d


def sqlite_details(declared: str, kind: Kind) -> Details:
    """An SQLite column: sizes are only declared (never enforced); integers and reals have
    8 bytes; a decimal keeps 15 digits exactly (NUMERIC affinity stores a double)."""
    n, s = _args(declared)
    d: Details = {"enforced": False}
    if kind in (Kind.INT, Kind.FLOAT):
        d.update(width=8)
    elif kind == Kind.DECIMAL:
        d.update(precision=n, scale=(s or 0) if n is not None else None)
    elif kind in (Kind.TEXT, Kind.BLOB):
        d.update(length=n)
    return d


def with_details(column: Column, details: Mapping[str, Any]) -> Column:
    return dataclasses.replace(column, **details) if details else column


def to_json(column: Column) -> dict[str, Any]:
    """The details of a column as a JSON object (only what is known)."""
    data: dict[str, Any] = {"type": column.type_name, "null": column.nullable}
    for name in _FIELDS:
        value = getattr(column, name)
        if value is not None:
            data[name] = value
    if column.unsigned:
        data["unsigned"] = True
    if column.years is not None:
        data["years"] = list(column.years)
    if column.zone is not None:
        data["zone"] = column.zone
    if column.charset:
        data["charset"] = column.charset
    if not column.enforced:
        data["enforced"] = False
    return data


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def from_json(name: str, kind: Kind, data: Any) -> Column:
    """A column from ``to_json``; unknown or ill-typed entries are ignored (a newer writer
    may say more), so reading never fails on details."""
    if not isinstance(data, dict):
        return Column(name, kind)
    years = data.get("years")
    if not (isinstance(years, list) and len(years) == 2 and all(type(y) is int for y in years)):
        years = None
    return Column(
        name,
        kind,
        str(data.get("type", "")),
        data.get("null") is not False,
        length=_int(data.get("length")),
        precision=_int(data.get("precision")),
        scale=_int(data.get("scale")),
        width=_int(data.get("width")),
        fraction=_int(data.get("fraction")),
        unsigned=data.get("unsigned") is True,
        years=(years[0], years[1]) if years else None,
        zone=data["zone"] if isinstance(data.get("zone"), bool) else None,
        charset=str(data.get("charset", "")),
        enforced=data.get("enforced") is not False,
    )
