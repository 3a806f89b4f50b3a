"""A PostgreSQL or MariaDB table read through arrow-odbc as Arrow record batches, every value
exactly as the adapter reads it, or not at all.

arrow-odbc (the columnar plane's ODBC reader, issue 13) types each column from what the
driver reports, and some reports lose values in silence; measured with arrow-odbc 10.6 on
this project's fidelity catalogue (bench/README.md):
- psqlODBC reports ``double precision`` so that arrow-odbc reads it as a 4-byte float;
- MariaDB's ``FLOAT`` comes back as a double that is not the float the adapter gives;
- an unbounded text (``text``, ``LONGTEXT``) gets a buffer of ``max_text_size``: a longer
  value failed the read on PostgreSQL and came back as broken UTF-8 on MariaDB.
A read that rounds or cuts a value could make a changed row look unchanged, so each column
is read here only in a way decided from its declared type, never from the driver's report:
- integers (not BIGINT UNSIGNED) as int64, ``numeric(p, s)``/``decimal(p, s)`` up to 38
  digits as decimal128(p, s), 8-byte floats as float64;
- bounded text (``varchar(n)``, n ≤ ``TEXT_LIMIT``) as text;
- dates, times, booleans and uuids as the text the adapter's own SELECT gives
  (``Dialect.read_term``), which the vector kernels check strictly;
- every column read as text has each value's length in UTF-8 bytes read beside it in SQL,
  and compared: a value cut, or converted to other characters of another length, fails
  the read (given too short a buffer, MariaDB's driver cuts a text in silence once a
  first value has fitted: measured, ``tests/test_db_columnar_odbc.py``);
- anything else (json, blobs, unbounded text, 4-byte floats, unsized decimals): the table
  is not read here (``plan`` gives None) and the caller reads it row by row.
Text travels as UTF-16 from PostgreSQL (its ANSI calls use the Windows code page) and as
UTF-8 from MariaDB (whose UTF-16 path lost characters, DESIGN.md §5). Any error of the
reader, or a length that differs, raises ``NotExact``: the caller reads the table row by
row instead; nothing was written from it yet.

The reader's connection waits ``LOCK_WAIT_S`` at most for a table another program keeps
locked (``arrow_connection``). Left to the servers' defaults it waited for ever on
PostgreSQL (``lock_timeout`` 0) and a day on MariaDB (``lock_wait_timeout``), and a stop
cannot cut arrow-odbc's wait (no cancel): a run stayed blocked as long as the other
program's lock, deaf to a stop. Now the read fails, and the row path, whose statements
wait ``odbc.LOCK_WAIT_S`` and which a stop cancels (``db.statement_watch``), reads the table.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from synchro.db.base import Column, Table
from synchro.db.columnar import NotExact
from synchro.db.dialects import Dialect
from synchro.db.odbc_connect import CONNECT_TIMEOUT, bounded_connection, load_pyodbc, opening
from synchro.values import Kind

TEXT_LIMIT = 4000  # characters of the longest bounded text column read in columns
BATCH_ROWS = 8192
# The reader's transit buffers are sized from each column's largest possible value, not from
# the values: a batch is capped in bytes (fewer rows for wide columns), and no text buffer
# is made larger than 4 bytes a character of the table's longest text column (at least
# CAST_TEXT characters, for the text of dates: the driver reports it unbounded). A longer
# value fails the read (the length check), it is never cut.
BATCH_BYTES = 16 * 1024 * 1024
CAST_TEXT = 64
LOCK_WAIT_S = 2  # seconds the reader waits for a lock before the row path takes over
# The connection-string attribute whose SQL each driver runs once connected (psqlODBC's
# ConnSettings, MariaDB Connector/ODBC's InitStmt), with the statement bounding lock waits.
# (psqlODBC also knows ConnSettings as A6.)
_LOCK_WAIT = {
    "postgresql": ("ConnSettings", "ConnSettings|A6", f"SET lock_timeout = '{LOCK_WAIT_S}s'"),
    "mysql": ("InitStmt", "InitStmt", f"SET lock_wait_timeout = {LOCK_WAIT_S}, "
              f"innodb_lock_wait_timeout = {LOCK_WAIT_S}"),
}  # fmt: skip
_ATTRIBUTE = r"(?:^|;)\s*(?:{})\s*="
PREFIX = "synchro_"  # of the result's column names (a table with such a column: not read)
_SIZED = re.compile(r"^\s*(?:numeric|decimal)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_VARCHAR = re.compile(r"^\s*(?:character varying|varchar)\s*\(\s*(\d+)\s*\)")
_INTS = {
    "postgresql": ("smallint", "integer", "bigint", "int2", "int4", "int8"),
    "mysql": ("tinyint", "smallint", "mediumint", "int", "integer", "bigint"),
}
_DOUBLES = {"postgresql": ("double precision", "float8"), "mysql": ("double",)}
_AS_TEXT = (Kind.DATE, Kind.DATETIME, Kind.TIME, Kind.UUID)


@dataclass(frozen=True)
class Plan:
    """How each column is read: its SELECT term, the Arrow type asked for, and the terms
    whose UTF-8 length is checked (by column position)."""

    terms: tuple[str, ...]
    types: tuple[Any, ...]
    checked: tuple[int, ...]
    text_bytes: int  # the reader's largest text buffer a value


def available() -> bool:
    """Whether pyarrow and arrow-odbc are installed (a source install may lack them)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("pyarrow", "arrow_odbc"))
    except (ImportError, ValueError):
        return False


def column_type(dialect: str, column: Column, full_type: str) -> tuple[Any, int] | None:
    """The Arrow type one column is read as and, for text, its longest value in characters
    (0: not text; its length is checked), or None when it cannot be read exactly here."""
    import pyarrow as pa

    declared = (full_type or column.type_name).lower().strip()
    base = declared.split("(")[0].strip()
    kind = column.kind
    if kind == Kind.INT and base in _INTS.get(dialect, ()):
        # BIGINT UNSIGNED goes beyond an int64; an unsigned int up to 32 bits fits one.
        return None if base == "bigint" and "unsigned" in declared else (pa.int64(), 0)
    if kind == Kind.DECIMAL:
        sized = _SIZED.match(declared)
        if sized and 0 < int(sized.group(1)) <= 38 and int(sized.group(2)) <= int(sized.group(1)):
            return pa.decimal128(int(sized.group(1)), int(sized.group(2))), 0
        return None
    if kind == Kind.FLOAT:
        return (pa.float64(), 0) if declared in _DOUBLES.get(dialect, ()) else None
    if kind == Kind.TEXT:
        bounded = _VARCHAR.match(declared)
        if bounded and int(bounded.group(1)) <= TEXT_LIMIT:
            return pa.string(), max(1, int(bounded.group(1)))
        return None
    if kind == Kind.BOOL:  # '1' or '0' (psqlODBC), 1 or 0 (MariaDB): nothing to cut
        return (pa.string() if dialect == "postgresql" else pa.int64()), 0
    if kind in _AS_TEXT:
        return pa.string(), CAST_TEXT
    return None


def plan(sql: Dialect, table: Table, full_types: Mapping[str, str]) -> Plan | None:
    """How to read ``table`` exactly in columns, or None (read it row by row)."""
    if sql.name not in _INTS or any(n.lower().startswith(PREFIX) for n in table.column_names):
        return None
    terms: list[str] = []
    types: list[Any] = []
    checked: list[int] = []
    longest = CAST_TEXT
    for i, column in enumerate(table.columns):
        decided = column_type(sql.name, column, full_types.get(column.name, ""))
        if decided is None:
            return None
        typ, chars = decided
        terms.append(sql.read_term(column))
        types.append(typ)
        if chars:
            checked.append(i)
            longest = max(longest, chars)
    return Plan(tuple(terms), tuple(types), tuple(checked), 4 * longest)


def _length_term(dialect: str, term: str) -> str:
    if dialect == "postgresql":
        return f"octet_length(convert_to(CAST({term} AS text), 'UTF8'))"
    return f"OCTET_LENGTH(CONVERT({term} USING utf8mb4))"


def select(
    sql: Dialect, table: Table, chosen: Plan, *, ordered: bool, after: bool = False, limit: int = 0
) -> str:
    """The SELECT of ``chosen``: columns ``synchro_c<i>``, then lengths ``synchro_n<i>``;
    with ``after`` the rows after a key (parameters: ``Dialect.after_key_params`` as text,
    cast back to each key column's type), ``limit`` rows at most."""
    q = sql.quote
    parts = [f"{t} AS {q(f'{PREFIX}c{i}')}" for i, t in enumerate(chosen.terms)]
    parts += [
        f"{_length_term(sql.name, chosen.terms[i])} AS {q(f'{PREFIX}n{i}')}" for i in chosen.checked
    ]
    text = f"SELECT {', '.join(parts)} FROM {q(table.name)}"
    if after:
        text += (
            f" WHERE {sql.after_key(table, [_mark(chosen.types[p]) for p in table.key_positions])}"
        )
    if (ordered or after or limit) and table.key:
        text += sql.key_order(table)
    return text + (f" LIMIT {int(limit)}" if limit else "")


def _mark(arrow_type: Any) -> str:
    """A key's parameter (arrow-odbc binds every parameter as text) cast back to its type:
    an integer or a decimal compared with text would be compared as a double."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "CAST(? AS SIGNED)"
    if pa.types.is_decimal(arrow_type):
        return f"CAST(? AS DECIMAL({arrow_type.precision},{arrow_type.scale}))"
    return "?"


def batches(
    sql: Dialect,
    connection: str,
    table: Table,
    full_types: Mapping[str, str],
    *,
    ordered: bool = False,
) -> Iterator[Any] | None:
    """The table's rows as Arrow record batches (columns named as the table's), every
    value exact, or None when a column cannot be read so. Raises ``NotExact`` while
    reading when the reader fails or a text length differs.

    Where the driver keeps a whole result in memory (MariaDB Connector/ODBC before 3.1.17:
    ``Dialect.page_rows``) the table is read in key-ordered pages, as the row path reads it.
    """
    chosen = plan(sql, table, full_types)
    arrow = arrow_connection(sql.name, connection)
    if chosen is None or arrow is None or (sql.page_rows and not table.key):
        return None
    return _pages(sql, arrow, table, chosen, ordered=ordered)


def arrow_connection(dialect: str, connection: str) -> str | None:
    """The connection string of the reader's connection: the user's, with the statement
    that bounds its lock waits to ``LOCK_WAIT_S``; None when the user's already sets that
    attribute (the reader is then not used: its waits could not be bounded)."""
    attribute, names, statement = _LOCK_WAIT[dialect]
    if re.search(_ATTRIBUTE.format(names), connection, re.IGNORECASE):
        return None
    return f"{connection.rstrip().rstrip(';')};{attribute}={{{statement}}}"


def _pages(
    sql: Dialect, connection: str, table: Table, chosen: Plan, *, ordered: bool
) -> Iterator[Any]:
    page = sql.page_rows
    if not page:
        yield from _read(
            sql, connection, table, chosen, select(sql, table, chosen, ordered=ordered)
        )
        return
    params: list[str] = []
    while True:
        query = select(sql, table, chosen, ordered=True, after=bool(params), limit=page)
        count = 0
        last: Any = None
        for batch in _read(sql, connection, table, chosen, query, params):
            count += batch.num_rows
            last = batch if batch.num_rows else last
            yield batch
        if count < page or last is None:
            return
        key = [_text(last.column(p)[-1]) for p in table.key_positions]
        params = [str(v) for v in sql.after_key_params(key)]


def _text(scalar: Any) -> str:
    """A key value of the last row read, as the text parameter of the next page."""
    value = scalar.as_py()
    if value is None:
        raise NotExact("clé sans valeur : lecture par pages impossible")
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _read(
    sql: Dialect,
    connection: str,
    table: Table,
    chosen: Plan,
    query: str,
    params: Sequence[str] = (),
) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        import arrow_odbc
    except (ImportError, OSError) as exc:  # its library, or the ODBC manager's, not loaded
        raise NotExact(f"arrow-odbc : {exc}") from exc

    fields = [pa.field(f"{PREFIX}c{i}", t) for i, t in enumerate(chosen.types)]
    fields += [pa.field(f"{PREFIX}n{i}", pa.int64()) for i in chosen.checked]
    encoding = (
        arrow_odbc.TextEncoding.UTF16 if sql.name == "postgresql" else arrow_odbc.TextEncoding.UTF8
    )
    names = table.column_names
    width = len(names)
    try:
        bounded = bounded_connection(load_pyodbc(), connection)  # (as the adapter's)
        with opening():  # one opening at a time in the process (odbc_connect)
            conn = arrow_odbc.connect(bounded, login_timeout_sec=CONNECT_TIMEOUT)
        reader = conn.read_arrow_batches(
            query=query,
            batch_size=BATCH_ROWS,
            parameters=list(params) or None,
            max_bytes_per_batch=BATCH_BYTES,
            schema=pa.schema(fields),
            max_text_size=chosen.text_bytes,
            payload_text_encoding=encoding,
        )
        for batch in reader:
            columns = batch.columns
            for j, i in enumerate(chosen.checked):
                lengths = pc.binary_length(columns[i])
                if not lengths.equals(columns[width + j].cast(lengths.type)):
                    raise NotExact(f"table {table.name}, colonne {names[i]} : texte mal lu")
            yield pa.RecordBatch.from_arrays(columns[:width], names=names)
    except (arrow_odbc.Error, pa.ArrowException) as exc:
        raise NotExact(f"table {table.name} : {exc}") from exc
