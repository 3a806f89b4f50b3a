"""The value catalogue of the fidelity suite and a second way to read each back end.

``TABLES``: one table per value kind, ``fid_<name>(id, v)``, with the column type of each
back end and the values to send; each value says which back ends can hold it
(``holds``). ``second_read`` reads ``v`` without the adapter under test: stdlib sqlite3
for SQLite, and for PostgreSQL / MariaDB a separate plain pyodbc connection that only
ever receives ASCII (``encode(convert_to(v::text, 'UTF8'), 'hex')`` / ``HEX(...)``), so no
character conversion of a driver is involved; the text is parsed here.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backends import Backend, need_pyodbc

from synchro import values as V
from synchro.values.convert import single_read_back

ALL = frozenset({"sqlite", "postgresql", "mysql"})
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MINUS530 = dt.timezone(dt.timedelta(hours=-5, minutes=-30))

# Characters whose UTF-16 low byte is D8-DB: MariaDB Connector/ODBC cut them in UTF-16.
D8DB = "ØÙÚÛǘǙǚǛטיךכӘヘベペホ"
MEGA = ("Ø😀é中" * 262_144)[:1_048_576]  # 1 MB of characters, 2.5 MB of UTF-8


@dataclass(frozen=True)
class Value:
    value: Any
    holds: frozenset[str] = ALL


@dataclass(frozen=True)
class Kind:
    name: str
    kind: str  # the kind the source reads (SQLite's columns are plain TEXT/DATETIME...)
    types: dict[str, str]  # dialect -> column type
    values: tuple[Value, ...]
    kinds: dict[str, str] = field(default_factory=dict)  # dialect -> kind, when it differs

    def kind_on(self, dialect: str) -> str:
        return self.kinds.get(dialect, self.kind)


def held_by(value: Value, backend: Backend) -> bool:
    """``backend`` can hold ``value``: its dialect can, except U+0000 in a text through the
    SQLite ODBC driver (which cuts the text there: refused up front, docs/TYPES.md)."""
    if backend.name == "sqlite-odbc" and isinstance(value.value, str) and "\x00" in value.value:
        return False
    return backend.dialect in value.holds


def _v(*values: Any, holds: frozenset[str] = ALL) -> tuple[Value, ...]:
    return tuple(Value(v, holds) for v in values)


NOT_PG = frozenset({"sqlite", "mysql"})
NOT_MARIA = frozenset({"sqlite", "postgresql"})
ONLY_PG = frozenset({"postgresql"})

TEXTS = (
    "Último Pau-De-Arara",
    "é" + "a" * 5,
    "a" * 5 + "é",
    "aéb",
    D8DB,
    " ".join(D8DB),
    D8DB[-1],
    "😀",
    "👨‍👩‍👧‍👦 🇫🇷 👍🏽",
    "中文字符测试 日本語のテキスト 한국어",
    "שלום עולם مرحبا بالعالم",
    "e\u0301 a\u0308 \u0915\u094d\u0937",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010fffd",
    "",
    "'\"\\`%_;--",
    "a\nb\r\nc\td",
    "".join(chr(i) for i in range(1, 32)) + "\x7f\x80\x9f",
    "\ufeff\u200b\u2028\u2029\ufffd",
    MEGA,
    None,
)

TABLES: tuple[Kind, ...] = (
    Kind(
        "text",
        "text",
        {"sqlite": "TEXT", "postgresql": "TEXT", "mysql": "LONGTEXT"},
        _v(*TEXTS) + _v("a\x00b", holds=NOT_PG),
    ),
    Kind(
        "short",
        "text",
        {"sqlite": "VARCHAR(10)", "postgresql": "VARCHAR(10)", "mysql": "VARCHAR(10)"},
        _v("é" * 10, "😀" * 10, "ヘ" * 10, "a" * 9 + "Ú", "👍🏽" * 5)
        + _v("é" * 11, "😀" * 11, holds=frozenset({"sqlite"})),  # SQLite keeps any length
    ),
    Kind(
        "bigint",
        "int",
        {"sqlite": "BIGINT", "postgresql": "BIGINT", "mysql": "BIGINT"},
        _v(2**63 - 1, -(2**63), 0, -1, None),
    ),
    Kind(
        "dec12",
        "decimal",
        {"sqlite": "DECIMAL(12,2)", "postgresql": "DECIMAL(12,2)", "mysql": "DECIMAL(12,2)"},
        _v(
            Decimal("9999999999.99"),
            Decimal("-9999999999.99"),
            Decimal("0.01"),
            Decimal("-0.00"),
            Decimal("1.50"),
        ),
    ),
    Kind(
        "dec38",
        "decimal",
        {"sqlite": "DECIMAL(38,10)", "postgresql": "DECIMAL(38,10)", "mysql": "DECIMAL(38,10)"},
        _v(Decimal("0.0000000001"), Decimal("-12345678901234.5"), Decimal("-0E-10"))
        + _v(
            Decimal("9999999999999999999999999999.9999999999"),
            Decimal("-9999999999999999999999999999.9999999999"),
            Decimal("12345678901234567890.0123456789"),
            holds=frozenset({"postgresql", "mysql"}),
        ),
    ),
    Kind(
        "float",
        "float",
        {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION", "mysql": "DOUBLE"},
        _v(0.1, 1e308, 5e-324, -2.5, 1 / 3, 2.2250738585072014e-308, 0.0)
        + _v(float("inf"), float("-inf"), holds=NOT_MARIA)
        + _v(-0.0, float("nan"), holds=ONLY_PG),
    ),
    Kind(
        "single",  # 4-byte floats: PostgreSQL real, MariaDB FLOAT (SQLite's REAL has 8)
        "float",
        {"sqlite": "REAL", "postgresql": "REAL", "mysql": "FLOAT"},
        _v(0.1, 1.5, 3.4e38, 0.3333333, -2.5e-30, 16777216.0)
        + _v(0.1 + 2**-40, 16777217.0, 1e300, holds=frozenset({"sqlite"})),
    ),
    Kind(
        "bool",
        "bool",
        {"sqlite": "BOOLEAN", "postgresql": "BOOLEAN", "mysql": "BOOLEAN"},
        _v(True, False, None),
    ),
    Kind(
        "date",
        "date",
        {"sqlite": "DATE", "postgresql": "DATE", "mysql": "DATE"},
        _v(dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1969, 12, 31), dt.date(2040, 2, 29)),
    ),
    Kind(
        "time",
        "time",
        {"sqlite": "TIME", "postgresql": "TIME", "mysql": "TIME(6)"},
        _v(dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 34, 56, 789012)),
    ),
    Kind(
        "datetime",
        "datetime",
        {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mysql": "DATETIME(6)"},
        _v(
            dt.datetime(1, 1, 1),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(1950, 6, 1, 12, 0, 0, 500000),
            dt.datetime(2040, 1, 1, 0, 0, 0, 1),
            dt.datetime(2024, 2, 29, 23, 59, 59),
        ),
    ),
    Kind(
        "stamp",  # MariaDB TIMESTAMP: 1970-2038 only
        "datetime",
        {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mysql": "TIMESTAMP(6) NULL"},
        _v(dt.datetime(2000, 1, 1, 12, 0, 0, 250000), dt.datetime(2038, 1, 18, 23, 59, 59))
        + _v(dt.datetime(1960, 1, 1), dt.datetime(2040, 1, 1), holds=NOT_MARIA),
    ),
    Kind(
        "tstz",
        "datetime",
        {"sqlite": "DATETIME", "postgresql": "TIMESTAMPTZ", "mysql": "DATETIME(6)"},
        _v(
            dt.datetime(2024, 6, 1, 12, 0, tzinfo=PLUS2),
            dt.datetime(1960, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC),
            dt.datetime(2050, 12, 31, 23, 0, tzinfo=MINUS530),
            holds=NOT_MARIA,
        )
        + _v(dt.datetime(2024, 1, 1, 8, 0), holds=NOT_PG),
    ),
    Kind(
        "blob",
        "blob",
        {"sqlite": "BLOB", "postgresql": "BYTEA", "mysql": "LONGBLOB"},
        _v(b"", b"\x00", bytes(range(256)), b"\x00" * 1000 + b"\xff", None),
    ),
    Kind(
        "uuid",
        "uuid",
        {"sqlite": "TEXT", "postgresql": "UUID", "mysql": "UUID"},
        _v("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12"),
        {"sqlite": "text"},
    ),
    Kind(
        "json",
        "json",
        {"sqlite": "TEXT", "postgresql": "JSONB", "mysql": "JSON"},
        _v('{"b":1,"a":2,"a":3}', '{"x": [1.0, "é😀", null, true]}', "[]", '"ü"'),
        {"sqlite": "text", "mysql": "text"},
    ),
)


def create_tables(backend: Backend, kinds: Sequence[Kind] = TABLES) -> None:
    for k in kinds:
        column = k.types[backend.dialect]
        sql = f"CREATE TABLE fid_{k.name} (id INTEGER NOT NULL PRIMARY KEY, v {column})"
        if backend.dialect == "mysql":
            sql += " ENGINE=InnoDB"
        backend.execute(sql)


def compare_kind(a: str, b: str) -> str:
    """The kind two columns are compared as: ``json``/``uuid`` when either side is one
    (their documented normalisations), else the destination's."""
    for special in ("json", "uuid"):
        if special in (a, b):
            return special
    return b


# -- the second path ----------------------------------------------------------------


def _odbc(backend: Backend) -> Any:
    pyodbc = need_pyodbc(backend.name)
    return pyodbc.connect(backend.connection, autocommit=True, timeout=5)


def _mysql_expr(kind: str) -> str:
    if kind == "float":
        return "HEX(CAST(CAST(v AS DOUBLE) AS CHAR))"
    if kind == "blob":
        return "HEX(v)"
    if kind in ("text", "json"):
        return "HEX(CONVERT(v USING utf8mb4))"
    return "HEX(CAST(v AS CHAR))"


def second_read(backend: Backend, table: str, kind: str) -> dict[int, Any]:
    """``{id: v}`` of one table, read without the adapter under test, normalised to ``kind``.

    4-byte floats (table ``fid_single``) are given as the shortest text of the stored
    float (the documented normalisation; MariaDB prints 6 digits, so it is read as DOUBLE).
    """
    values = _second_read(backend, table, kind)
    if table == "fid_single" and backend.dialect != "sqlite":
        return {i: v if v is None else single_read_back(v) for i, v in values.items()}
    return values


def _second_read(backend: Backend, table: str, kind: str) -> dict[int, Any]:
    if backend.dialect == "sqlite":
        conn = sqlite3.connect(backend.database)
        try:
            rows = conn.execute(f"SELECT id, v FROM {table}").fetchall()
        finally:
            conn.close()
        return {int(i): sqlite_value(kind, v) for i, v in rows}
    if backend.dialect == "postgresql":
        sql = f"SELECT id, encode(convert_to(v::text, 'UTF8'), 'hex') FROM {table}"
    else:
        sql = f"SELECT id, {_mysql_expr(kind)} FROM {table}"
    conn = _odbc(backend)
    try:
        rows = conn.execute(sql).fetchall()
    finally:
        conn.close()
    out: dict[int, Any] = {}
    for i, h in rows:
        if h is None:
            out[int(i)] = None
        elif kind == "blob" and backend.dialect == "mysql":
            out[int(i)] = bytes.fromhex(h)
        else:
            out[int(i)] = parse_text(kind, bytes.fromhex(h).decode("utf-8"))
    return out


def stored_form(backend: Backend, table: str) -> dict[int, Any]:
    """``{id: v}`` as the database itself holds it, for comparing two databases of one
    dialect: SQLite's storage class and ``quote()`` (read by stdlib ``sqlite3``),
    PostgreSQL's ``v::text``, MariaDB's bytes (``HEX(v)``), each as ASCII."""
    if backend.dialect == "sqlite":
        conn = sqlite3.connect(backend.database)
        try:
            sql = f"SELECT id, typeof(v), quote(v) FROM {table}"
            return {int(i): (t, q) for i, t, q in conn.execute(sql)}
        finally:
            conn.close()
    expr = (
        "encode(convert_to(v::text, 'UTF8'), 'hex')"
        if backend.dialect == "postgresql"
        else "HEX(v)"
    )
    conn = _odbc(backend)
    try:
        return {int(i): h for i, h in conn.execute(f"SELECT id, {expr} FROM {table}").fetchall()}
    finally:
        conn.close()


def sqlite_value(kind: str, value: Any) -> Any:
    if isinstance(value, float) and kind == "decimal":
        return Decimal(repr(value))
    return None if value is None else V.normalise(kind, value)


def parse_text(kind: str, text: str) -> Any:
    """A value from the text a server prints for it (PostgreSQL ``::text``, MariaDB CAST)."""
    if kind == "blob":  # PostgreSQL bytea: \\x0001ff
        return bytes.fromhex(text[2:]) if text.startswith("\\x") else text
    if kind == "float":
        return float(text)  # '-0', 'NaN', 'Infinity', '1e308' all parse
    return V.normalise(kind, text)  # PostgreSQL 't'/'f', '... +00' offsets, MariaDB times


def write_each(db: Any, table: str, rows: Sequence[tuple[int, Any]]) -> dict[int, str]:
    """Write rows one by one through the adapter; ``{id: message}`` of the refused ones."""
    refused: dict[int, str] = {}
    from synchro.errors import DatabaseError

    for row in rows:
        try:
            db.write(table, [row])
        except DatabaseError as exc:
            refused[row[0]] = str(exc)
    return refused
