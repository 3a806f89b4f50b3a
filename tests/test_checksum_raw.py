"""The « Contrôle »'s checksum hashes rows as the driver returns them.

``engine.checksum`` reads with ``Adapter.scan(raw=True)`` and hashes the values before
``normalise`` (the digests' fast paths for a DECIMAL read as an integer or a real, dates
as text, a BOOLEAN as 0/1: ``values.hashing._RAW_TEXTS``). Its sum must be the one of the
normalised rows' digests on every back end, for every value of the fidelity catalogue, and
for whatever storage class a SQLite file holds (another program may have written it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from backends import Backend
from engine_helpers import Db
from fidelity_helpers import TABLES, create_tables, write_each

from synchro.db import open_database
from synchro.db.base import Adapter, Table
from synchro.engine import checksum
from synchro.values import row_hasher


def _of_normal_rows(adapter: Adapter, table: Table) -> tuple[int, str]:
    """The checksum's definition over the normalised rows (``scan`` without ``raw``)."""
    digest = row_hasher(tuple(table.kinds))
    rows = list(adapter.scan(table, ordered=False))
    total = sum(int.from_bytes(digest(r), "big") for r in rows)
    return len(rows), f"{total % checksum.MOD:032x}"


def test_the_checksum_of_rows_as_read_is_that_of_the_normal_rows(backend: Backend) -> None:
    create_tables(backend)
    with Db(backend.connection) as db:
        for k in TABLES:
            write_each(db, f"fid_{k.name}", [(i, v.value) for i, v in enumerate(k.values)])
        for k in TABLES:
            table = db.tables[f"fid_{k.name}"]
            count, _ = got = checksum.table_checksum(db.adapter, table)
            assert count > 0, table.name
            assert got == _of_normal_rows(db.adapter, table), table.name


def test_every_storage_class_of_a_sqlite_file(tmp_path: Path) -> None:
    """Values another program stored: a DECIMAL as an integer, a real, a text with
    trailing zeros; datetimes with a T, with zero microseconds, impossible ones; dates
    and booleans of every shape."""
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, d DECIMAL(12,2), m DATETIME, j DATE, b BOOLEAN)"
    )
    shapes = [
        (12, "2026-11-01 10:00:00", "2026-11-01", 0),
        (12.5, "2026-11-01T10:00:00", "2026-02-30", 1),
        (120.0, "2026-11-01 10:00:00.000000", "2026-W01-1", 5),
        ("12.50", "2026-11-01 10:00:00.5", " 2026-11-01", -1),
        (-0.0, "2026-13-01 10:00:00", "0000-01-01", "true"),
        (1e-05, "2026-11-01 10:00:00.123456", None, None),
        ("1E+3", "0000-01-01 00:00:00", "2026-11-01", 1.0),
        (None, "2026-11-01 10:00:00+01:00", "x", b"\x00"),
    ]
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)", [(i, *s) for i, s in enumerate(shapes)]
    )
    conn.commit()
    conn.close()
    adapter = open_database(str(path))
    try:
        (table,) = [t for t in adapter.tables() if t.name == "t"]
        got = checksum.table_checksum(adapter, table)
        assert got == _of_normal_rows(adapter, table)
        assert got[0] == len(shapes)
    finally:
        adapter.close()
