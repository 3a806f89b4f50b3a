"""Stored values that do not fit their column's kind travel as they are, never changed.

SQLite's dynamic typing lets a column hold values of another shape (4.5 in an INTEGER,
bytes in a TEXT, 5 in a BOOLEAN, a time of day in a DATE); MariaDB keeps zero dates
(``0000-00-00``). Such a value is read and sent as it is (not truncated to 4, written as
"b'...'", turned into true or NULL...): a destination that can hold it stores it exactly
(SQLite), one that cannot refuses it or its read-back differs, and the row is quarantined.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import make_node

from synchro.package.reader import open_package

ODD_SQLITE = [
    "INSERT INTO t VALUES (1, 7, 'ok', 1, '2024-02-29')",
    "INSERT INTO t VALUES (2, 4.5, 'ok', 1, '2024-02-29')",
    "INSERT INTO t VALUES (3, 7, X'FF00', 1, '2024-02-29')",
    "INSERT INTO t VALUES (4, 7, 'ok', 5, '2024-02-29')",
    "INSERT INTO t VALUES (5, 7, 'ok', 0, '2024-02-29 10:00:00')",
]


def _export(
    backend: Backend, tmp_path: Path
) -> tuple[dict[int, tuple[object, ...]], dict[int, str]]:
    with make_node(tmp_path, "S1", backend.connection) as node:
        result = node.export(tmp_path / "out.pkg")
        held = {
            int(json.loads(k)[0]): str(e)
            for k, e in node.state.conn.execute("SELECT key_json, error FROM quarantine")
        }
        assert result.capture.held == len(held)
        sent = {c.values[0]: c.values for c in open_package(result.path, ()).changes()}
    return sent, held


def _import(dest: Backend, package: Path, tmp_path: Path) -> dict[int, str]:
    with make_node(tmp_path, "SIEGE", dest.connection, hq=True) as hq:
        hq.import_package(package)
        rows = hq.state.conn.execute("SELECT tbl, key_json, error FROM quarantine").fetchall()
    return {int(json.loads(k)[0]): f"{t}: {e}" for t, k, e in rows}


@pytest.mark.parametrize("name", ["sqlite", "sqlite-odbc"])
def test_sqlite_values_of_another_shape_travel_as_they_are_or_are_refused(
    name: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """Read by stdlib ``sqlite3`` or through the SQLite ODBC driver (whose own reads made 4
    of 4.5 and true of 5: ``Dialect.read_term``)."""
    source = make_backend(name)
    source.execute(SQLITE_TABLE)
    for sql in ODD_SQLITE:
        source.execute(sql)
    sent, held = _export(source, tmp_path / "src")
    assert list(held) == [3] and "t.s" in held[3]  # bytes cannot travel as text: set aside
    assert [sent[k][1:] for k in sorted(sent)] == [
        (7, "ok", True, dt.date(2024, 2, 29)),
        (4.5, "ok", True, dt.date(2024, 2, 29)),  # not 4
        (7, "ok", 5, dt.date(2024, 2, 29)),  # not True
        (7, "ok", False, dt.datetime(2024, 2, 29, 10)),  # not the date alone
    ]
    wanted = "SELECT * FROM t WHERE id <> 3 ORDER BY id"
    for receiver in ("sqlite", "sqlite-odbc"):  # SQLite holds each of them exactly
        same = make_backend(receiver)
        same.execute(SQLITE_TABLE)
        assert _import(same, tmp_path / "src" / "out.pkg", tmp_path / receiver) == {}
        assert same.query("SELECT * FROM t ORDER BY id") == source.query(wanted)
    pg = make_backend("postgresql")  # PostgreSQL cannot: refused or caught by verification
    pg.execute(PG_TABLE)
    refused = _import(pg, tmp_path / "src" / "out.pkg", tmp_path / "pg")
    assert set(refused) == {2, 4, 5}, refused
    assert all(message.startswith("t:") for message in refused.values())
    assert pg.query("SELECT id, n, s FROM t WHERE id = 1") == [(1, 7, "ok")]


@pytest.mark.parametrize("name", ["sqlite", "sqlite-odbc"])
def test_an_untyped_key_table_is_read_whatever_its_values(
    name: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """``CREATE TABLE cfg (k PRIMARY KEY, v)``: a program's settings, columns without a
    type. Its key is read through the spool (SQLite does not order such keys as the
    snapshot does); the spool used the package's JSON form by kind and took each text in
    these columns for base64: the capture failed, « Incorrect padding », at every run, and
    no table of the database was sent. Now the rows that can travel do, the others are
    set aside naming their column."""
    source = make_backend(name)
    source.execute("CREATE TABLE cfg (k PRIMARY KEY, v)")
    for row in ((1, b"\x00\xff"), (2, 1.5), ("langue", "fr"), ("n", 5), (3, "abcd")):
        source.execute("INSERT INTO cfg VALUES (?, ?)", row)
    with make_node(tmp_path, "S1", source.connection) as node:
        result = node.export(tmp_path / "out.pkg")
        held = {q["key_json"]: q["error"] for q in node.state.quarantined()}
        sent = [c.values for c in open_package(result.path, ()).changes()]
    assert sorted(sent, key=str) == [(1, b"\x00\xff"), (2, 1.5)]
    assert sorted(held) == ['["3"]', '["langue"]', '["n"]'], held
    assert all("cfg.k" in why or "cfg.v" in why for why in held.values()), held


def test_mariadb_zero_dates_travel_as_text_never_as_null(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    source = make_backend("mariadb")
    source.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE)")
    source.execute("SET SESSION sql_mode = ''")
    source.execute("INSERT INTO t VALUES (1, '2024-02-29'), (2, '0000-00-00'), (3, '2024-00-10')")
    sent, held = _export(source, tmp_path / "src")
    assert held == {}
    assert {k: v[1] for k, v in sent.items()} == {
        1: dt.date(2024, 2, 29),
        2: "0000-00-00",
        3: "2024-00-10",
    }
    pg = make_backend("postgresql")
    pg.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE)")
    refused = _import(pg, tmp_path / "src" / "out.pkg", tmp_path / "pg")
    assert set(refused) == {2, 3}, refused
    assert pg.query("SELECT id FROM t") == [(1,)]


SQLITE_TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, b BOOLEAN, d DATE)"
PG_TABLE = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, b BOOLEAN, d DATE)"


def test_postgresql_infinity_and_bc_dates_travel_as_they_are(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """psqlODBC reads date 'infinity' as today's date, timestamp 'infinity' as 9999-12-31
    and a BC date as an AD one: read as text they stay what they are."""
    table = "CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ)"
    source = make_backend("postgresql")
    source.execute(table)
    source.execute(
        "INSERT INTO t VALUES (1, 'infinity', 'infinity', '-infinity'),"
        " (2, '0044-03-15 BC', '0044-03-15 12:00 BC', '2024-06-01 12:00+02')"
    )
    sent, held = _export(source, tmp_path / "src")
    assert held == {}
    assert sent[1][1:] == ("infinity", "infinity", "-infinity")
    assert sent[2][1:3] == ("0044-03-15 BC", "0044-03-15 12:00:00 BC")
    assert sent[2][3] == dt.datetime(2024, 6, 1, 10, tzinfo=dt.UTC)
    dest = make_backend("postgresql")
    dest.execute(table)
    assert _import(dest, tmp_path / "src" / "out.pkg", tmp_path / "pg") == {}
    text = "SELECT id, d::text, ts::text, tz::text FROM t ORDER BY id"
    assert dest.query(text) == source.query(text)
    maria = make_backend("mariadb")
    maria.execute("CREATE TABLE t (id INT PRIMARY KEY, d DATE, ts DATETIME, tz DATETIME)")
    assert set(_import(maria, tmp_path / "src" / "out.pkg", tmp_path / "maria")) == {1, 2}


def test_an_unsigned_64_bit_integer_is_refused_where_it_cannot_fit_naming_its_column(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """MariaDB's BIGINT UNSIGNED holds up to 2**64 - 1; PostgreSQL's BIGINT does not. The
    row is refused at the Siège with the table, the column and why — not a driver overflow
    naming nothing — and the rows that fit are stored exactly."""
    source = make_backend("mariadb")
    source.execute("CREATE TABLE t (id INT PRIMARY KEY, n BIGINT UNSIGNED)")
    source.execute(f"INSERT INTO t VALUES (1, {2**63 - 1}), (2, {2**64 - 1})")
    sent, held = _export(source, tmp_path / "src")
    assert held == {} and sent[2][1] == 2**64 - 1
    pg = make_backend("postgresql")
    pg.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n BIGINT)")
    refused = _import(pg, tmp_path / "src" / "out.pkg", tmp_path / "pg")
    assert set(refused) == {2}, refused
    assert "colonne n" in refused[2] and "64 bits" in refused[2], refused
    assert pg.query("SELECT id, n FROM t") == [(1, 2**63 - 1)]
    same = make_backend("mariadb")
    same.execute("CREATE TABLE t (id INT PRIMARY KEY, n BIGINT UNSIGNED)")
    assert _import(same, tmp_path / "src" / "out.pkg", tmp_path / "same") == {}
    assert same.query("SELECT id, n FROM t ORDER BY id") == [(1, 2**63 - 1), (2, 2**64 - 1)]


def test_fixed_width_text_with_trailing_spaces_is_refused_naming_its_column(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """A CHAR(n) column does not keep trailing spaces as sent: MariaDB drops them when it
    reads, PostgreSQL pads to n and drops them when read as text (which is how a value is
    read and compared). Such a text is refused up front naming the table and the column;
    a shorter text without them is stored and read back as it was sent."""
    source = make_backend("sqlite")
    source.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, c TEXT)")
    source.execute("INSERT INTO t VALUES (1, 'abcde'), (2, 'ab'), (3, 'abcd ')")
    _sent, held = _export(source, tmp_path / "src")
    assert held == {}
    for kind, table in (
        ("postgresql", "CREATE TABLE t (id INTEGER PRIMARY KEY, c CHAR(5))"),
        ("mariadb", "CREATE TABLE t (id INT PRIMARY KEY, c CHAR(5))"),
    ):
        dest = make_backend(kind)
        dest.execute(table)
        refused = _import(dest, tmp_path / "src" / "out.pkg", tmp_path / kind)
        assert set(refused) == {3}, (kind, refused)
        assert "colonne c" in refused[3] and "espaces" in refused[3], (kind, refused)
        assert dest.query("SELECT id FROM t ORDER BY id") == [(1,), (2,)]
