"""A SQLite table read as Arrow record batches, every value exactly as stdlib sqlite3 reads it.

The columnar data plane (issue 13) reads tables through the ADBC SQLite driver: ~0.85 µs a
row into Arrow, no Python object per value. But SQLite types values, not columns, and the
driver types each column from its first rows; measured with adbc-driver-sqlite 1.13:
- an INTEGER first and a REAL later fails the read ("Type mismatch ... expected INT64 but
  got DOUBLE");
- a REAL first and an integer beyond 2**53 later is read as a double: silently rounded;
- a TEXT first and a BLOB later is read as text, an integer in a DATETIME column of texts
  as its digits: silently another value.
So the table's storage classes are counted first (one scan inside SQLite, ``census``) and
each column is read only in a way that is exact (census and read in one transaction):
- one storage class (NULLs aside): as it is;
- integers and reals whose integers all lie within ±2**53, in a column of a kind where an
  integer and its real have the same canonical form (int, decimal, float: 5 and 5.0 are
  both "5" as a decimal, "5.0" as a float): ``CAST(c AS REAL)``, exact (each such integer
  is a double);
- anything else: the table is not read here (``batches`` returns None) and the caller
  reads it row by row.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from synchro.db.base import Table
from synchro.db.dialects import Dialect
from synchro.db.doing import act, failed
from synchro.errors import Say
from synchro.values import Kind

EXACT_DOUBLE = 2**53  # every integer of at most this magnitude is a double, exactly
BATCH_ROWS = 8192
# Kinds whose canonical form of an integer n is that of the real n.0 (a DATETIME holding
# 5 is "5", holding 5.0 is "5.0": not one of them).
SAME_AS_REAL = frozenset({Kind.INT, Kind.DECIMAL, Kind.FLOAT})
# Loading pyarrow and ADBC costs ~0.1 CPU s and ~45 MB; reading column by column saves
# ~2.5 µs a row (bench/bench_digests.py, bench_sync's incremental export): worth it from
# ~40,000 rows; taken from 100,000, so small databases never load them.
COLUMNAR_FROM = 100_000


class NotExact(Exception):
    """A columnar read could not give every value exactly (``db.columnar_odbc``: a reader
    error, a text length that differs): the caller reads the table row by row instead."""


def available() -> bool:
    """Whether pyarrow and ADBC's SQLite driver are installed (they are in the one-file
    program; a source install without them reads every table row by row)."""
    try:
        return all(
            importlib.util.find_spec(m) is not None for m in ("pyarrow", "adbc_driver_sqlite")
        )
    except (ImportError, ValueError):  # a broken install: no module to load
        return False


def big_enough(rows: int) -> bool:
    """Whether a table of ``rows`` rows is read column by column (capture, checksum).

    ``SYNCHRO_COLUMNAR_FROM`` (a number of rows) replaces the threshold: the one-file
    program's tests run the columnar path on a demo's small tables with it."""
    given = os.environ.get("SYNCHRO_COLUMNAR_FROM", "")
    return rows >= (int(given) if given.isdigit() else COLUMNAR_FROM)


def census(
    sql: Dialect, fetchone: Callable[[str], Sequence[Any]], table: Table
) -> dict[str, set[str]]:
    """Per column, the storage classes it holds besides NULL (``typeof``), and under the
    key ``"<name>:big"`` a mark when it mixes reals with an integer beyond ±2**53 (looked
    for only in the columns that mix the two: one more scan, rarely). ``fetchone`` runs a
    query and gives its one row."""
    q = sql.quote
    names = table.column_names
    parts = ", ".join(f"group_concat(DISTINCT typeof({q(n)}))" for n in names)
    row = fetchone(f"SELECT {parts} FROM {q(table.name)}")
    out = {n: set((row[i] or "").split(",")) - {"", "null"} for i, n in enumerate(names)}
    mixed = [n for n in names if out[n] == {"integer", "real"}]
    if mixed:
        bigs = ", ".join(
            f"max(typeof({q(n)}) = 'integer' AND ({q(n)} > {EXACT_DOUBLE} "
            f"OR {q(n)} < -{EXACT_DOUBLE}))"
            for n in mixed
        )
        found = fetchone(f"SELECT {bigs} FROM {q(table.name)}")
        out.update({f"{n}:big": {"big"} for n, big in zip(mixed, found, strict=True) if big})
    return out


def exact_select(
    sql: Dialect, table: Table, classes: dict[str, set[str]], *, ordered: bool
) -> str | None:
    """The SELECT that reads every column exactly (see the module's text), or None."""
    q = sql.quote
    columns = []
    for name, kind in zip(table.column_names, table.kinds, strict=True):
        held = classes[name]
        if len(held) <= 1:
            columns.append(q(name))
        elif held == {"integer", "real"} and kind in SAME_AS_REAL and f"{name}:big" not in classes:
            columns.append(f"CAST({q(name)} AS REAL) AS {q(name)}")
        else:
            return None
    order = sql.key_order(table) if ordered and table.key else ""
    return f"SELECT {', '.join(columns)} FROM {q(table.name)}{order}"


def batches(
    sql: Dialect, path: str | Path, table: Table, *, ordered: bool = False
) -> Iterator[Any] | None:
    """The table's rows as Arrow record batches read by ADBC, every value exact, or None
    when a column mixes storage classes that cannot be read exactly (read it row by row).

    The census and the read run in one read transaction of one connection (read-only),
    so a row written in between cannot slip past the census. ``ordered``: by key, as
    SQLite orders it (binary for text, the snapshot's order). The driver's errors are
    raised as ``DatabaseError``."""
    import adbc_driver_manager
    import adbc_driver_sqlite.dbapi as adbc  # the plane's reader (issue 13)
    import pyarrow as pa

    failures = (adbc_driver_manager.Error, pa.ArrowException)
    doing = act("read_columns", table.name)
    where = f"SQLite ({path})"
    try:
        conn = adbc.connect(f"file:{quote(Path(path).resolve().as_posix())}?mode=ro")
        cursor = conn.cursor()

        def fetchone(sql: str) -> Sequence[Any]:
            cursor.execute(sql)
            row = cursor.fetchone()
            return () if row is None else row

        select = exact_select(sql, table, census(sql, fetchone, table), ordered=ordered)
    except failures as exc:
        raise failed(where, doing, exc) from exc
    if select is None:
        conn.close()
        return None
    return _read(conn, cursor, select, failures, (where, doing))


def _read(
    conn: Any,
    cursor: Any,
    sql: str,
    failures: tuple[type[BaseException], ...],
    doing: tuple[str, Say],
) -> Iterator[Any]:
    try:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
        cursor.execute(sql)
        yield from cursor.fetch_record_batch()
    except failures as exc:
        raise failed(*doing, exc) from exc
    finally:
        cursor.close()
        conn.close()


def column_arrays(batch: Any, names: Sequence[str]) -> list[Any]:
    """The batch's columns in ``names`` order."""
    return [batch.column(batch.schema.get_field_index(n)) for n in names]


def digested(table: Table, found: Iterator[Any]) -> Iterator[tuple[list[Any], list[bytes]]]:
    """Each batch's columns (``table``'s order) and its rows' digests, the same digests as
    ``values.row_hasher`` (``values.vector``)."""
    from synchro.values.vector import batch_digests  # pyarrow: loaded for big tables only

    for batch in found:
        arrays = column_arrays(batch, table.column_names)
        yield arrays, batch_digests(table.kinds, arrays)
