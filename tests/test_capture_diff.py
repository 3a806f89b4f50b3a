"""Capture's full-scan diff with tiny flush sizes: every batch boundary is crossed.

The merge loop writes snapshot entries in batches of ``FLUSH_EVERY`` and deletes through
their own batches; with both set to 2 every row crosses a boundary, so a lost or doubled
snapshot entry shows up as a change captured again (or missed) on the next export.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import columnar_from_one_row

from synchro.capture import diff, full_scan
from synchro.config.model import Config, Role
from synchro.db import columnar as columnar_reader
from synchro.engine.node import Node
from synchro.engine.nodes import build_node

SCHEMA = (
    "CREATE TABLE t(site TEXT NOT NULL, num INTEGER NOT NULL, qte INTEGER, "
    "montant DECIMAL(10,2), quand DATETIME, PRIMARY KEY(site, num))"
)


def _node(tmp: Path, name: str) -> Node:
    config = Config(role=Role.SITE, site=name.upper())
    return build_node(
        config, tmp / f"{name}.state", tmp / f"{name}-pk", connection=str(tmp / f"{name}.db")
    )


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM t ORDER BY site, num").fetchall()
    finally:
        conn.close()


def _databases(
    tmp_path: Path, rows: list[tuple[object, ...]], schema: str = SCHEMA
) -> sqlite3.Connection:
    """a.db holding ``rows`` in the one table of ``schema`` and an empty b.db; the
    connection to a.db."""
    for name in ("a", "b"):
        conn = sqlite3.connect(tmp_path / f"{name}.db")
        conn.execute(schema)
        conn.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    table = schema.split("(")[0].split()[-1]
    with conn:
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return conn


def _ten_rows(tmp_path: Path) -> sqlite3.Connection:
    return _databases(tmp_path, [("S1", i, 1, "1.50", "2024-01-01 10:00:00") for i in range(10)])


@pytest.mark.parametrize("columnar", [False, True], ids=["rows", "columnar"])
def test_changes_cross_every_flush_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columnar: bool
) -> None:
    monkeypatch.setattr(diff, "FLUSH_EVERY", 2)
    monkeypatch.setattr(full_scan, "CHECK_EVERY", 3)
    used: list[str] = []
    if columnar:  # the columnar scan from the first row, changed rows fetched 2 at a time
        used = columnar_from_one_row(monkeypatch)
        monkeypatch.setattr(full_scan, "FETCH_EVERY", 2)
    seen: list[int] = []
    rows = [
        (site, i, i % 5, f"{i}.50", f"2024-01-{1 + i % 28:02d} 10:00:00")
        for site in ("S1", "S2", "S3")
        for i in range(1, 12)
    ]
    _databases(tmp_path, rows).close()
    with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        first = a.export(progress=lambda _t, n: seen.append(n))
        assert first.capture.counts["t"].inserts == 33
        assert seen == list(range(3, 34, 3))
        b.import_package(first.path)
        conn = sqlite3.connect(tmp_path / "a.db")
        with conn:
            conn.execute("DELETE FROM t WHERE num % 3 = 0 OR site = 'S2'")
            conn.execute("UPDATE t SET qte = qte + 10 WHERE num % 4 = 1")
            conn.executemany(
                "INSERT INTO t VALUES (?, ?, 1, '1.00', NULL)", [("S0", i) for i in range(5)]
            )
        conn.close()
        second = a.export()
        counts = second.capture.counts["t"]
        assert (counts.inserts, counts.deletes) == (5, 11 + 6)
        assert counts.updates == 4  # num 1, 5 of S1 and S3 (num 9 is deleted)
        b.import_package(second.path)
        assert _rows(tmp_path / "a.db") == _rows(tmp_path / "b.db")
        assert a.export().manifest.rows == 0  # the snapshot holds exactly what was sent
    # The first export (empty snapshot) reads row by row; the later ones column by column.
    assert used == (["t", "t"] if columnar else [])


def test_a_changed_row_deleted_during_a_columnar_scan_goes_out_as_a_delete_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The columnar scan finds changed rows, then reads them again through the adapter: a
    row deleted in between (by another connection, as a user would) is not sent as its
    old version; the next capture sends its delete."""
    monkeypatch.setattr(columnar_reader, "COLUMNAR_FROM", 1)
    conn = _ten_rows(tmp_path)
    real = full_scan._columnar

    def deleting(table: Any, batches: Any) -> Any:
        for item in real(table, batches):
            yield item
            if item[3] == ("S1", 3):  # found changed; deleted before it is read again
                with conn:
                    conn.execute("DELETE FROM t WHERE num = 3")

    with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        b.import_package(a.export().path)
        with conn:
            conn.execute("UPDATE t SET qte = 2 WHERE num IN (2, 3, 4)")
        monkeypatch.setattr(full_scan, "_columnar", deleting)
        second = a.export()
        assert second.capture.counts["t"].updates == 2  # 2 and 4; 3 was gone when read
        b.import_package(second.path)
        third = a.export()
        assert (third.capture.counts["t"].deletes, third.manifest.rows) == (1, 1)
        b.import_package(third.path)
    conn.close()
    assert _rows(tmp_path / "a.db") == _rows(tmp_path / "b.db")


def test_a_columnar_scan_with_too_many_changes_gives_way_to_the_row_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``DEFER_LIMIT`` changes the columnar scan stops with nothing written and the
    table is captured row by row: the same package as without the columnar path."""
    monkeypatch.setattr(columnar_reader, "COLUMNAR_FROM", 1)
    monkeypatch.setattr(full_scan, "DEFER_LIMIT", 3)
    conn = _ten_rows(tmp_path)
    gave_way: list[str] = []
    real = full_scan.full_diff

    def watched(*args: Any, columnar: bool, **kwargs: Any) -> None:
        try:
            real(*args, columnar=columnar, **kwargs)
        except full_scan.TooManyChanges:
            gave_way.append("columnar")
            raise

    monkeypatch.setattr(diff, "full_diff", watched)
    with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        b.import_package(a.export().path)
        with conn:
            conn.execute("UPDATE t SET qte = 2 WHERE num < 6")
            conn.execute("DELETE FROM t WHERE num = 9")
        second = a.export()
        counts = second.capture.counts["t"]
        assert (counts.updates, counts.deletes, counts.scanned) == (6, 1, 9)
        b.import_package(second.path)
        assert a.export().manifest.rows == 0
    conn.close()
    assert gave_way == ["columnar"]
    assert _rows(tmp_path / "a.db") == _rows(tmp_path / "b.db")


def test_columnar_capture_with_date_and_time_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys that are not int or text (a date, a datetime before 1970, a time, stored as
    SQLite texts) take the general key path of the columnar scan; the result is the row
    path's."""
    used = columnar_from_one_row(monkeypatch)
    keyed = (
        "CREATE TABLE k(d DATE NOT NULL, m DATETIME NOT NULL, h TIME NOT NULL, v TEXT, "
        "PRIMARY KEY(d, m, h))"
    )
    rows = [
        (
            f"19{50 + i:02d}-0{1 + i % 9}-1{i % 10}",
            f"1969-12-31 23:59:{i:02d}",
            f"0{i % 10}:00:00",
            f"é{i}",
        )
        for i in range(30)
    ]
    conn = _databases(tmp_path, rows, keyed)
    with _node(tmp_path, "a") as a, _node(tmp_path, "b") as b:
        b.import_package(a.export().path)
        with conn:
            conn.execute("UPDATE k SET v = v || '😀' WHERE m < '1969-12-31 23:59:05'")
            conn.execute("DELETE FROM k WHERE m = '1969-12-31 23:59:29'")
        second = a.export()
        counts = second.capture.counts["k"]
        assert (counts.updates, counts.deletes, counts.inserts) == (5, 1, 0)
        b.import_package(second.path)
        assert a.export().manifest.rows == 0
    conn.close()
    assert used == ["k", "k"]
    b_rows = (
        sqlite3.connect(tmp_path / "b.db").execute("SELECT * FROM k ORDER BY d, m, h").fetchall()
    )
    a_rows = (
        sqlite3.connect(tmp_path / "a.db").execute("SELECT * FROM k ORDER BY d, m, h").fetchall()
    )
    assert a_rows == b_rows
