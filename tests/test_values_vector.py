"""``synchro.values.vector``: digests of Arrow column batches equal ``row_hasher``'s.

The columnar plane's digests go into the same snapshots and checksums as the per-row
engine's, so every test here compares with ``row_hasher`` on the same values:
- the fidelity catalogue written to every back end and read back through its adapter,
  the columns then made Arrow arrays (as a columnar reader would hand them);
- Arrow's own types for each kind (decimal128 at 38 digits, timestamps in s/ms/us before
  1970 and after 2038, time32/64, date32/64, binary with zero bytes, null columns,
  chunked and sliced arrays);
- every Unicode scalar value, in text, json and as odd text in date columns;
- texts the vector kernels must not take as they are (30 February, year 0000, ``T``
  separators, short fractions, exponents) and random values (hypothesis).
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from backends import BACKENDS, Backend
from engine_helpers import Db
from fidelity_helpers import TABLES, create_tables, write_each
from hypothesis import given, settings
from hypothesis import strategies as st

from synchro.db.base import Table
from synchro.values import Kind, row_hasher, vector


def assert_same_digests(
    kinds: Sequence[Kind], columns: Sequence[Sequence[Any]], arrays: Any
) -> None:
    """Vector digests of ``arrays`` equal ``row_hasher`` on the rows of ``columns``."""
    rows = list(zip(*columns, strict=True))
    expected = [row_hasher(tuple(kinds))(row) for row in rows]
    assert vector.batch_digests(kinds, arrays) == expected, (kinds, rows)


def check_column(kind: Kind, values: Sequence[Any], typ: Any = None) -> None:
    """One column of ``kind`` beside an int id, the Arrow type inferred or ``typ``."""
    ids = list(range(len(values)))
    arrays = [pa.array(ids), pa.array(list(values), typ)]
    assert_same_digests([Kind.INT, kind], [ids, values], arrays)


def arrow_parts(values: list[Any]) -> list[Any]:
    """A column as a columnar reader hands it: one typed array when Arrow holds every value
    exactly, else one array per value (SQLite's mixed storage classes, naive and aware
    datetimes together)."""
    try:
        array = pa.array(values)
        if array.to_pylist() == values:
            return [array]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    return [pa.array([v]) for v in values]


def stored_values(backend: Backend, db: Db, table: Table) -> tuple[list[Any], list[Any]]:
    """(ids, v) as a columnar reader would get them: SQLite's stored values as the file
    holds them (text dates, REAL decimals...), read with stdlib sqlite3; the server back
    ends' values as their adapter reads them (a reader of Arrow types gets typed values)."""
    if backend.dialect == "sqlite":
        conn = sqlite3.connect(backend.database)
        try:
            rows = conn.execute(f"SELECT id, v FROM {table.name} ORDER BY id").fetchall()
        finally:
            conn.close()
    else:
        rows = list(db.adapter.scan(table, ordered=True))
    ids, values = (list(c) for c in zip(*rows, strict=True))
    return ids, values


@pytest.mark.parametrize("name", BACKENDS)
def test_catalogue_read_from_every_back_end_digests_as_the_row_engine(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(name)
    create_tables(backend)
    checked = 0
    with Db(backend.connection) as db:
        for k in TABLES:
            table = db.tables[f"fid_{k.name}"]
            write_each(db, table.name, [(i, v.value) for i, v in enumerate(k.values)])
            rows = list(db.adapter.scan(table, ordered=True))  # what the row engine hashes
            ids, stored = stored_values(backend, db, table)
            assert [r[0] for r in rows] == ids, table.name
            hasher = row_hasher(tuple(table.kinds))
            expected = [hasher(row) for row in rows]
            parts = arrow_parts(stored)
            if len(parts) == 1:
                got = vector.batch_digests(table.kinds, [pa.array(ids), parts[0]])
            else:
                got = [
                    vector.batch_digests(table.kinds, [pa.array([i]), part])[0]
                    for i, part in zip(ids, parts, strict=True)
                ]
            assert got == expected, (name, table.name, stored)
            checked += len(rows)
    assert checked > 60


def test_arrow_types_of_each_kind() -> None:
    check_column(Kind.INT, [0, -1, 2**63 - 1, -(2**63), None])
    check_column(Kind.INT, [0, 255, None], pa.uint8())
    check_column(Kind.TEXT, ["", "a\x00b", "é😀中", "\x1f", None])
    check_column(Kind.TEXT, ["x", None], pa.large_string())
    limit = Decimal("9999999999999999999999999999.9999999999")
    decimals = [
        limit,
        Decimal("-" + str(limit)),
        Decimal("-0E-10"),
        Decimal("1.5000000000"),
        Decimal("100.0000000000"),
        None,
    ]
    check_column(Kind.DECIMAL, decimals, pa.decimal128(38, 10))
    check_column(Kind.DECIMAL, [Decimal("10"), Decimal("-0"), Decimal("120")], pa.decimal128(5, 0))
    check_column(Kind.DECIMAL, [Decimal("1" * 70 + ".00"), Decimal("-0.50")], pa.decimal256(76, 2))
    check_column(Kind.DECIMAL, [0, 100, -7, None])
    doubles = [0.1, 100.0, -0.0, 1e16, 1.5e-7, 1e15, 1e-5, 0.0001, 123456.789, 5e-324, None]
    check_column(Kind.DECIMAL, [*doubles, float("inf"), float("nan")])
    check_column(Kind.FLOAT, [*doubles, float("inf"), float("-inf"), float("nan"), 1e308])
    check_column(Kind.FLOAT, [0.1, 3.4e38, None], pa.float32())
    check_column(Kind.BOOL, [True, False, None])
    check_column(Kind.BOOL, [0, 1, 5, None])
    dates = [dt.date(1, 1, 1), dt.date(999, 12, 31), dt.date(1969, 12, 31), dt.date(2040, 2, 29)]
    check_column(Kind.DATE, [*dates, None])
    check_column(Kind.DATE, dates, pa.date64())
    moments = [
        dt.datetime(1, 1, 1),
        dt.datetime(1900, 2, 28, 23, 59, 59, 999999),
        dt.datetime(1969, 12, 31, 23, 59, 59),
        dt.datetime(2038, 1, 19, 3, 14, 8, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        None,
    ]
    check_column(Kind.DATETIME, moments)
    check_column(
        Kind.DATETIME, [m and m.replace(microsecond=0) for m in moments], pa.timestamp("s")
    )
    check_column(Kind.DATETIME, [dt.datetime(1950, 1, 1, 0, 0, 0, 5000)], pa.timestamp("ms"))
    aware = [dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC), dt.datetime(1960, 1, 1, tzinfo=dt.UTC)]
    check_column(Kind.DATETIME, aware, pa.timestamp("us", "UTC"))
    check_column(Kind.DATETIME, [dt.datetime(2000, 1, 1, 0, 0, 0, 1)], pa.timestamp("ns"))
    times = [dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 0, 0, 500000), None]
    check_column(Kind.TIME, times)
    check_column(Kind.TIME, [dt.time(1, 2, 3), None], pa.time32("s"))
    check_column(Kind.TIME, [dt.time(1, 2, 3, 4000)], pa.time32("ms"))
    check_column(Kind.TIME, [dt.time(1, 2, 3, 4)], pa.time64("ns"))
    check_column(Kind.BLOB, [b"", b"\x00", bytes(range(256)), b"\x00" * 100 + b"\xff", None])
    check_column(Kind.BLOB, [b"\x00\x1f", None], pa.large_binary())
    check_column(
        Kind.UUID, ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12"]
    )
    check_column(
        Kind.JSON, ['{"b":1,"a":2,"a":3}', '{"x": [1.0, "é😀", null, true]}', "[]", "not json"]
    )
    for kind in Kind:
        check_column(kind, [None, None], pa.null())


def test_texts_the_kernels_must_not_take_as_they_are() -> None:
    check_column(
        Kind.DATE,
        ["2024-02-29", "2024-02-30", "2023-02-29", "0000-01-01", "2024-1-01", " 2024-01-01", None],
    )
    check_column(Kind.DATE, ["2024-01-01 00:00:00", "2024-01-01 10:00:00", "2024-01-01T00:00"])
    check_column(
        Kind.DATETIME,
        [
            "2024-02-29 23:59:59",
            "2024-02-29 23:59:59.000000",
            "2024-02-29 23:59:59.5",
            "2024-02-29T23:59:59",
            "2024-02-30 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 23:59:60",
            "0000-01-01 00:00:00",
            "2024-01-01 10:00:00+02:00",
            "2024-01-01",
            "yesterday",
        ],
    )
    check_column(Kind.DATETIME, ["2024-02-29 23:59:59.123456", "1901-01-01 00:00:00.000000"])
    check_column(
        Kind.TIME, ["10:00:00", "10:00:00.000000", "10:00", "24:00:00", "23:59:60", "9:00:00"]
    )
    check_column(Kind.TIME, ["23:59:59.999999", "00:00:00"])
    check_column(Kind.DECIMAL, ["1.50", "1e3", "-0", "abc", None])
    check_column(Kind.INT, [1.0, 4.5, None])
    check_column(Kind.INT, ["12", "x"])
    check_column(Kind.TEXT, [b"\x00bytes", b"\xff"])
    check_column(Kind.TEXT, [1, 2])
    check_column(Kind.BLOB, ["text in a blob"])
    check_column(Kind.UUID, [b"\x12" * 16])


def test_every_unicode_scalar_value() -> None:
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(chars[i : i + 64]) for i in range(0, len(chars), 64)]
    check_column(Kind.TEXT, texts)
    check_column(
        Kind.JSON, ['"' + t.replace("\\", "").replace('"', "") + '"' for t in texts[:2000]]
    )
    check_column(Kind.DATE, texts[:500])
    check_column(Kind.DATETIME, texts[:500])


def test_chunked_and_sliced_columns() -> None:
    ids = list(range(10))
    names = [f"n{i}é" for i in range(10)]
    stamps = [dt.datetime(1960 + i, 1, 1, 0, 0, 0, i) for i in range(10)]
    chunked = [pa.chunked_array([ids[:3], ids[3:]]), pa.chunked_array([names[:7], names[7:]])]
    assert_same_digests([Kind.INT, Kind.TEXT], [ids, names], chunked)
    sliced = [pa.array(ids).slice(4, 5), pa.array(names).slice(4, 5), pa.array(stamps).slice(4, 5)]
    expected = [ids[4:9], names[4:9], stamps[4:9]]
    assert_same_digests([Kind.INT, Kind.TEXT, Kind.DATETIME], expected, sliced)


def test_a_column_count_that_does_not_match_the_kinds_is_refused() -> None:
    with pytest.raises(ValueError, match="1 columns for 2 kinds"):
        vector.batch_digests([Kind.INT, Kind.TEXT], [pa.array([1])])


def test_a_large_batch_of_mixed_kinds_as_sqlite_returns_them() -> None:
    rnd = random.Random(7)
    n = 5000
    sites = [f"S{i % 7}" for i in range(n)]
    nums = list(range(n))
    amounts = [
        rnd.randint(-(10**9), 10**9) / 100 if i % 3 else rnd.randint(0, 99) for i in range(n)
    ]
    base = dt.datetime(1900, 1, 1)
    moments = [
        (
            base + dt.timedelta(seconds=rnd.randint(0, 6 * 10**9), microseconds=rnd.choice([0, 7]))
        ).isoformat(" ")
        for _ in range(n)
    ]
    notes = ["é中😀" * (i % 3) if i % 11 else None for i in range(n)]
    kinds = [Kind.TEXT, Kind.INT, Kind.DECIMAL, Kind.DATETIME, Kind.TEXT]
    columns = [sites, nums, amounts, moments, notes]
    assert_same_digests(kinds, columns, [pa.array(c) for c in columns])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.none(), min_size=1, max_size=20)
)
def test_random_doubles_as_float_and_as_decimal(values: list[float | None]) -> None:
    check_column(Kind.FLOAT, values)
    check_column(Kind.DECIMAL, values)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.decimals(
            allow_nan=False, allow_infinity=False, places=4, max_value=10**20, min_value=-(10**20)
        ),
        min_size=1,
        max_size=20,
    ),
    st.lists(st.datetimes(), min_size=1, max_size=20),
)
def test_random_decimals_and_datetimes(decimals: list[Decimal], moments: list[dt.datetime]) -> None:
    check_column(Kind.DECIMAL, decimals, pa.decimal128(30, 4))
    check_column(Kind.DATETIME, moments)
    check_column(Kind.DATETIME, [m.isoformat(" ") for m in moments])
    check_column(Kind.DATE, [m.date() for m in moments])
    check_column(Kind.TIME, [m.time() for m in moments])
    check_column(Kind.TIME, [m.time().isoformat() for m in moments])
