"""The stdlib SQLite adapter: discovery, upsert, delete, fetch, scans, transactions."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from backends import Backend, create_sample_schema

from synchro.db import is_odbc, open_database
from synchro.db.doing import act
from synchro.db.sqlite import SqliteAdapter
from synchro.errors import DatabaseError

SCHEMA = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent,"
    " amount DECIMAL(12,2), day DATE, at DATETIME, ok BOOLEAN, data BLOB)",
    "CREATE TABLE pair (a TEXT NOT NULL, b INTEGER NOT NULL, v TEXT, PRIMARY KEY (a, b))",
    "CREATE TABLE uniq (code TEXT NOT NULL UNIQUE, v TEXT)",
    "CREATE TABLE nokey (v TEXT)",
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteAdapter]:
    adapter = SqliteAdapter(str(tmp_path / "x.db"))
    with adapter.atomic():
        for sql in SCHEMA:
            adapter._run(sql, [], act("write", "t")).close()
    yield adapter
    adapter.close()


def test_is_odbc() -> None:
    assert is_odbc("DSN=compta")
    assert is_odbc("Driver={SQLite3};Database=/x.db")
    assert is_odbc("server=a;database=b")
    assert not is_odbc("/data/synchro.db")
    assert not is_odbc("C:\\data\\base=1.db")


def test_open_database_sqlite(tmp_path: Path) -> None:
    with open_database(str(tmp_path / "y.db")) as adapter:
        assert adapter.dialect == "sqlite"
        assert "SQLite" in adapter.description


def test_sqlite_path_does_not_import_pyodbc(tmp_path: Path) -> None:
    code = (
        "import sys; from synchro.db import open_database; "
        f"a = open_database({str(tmp_path / 'z.db')!r}); a.tables(); a.close(); "
        "assert 'pyodbc' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_discovery(db: SqliteAdapter) -> None:
    tables = {t.name: t for t in db.tables()}
    assert sorted(tables) == ["child", "nokey", "pair", "parent", "uniq"]
    child = tables["child"]
    assert child.key == ("id",) and child.key_source == "primary"
    assert child.kinds == ("int", "int", "decimal", "date", "datetime", "bool", "blob")
    assert child.foreign_keys[0].ref_table == "parent"
    assert child.foreign_keys[0].columns == ("parent_id",)
    assert child.foreign_keys[0].ref_columns == ("id",)
    assert tables["pair"].key == ("a", "b")
    assert tables["uniq"].key == ("code",) and tables["uniq"].key_source == "unique"
    assert tables["nokey"].key == () and tables["nokey"].key_source == ""


def test_round_trip_and_upsert(db: SqliteAdapter) -> None:
    tables = {t.name: t for t in db.tables()}
    row = (
        1,
        7,
        Decimal("1234.50"),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 1, 2, 3, 4, 5),
        True,
        b"\x00\xff",
    )
    with db.atomic():
        db.upsert(tables["parent"], [(7, "Zoé 😀")])
        db.upsert(tables["child"], [row, (2, 7, None, None, None, False, None)])
    assert list(db.scan(tables["child"])) == [row, (2, 7, None, None, None, False, None)]
    with db.atomic():
        db.upsert(tables["child"], [(2, 7, Decimal("0.10"), None, None, True, b"")])
    assert db.fetch(tables["child"], [(2,), (99,)]) == [
        (2, 7, Decimal("0.1"), None, None, True, b"")
    ]
    with db.atomic():
        db.delete(tables["child"], [(1,), (42,)])
    assert db.count(tables["child"]) == 1


def test_rollback_and_savepoint(db: SqliteAdapter) -> None:
    parent = next(t for t in db.tables() if t.name == "parent")
    with pytest.raises(RuntimeError), db.atomic():
        db.upsert(parent, [(1, "a")])
        raise RuntimeError
    assert db.count(parent) == 0
    with db.atomic():
        db.upsert(parent, [(1, "a")])
        with pytest.raises(DatabaseError), db.savepoint():
            db.upsert(parent, [(2, "b")])
            db.upsert(parent, [(3, None)])  # NOT NULL
    assert list(db.scan(parent)) == [(1, "a")]


def test_failed_commit_rolls_back(tmp_path: Path) -> None:
    db = SqliteAdapter(str(tmp_path / "d.db"))
    with db.atomic():
        db._run("CREATE TABLE p (id INTEGER PRIMARY KEY)", [], act("schema")).close()
        db._run(
            "CREATE TABLE c (id INTEGER PRIMARY KEY,"
            " p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
            [],
            act("schema"),
        ).close()
    c = next(t for t in db.tables() if t.name == "c")
    with pytest.raises(DatabaseError, match="validation"), db.atomic():
        db.upsert(c, [(1, 99)])  # refused only at COMMIT
    assert db.count(c) == 0
    with db.atomic():  # the connection is usable again
        db.upsert(c, [(2, None)])
    assert db.count(c) == 1
    db.close()


def test_stdlib_and_odbc_discover_the_same_tables(make_backend: Callable[[str], Backend]) -> None:
    backend = make_backend("sqlite-odbc")
    create_sample_schema(backend)
    with open_database(backend.database) as stdlib, open_database(backend.connection) as odbc:
        assert odbc.dialect == stdlib.dialect == "sqlite"
        assert odbc.tables() == stdlib.tables()


# SQLite's own text-to-number conversion (3.40, Debian 12) lands one double away from the
# nearest for about 1 decimal in 50,000: each of these, bound as text, was stored as
# 98.08095900000001, 29.962865999999998... (found by a soak of mixed back ends: the
# verified read-back quarantined the row at the SQLite establishment, every round).
OFF_BY_ONE_AS_TEXT = [
    "98.080959",
    "29.962866",
    "1.042601",
    "136.890428",
    "-4476108.736546",
    "2931506.366102",
    "1422902.192744",
    "597969845.122428",
]


@pytest.mark.parametrize("name", ["sqlite", "sqlite-odbc"])
def test_decimals_are_stored_as_the_nearest_double(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    """What the adapter writes into a DECIMAL column is read back by stdlib ``sqlite3``
    (another path than the one that wrote, for the ODBC back end another driver) as the
    double nearest to the decimal, in a column key and in a plain column."""
    backend = make_backend(name)
    backend.execute("CREATE TABLE d (k DECIMAL(20,6) PRIMARY KEY, v DECIMAL(20,6))")
    values = [Decimal(text) for text in OFF_BY_ONE_AS_TEXT]
    with open_database(backend.connection) as adapter:
        [table] = [t for t in adapter.tables() if t.name == "d"]
        with adapter.atomic():
            adapter.insert(table, [(v, v) for v in values])
        assert len(list(adapter.fetch(table, [(v,) for v in values]))) == len(values)
    stored = backend.query("SELECT k, v, typeof(k), typeof(v) FROM d ORDER BY k")
    assert stored == [(float(v), float(v), "real", "real") for v in sorted(values)]


# Doubles SQLite 3.40's printf('%!.17g') prints one step away (its digits come from long
# double arithmetic): found by the soak, the row quarantined at the SQLite ODBC node as
# "stored differently", every round. 2,757 of 1,000,000 random doubles print so with 17
# digits, none with 18 or 20.
PRINTED_OFF_WITH_17_DIGITS = [
    1.0063722416530248e300,
    1.1904423514176442e216,
    1.4695348732492558e305,
    1.2699574009182103e284,
    -2.665013245785095e303,
    -1.2234559435016964e260,
]


def test_sqlite_odbc_reads_every_double_exactly(make_backend: Callable[[str], Backend]) -> None:
    """Doubles written by stdlib ``sqlite3`` (another driver) come back exactly through the
    SQLite ODBC adapter: scanned (what capture sends), fetched and read back (what the
    verified apply compares)."""
    backend = make_backend("sqlite-odbc")
    backend.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, x DOUBLE)")
    values = [*PRINTED_OFF_WITH_17_DIGITS, 5e-324, 1.7976931348623157e308, 0.1, -1 / 3]
    for i, x in enumerate(values):
        backend.execute("INSERT INTO r VALUES (?, ?)", (i, x))
    expected = [(i, x) for i, x in enumerate(values)]
    with open_database(backend.connection) as adapter:
        [table] = [t for t in adapter.tables() if t.name == "r"]
        assert list(adapter.scan(table, ordered=True)) == expected
        keys = [(i,) for i in range(len(values))]
        assert sorted(adapter.fetch(table, keys)) == expected
        assert sorted(adapter.read_back(table, keys)) == expected


# Doubles an SQLite application makes in a DECIMAL column with SQLite's own arithmetic or
# binds from its floats: their shortest text has 16 or 17 significant digits.
COMPUTED_IN_SQLITE = ["0.1 + 0.2", "100 * 1.1", "CAST('98.080959' AS NUMERIC)", "1.0 / 3"]
BOUND_AS_DOUBLES = [1.7976931348623157e308, 5e-324, -2.2250738585072014e-308, 2.0 / 3]


@pytest.mark.parametrize("columnar", [False, True], ids=["row-scan", "columnar-scan"])
@pytest.mark.parametrize(
    "pair", [("sqlite", "sqlite"), ("sqlite", "sqlite-odbc"), ("sqlite-odbc", "sqlite")]
)
def test_doubles_an_sqlite_decimal_column_holds_travel_to_sqlite_exactly(
    pair: tuple[str, str],
    columnar: bool,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A double of 16-17 significant digits in an SQLite DECIMAL column (0.1 + 0.2 computed
    by the shop's application) is read as its shortest text and written to an SQLite
    receiver as that same double. It was refused there ("17 chiffres significatifs"), every
    round, so an all-SQLite group never converged on such rows."""
    from engine_helpers import checksums, columnar_from_one_row, make_node

    if columnar:
        columnar_from_one_row(monkeypatch)
    source, receiver = make_backend(pair[0]), make_backend(pair[1])
    for backend in (source, receiver):
        backend.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, v DECIMAL(12,2))")
    for i, expression in enumerate(COMPUTED_IN_SQLITE):
        source.execute(f"INSERT INTO d VALUES ({i}, {expression})")
    for i, double in enumerate(BOUND_AS_DOUBLES, start=len(COMPUTED_IN_SQLITE)):
        source.execute("INSERT INTO d VALUES (?, ?)", (i, double))
    held = source.query("SELECT id, v, typeof(v) FROM d ORDER BY id")
    assert {t for _, _, t in held} == {"real"} and len(held) == 8
    with make_node(tmp_path / "s", "S1", source.connection) as node:
        package = node.export(tmp_path / "out.pkg").path
    with make_node(tmp_path / "h", "SIEGE", receiver.connection, hq=True) as hq:
        stats = hq.import_package(package).stats
        quarantined = hq.state.conn.execute("SELECT key_json, error FROM quarantine").fetchall()
    assert quarantined == [] and stats.upserts == 8
    assert receiver.query("SELECT id, v, typeof(v) FROM d ORDER BY id") == held
    assert checksums(receiver.connection) == checksums(source.connection)


# A value of each storage class in columns of each declared type (SQLite keeps what it is
# given when its column's affinity cannot convert it).
STORED = [
    7,
    4.5,
    0.1 + 0.2,
    -2.2250738585072014e-308,
    1.7976931348623157e308,
    5e-324,
    1e999,
    9007199254740993,
    2**63 - 1,
    "abc",
    "",
    "12,5",
    "Inf",
    "2024-02-29 10:00:00.123456",
    "10:00:00.5",
    "Zoé 😀 " + "é" * 40_000,
    b"\x00\x01",
    b"\xff",
    None,
]
DECLARED = ["INTEGER", "DECIMAL(12,2)", "DOUBLE", "BOOLEAN", "DATE", "DATETIME", "TIME", "TEXT"]


def test_stdlib_and_odbc_read_every_stored_value_the_same(
    make_backend: Callable[[str], Backend],
) -> None:
    """The SQLite ODBC adapter reads what stdlib ``sqlite3`` reads, by every read (capture's
    scan, fetch, verification's read-back), whatever the value's storage class and the
    column's declared type. Its driver changed such values in silence: 4.5 in an INTEGER
    column came as 4, 'abc' there as NULL, 5 in a BOOLEAN as true, the time of a datetime
    in a DATE column was dropped, a blob in a TEXT column came as the text "X'FF00'", a
    DECIMAL's REAL with 15 digits (0.1 + 0.2 as 0.3), a text in a DOUBLE column as 0.0
    (printf), and after a first integer 2.5 came as 2: changed values sent, and checksums
    read the same way agreed with them."""
    backend = make_backend("sqlite-odbc")
    columns = ", ".join(f"c{i} {t}" for i, t in enumerate(DECLARED))
    backend.execute(f"CREATE TABLE n (id INTEGER PRIMARY KEY, {columns})")
    marks = ", ".join("?" * len(DECLARED))
    for i, value in enumerate(STORED):
        backend.execute(f"INSERT INTO n VALUES (?, {marks})", (i, *[value] * len(DECLARED)))
    classes = backend.query("SELECT DISTINCT typeof(c0), typeof(c2), typeof(c7) FROM n")
    assert {c for row in classes for c in row} == {"integer", "real", "text", "blob", "null"}
    keys = [(i,) for i in range(len(STORED))]
    reads = {}
    for connection in (backend.database, backend.connection):
        with open_database(connection) as adapter:
            [table] = [t for t in adapter.tables() if t.name == "n"]
            scanned = list(adapter.scan(table, ordered=True))
            assert sorted(adapter.fetch(table, keys)) == scanned
            reads[connection] = (scanned, sorted(adapter.read_back(table, keys)))
    stdlib, odbc = reads[backend.database], reads[backend.connection]
    assert stdlib[0][1][:4] == (1, 4.5, Decimal("4.5"), 4.5)
    assert stdlib[0][2][2] == Decimal("0.30000000000000004")
    assert stdlib[0][9][:2] == (9, "abc") and stdlib[0][16][1:] == (b"\x00\x01",) * 8
    assert odbc[0] == stdlib[0]
    # The read-back reads text as the hex of its bytes: a blob in a TEXT column is no text.
    blobs = {16, 17}
    assert [r for r in odbc[1] if r[0] not in blobs] == [r for r in stdlib[1] if r[0] not in blobs]
