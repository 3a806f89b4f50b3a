"""Every adapter operation on every back end: stdlib SQLite, SQLite ODBC, PostgreSQL, MariaDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from backends import Backend, create_sample_schema

from synchro.db import Adapter, Table, open_database
from synchro.db.dialects import Dialect
from synchro.db.generic import SqlAdapter
from synchro.errors import DatabaseError, TransactionLost

KINDS_ROW = (
    1,
    -42,
    Decimal("1234567890.12"),
    "Zoé à l'hôtel 😀 — «ok»",
    dt.date(2024, 2, 29),
    dt.datetime(2024, 12, 31, 23, 59, 58),
    True,
    None,
    b"\x00\x01\xffblob",
    1.5,
    dt.time(13, 45, 7),
    dt.datetime(2025, 1, 1, 0, 0, 0),
)
TEXT_KEYS = ["abc", "Zoé", "Émile", "10", "9", "a b", "ab", "z", "Ω", "😀", "_x", "-1"]


@pytest.fixture
def db(backend: Backend) -> Iterator[Adapter]:
    create_sample_schema(backend)
    adapter = open_database(backend.connection)
    yield adapter
    adapter.close()


def typed(rows: list[tuple[object, ...]]) -> list[list[tuple[str, object]]]:
    """Rows with each value's type name: True == 1 and Decimal("1.5") == 1.5 in Python."""
    return [[(type(v).__name__, v) for v in row] for row in rows]


def tables(db: Adapter) -> dict[str, Table]:
    return {t.name: t for t in db.tables()}


def test_discovery(backend: Backend, db: Adapter) -> None:
    assert db.dialect == backend.dialect
    assert db.description
    backend.execute("INSERT INTO parent (id, name) VALUES (?, ?)", (1, "été"))
    assert backend.query("SELECT id, name FROM parent") == [(1, "été")]
    found = tables(db)
    assert sorted(found) == sorted(["parent", "child", "pair", "kinds", "textkey", "uniq", "nokey"])
    assert found["parent"].key == ("id",) and found["parent"].key_source == "primary"
    assert found["pair"].key == ("site", "num") and found["pair"].key_source == "primary"
    assert found["uniq"].key == ("code",) and found["uniq"].key_source == "unique"
    assert found["nokey"].key == () and found["nokey"].key_source == ""
    fks = found["child"].foreign_keys
    assert [(f.columns, f.ref_table, f.ref_columns) for f in fks] == [
        (("parent_id",), "parent", ("id",))
    ]
    kinds = found["kinds"]
    assert kinds.column_names == (
        "id", "i", "amount", "label", "day", "at", "flag", "note", "data", "ratio", "t", "changed"
    )  # fmt: skip
    assert kinds.kinds == (
        "int", "int", "decimal", "text", "date", "datetime", "bool", "text", "blob", "float",
        "time", "datetime",
    )  # fmt: skip
    nullable = {c.name: c.nullable for c in kinds.columns}
    assert not nullable["id"] and nullable["note"]


def test_values_round_trip(db: Adapter) -> None:
    kinds = tables(db)["kinds"]
    other = (2, 0, Decimal("-0.05"), "", dt.date(1999, 1, 1), dt.datetime(2000, 1, 1), False)
    other += ("x", b"", -2.25, dt.time(0, 0), None)
    # Long values go to the drivers in pieces (SQLPutData): MariaDB's TEXT holds 65535 bytes.
    large = (4, None, None, "é😀x" * 9000, None, None, None, None, bytes(range(256)) * 4000)
    large += (None, None, None)
    nulls = (3, *([None] * 11))
    with db.atomic():
        db.upsert(kinds, [KINDS_ROW, other, nulls, large])
    assert typed(list(db.scan(kinds))) == typed([KINDS_ROW, other, nulls, large])
    assert db.fetch(kinds, [(3,), (1,), (99,)]) in ([KINDS_ROW, nulls], [nulls, KINDS_ROW])


def test_upsert_updates_and_delete(db: Adapter) -> None:
    pair = tables(db)["pair"]
    rows = [("3615", n, n * 10) for n in range(1, 6)] + [("75", 1, None)]
    with db.atomic():
        db.upsert(pair, rows)
    with db.atomic():
        db.upsert(pair, [("3615", 2, 999), ("75", 2, 7)])
        db.delete(pair, [("3615", 1), ("3615", 5), ("nope", 1)])
    assert db.count(pair) == 5
    got = sorted(db.scan(pair, ordered=False))
    assert got == [
        ("3615", 2, 999),
        ("3615", 3, 30),
        ("3615", 4, 40),
        ("75", 1, None),
        ("75", 2, 7),
    ]
    assert sorted(db.fetch(pair, [("75", 2), ("3615", 3), ("3615", 1)])) == [
        ("3615", 3, 30),
        ("75", 2, 7),
    ]


def test_composite_keys_of_every_kind_fetch_and_delete_exactly(
    backend: Backend, db: Adapter
) -> None:
    """Keys of several columns and kinds, fetched and deleted by the hundred (PostgreSQL
    takes them as a typed VALUES list, ``Dialect.table_keys_condition``): every key found
    once even when asked twice, non-ASCII text keys, decimals, dates before 1900 and
    datetimes before 1970 match. (A key its column could not hold is refused before any
    SQL, by the binder.)"""
    i, dec, _text, date, dtm, *_ = (
        ["INTEGER", "DECIMAL(12,2)", "TEXT", "DATE", "TIMESTAMP"]
        if backend.dialect == "postgresql"
        else ["INTEGER", "DECIMAL(12,2)", "TEXT", "DATE", "DATETIME"]
    )
    backend.execute(
        f"CREATE TABLE ck (code VARCHAR(20) NOT NULL, n {i} NOT NULL, amount {dec} NOT NULL,"
        f" day {date} NOT NULL, at {dtm} NOT NULL, v {i}, PRIMARY KEY (code, n, amount, day, at))"
        + (" ENGINE=InnoDB" if backend.dialect == "mysql" else "")
    )
    table = next(t for t in db.tables() if t.name == "ck")
    if backend.dialect == "postgresql":
        assert isinstance(db, SqlAdapter) and "(VALUES (CAST(" in db.sql.fetch(table, 2)
    base = dt.datetime(1969, 7, 20, 20, 17, 40)
    rows = [
        (
            TEXT_KEYS[n % len(TEXT_KEYS)],
            n,
            Decimal(n) / 4,
            dt.date(1901, 1, 1) + dt.timedelta(n),
            base + dt.timedelta(hours=n),
            n * 3,
        )
        for n in range(300)
    ]
    rows = [(c, n, a.quantize(Decimal("0.01")), d, t, v) for c, n, a, d, t, v in rows]
    with db.atomic():
        db.upsert(table, rows)
    keys = [r[:5] for r in rows]
    asked = keys[::2] + keys[:20:2]  # ten keys asked twice
    got = db.fetch(table, asked)
    assert sorted(got) == sorted(rows[::2])
    with db.atomic():
        db.delete(table, keys[::3] + keys[:9:3])  # three of them twice
    assert db.count(table) == 300 - len(keys[::3])
    assert db.fetch(table, [keys[1]]) == [rows[1]]


def test_many_rows_batched(db: Adapter) -> None:
    parent = tables(db)["parent"]
    rows = [(i, f"nom {i}") for i in range(2345)]
    with db.atomic():
        db.upsert(parent, rows)
    assert db.count(parent) == 2345
    assert list(db.scan(parent)) == rows
    keys = [(i,) for i in range(0, 2345, 2)]
    assert len(db.fetch(parent, keys)) == len(keys)
    with db.atomic():
        db.delete(parent, keys)
    assert db.count(parent) == 2345 - len(keys)


def test_ordered_scan_is_python_order(db: Adapter) -> None:
    table = tables(db)["textkey"]
    with db.atomic():
        db.upsert(table, [(k, i) for i, k in enumerate(TEXT_KEYS)])
    assert [r[0] for r in db.scan(table)] == sorted(TEXT_KEYS)
    pair = tables(db)["pair"]
    rows = [(s, n, None) for s in ("b", "B", "a") for n in (10, 2, -1)]
    if db.dialect == "mysql":  # case-insensitive collation: "b" and "B" are one key there
        rows = [r for r in rows if r[0] != "B"]
    with db.atomic():
        db.upsert(pair, rows)
    assert list(db.scan(pair)) == sorted(rows)
    assert list(db.scan(pair, columns=["num"])) == [(r[1],) for r in sorted(rows)]


def test_modified_filter(db: Adapter) -> None:
    kinds = tables(db)["kinds"]
    rows = [(i, i, None, None, None, None, None, None, None, None, None) for i in range(1, 6)]
    rows = [(*r, dt.datetime(2025, 3, i, 12, 0, 0)) for i, r in enumerate(rows, start=1)]
    with db.atomic():
        db.upsert(kinds, rows)
    since = dt.datetime(2025, 3, 3, 12, 0, 0)
    got = db.scan(kinds, columns=["id"], modified_column="changed", modified_since=since)
    assert list(got) == [(3,), (4,), (5,)]


def test_savepoint_undoes_only_its_block(db: Adapter) -> None:
    found = tables(db)
    parent, child = found["parent"], found["child"]
    with db.atomic():
        db.upsert(parent, [(1, "un")])
        with pytest.raises(DatabaseError) as info, db.savepoint():
            db.upsert(parent, [(2, "deux")])
            db.upsert(child, [(1, 404, "orphelin")])  # foreign key violation
        assert "child" in str(info.value)
        db.upsert(child, [(2, 1, "ok")])
    assert list(db.scan(parent)) == [(1, "un")]
    assert list(db.scan(child)) == [(2, 1, "ok")]


def test_a_savepoint_first_in_its_transaction_undoes_only_its_block(db: Adapter) -> None:
    """The block the engine's apply opens first (rows of new keys INSERTed at once, no
    SELECT before): a duplicate key refused, the transaction goes on. psqlODBC lost such a
    savepoint at the error (« savepoint does not exist »): the whole transaction failed."""
    parent = tables(db)["parent"]
    with db.atomic():
        db.insert(parent, [(1, "un")])
    with db.atomic():
        with pytest.raises(DatabaseError) as info, db.savepoint():
            db.insert(parent, [(2, "deux"), (1, "encore")])
        assert not isinstance(info.value, TransactionLost)
        db.insert(parent, [(3, "trois")])
    assert list(db.scan(parent)) == [(1, "un"), (3, "trois")]


def test_rollback_and_refused_row(db: Adapter) -> None:
    parent = tables(db)["parent"]
    with pytest.raises(RuntimeError), db.atomic():
        db.upsert(parent, [(1, "un"), (2, "deux")])
        raise RuntimeError("stop")
    assert db.count(parent) == 0
    with pytest.raises(DatabaseError) as info, db.atomic():
        db.upsert(parent, [(1, "un")])
        db.upsert(parent, [(2, None)])  # NOT NULL
    assert "parent" in str(info.value)
    assert db.count(parent) == 0


def test_config_key_upsert_updates_in_place(db: Adapter) -> None:
    nokey = tables(db)["nokey"].with_key(["v"], "config")
    with db.atomic():
        db.upsert(nokey, [("a", 1), ("b", 2)])
    with db.atomic():
        db.upsert(nokey, [("a", 1), ("b", 3), ("c", None)])  # same, changed, new
        db.delete(nokey, [("c",)])
    assert sorted(db.scan(nokey, ordered=False)) == [("a", 1), ("b", 3)]


def test_cautious_dialect_path(db: Adapter) -> None:
    """The MS Access path (no multi-row VALUES, no upsert, sort in Python) on a real base."""
    assert isinstance(db, SqlAdapter)
    db.sql = Dialect("access", db.sql.quote_char)
    found = tables(db)
    table, pair = found["textkey"], found["pair"]
    with db.atomic():
        db.upsert(table, [(k, i) for i, k in enumerate(TEXT_KEYS)])
        db.upsert(table, [("abc", 100)])
        db.upsert(pair, [("x", 1, 1), ("x", 2, 2), ("y", 1, 3)])
        db.delete(pair, [("x", 2), ("y", 1), ("z", 9)])
    assert [r[0] for r in db.scan(table)] == sorted(TEXT_KEYS)
    values = [r[0] for r in db.scan(table, columns=["v"])]
    assert values[sorted(TEXT_KEYS).index("abc")] == 100
    assert db.fetch(pair, [("x", 1), ("y", 1)]) == [("x", 1, 1)]


class SmallPages(Dialect):
    page_rows = 3  # type: ignore[assignment]


def test_keyset_pages_keep_python_order(db: Adapter) -> None:
    """The paged scan (used on MariaDB) on every back end, with pages of 3 rows."""
    assert isinstance(db, SqlAdapter)
    found = tables(db)
    table, pair, kinds = found["textkey"], found["pair"], found["kinds"]
    rows = [(s, n, n) for s in ("b", "a", "é", "😀") for n in (10, 2, -1)]
    with db.atomic():
        db.upsert(table, [(k, i) for i, k in enumerate(TEXT_KEYS)])
        db.upsert(pair, rows)
        db.upsert(kinds, [(i, *([None] * 10), dt.datetime(2025, 1, i)) for i in range(1, 11)])
    db.sql = SmallPages(db.sql.name, db.sql.quote_char)
    assert [r[0] for r in db.scan(table)] == sorted(TEXT_KEYS)
    assert list(db.scan(pair)) == sorted(rows)
    assert list(db.scan(pair, columns=["qty"], modified_column="qty", modified_since=2)) == [
        (r[2],) for r in sorted(rows) if r[2] >= 2
    ]
    since = dt.datetime(2025, 1, 4)
    got = db.scan(kinds, columns=["changed"], modified_column="changed", modified_since=since)
    assert [r[0].day for r in got] == list(range(4, 11))


@pytest.mark.parametrize(
    ("name", "column_type", "stored"),
    [
        ("postgresql", "TIMESTAMPTZ", dt.datetime(2025, 1, 2, 12, 0, tzinfo=dt.UTC)),
        ("mariadb", "DATETIME", dt.datetime(2025, 1, 2, 12, 0, 0)),
    ],
)
def test_modified_filter_bound_the_column_would_refuse_is_widened(
    make_backend: Any, name: str, column_type: str, stored: dt.datetime
) -> None:
    """A naive watermark on a timestamptz column (local time), a watermark with
    microseconds on a DATETIME without fractions: the filter works instead of failing."""
    backend = make_backend(name)
    backend.execute(f"CREATE TABLE m (id INTEGER NOT NULL PRIMARY KEY, at {column_type})")
    adapter = open_database(backend.connection)
    try:
        (table,) = [t for t in adapter.tables() if t.name == "m"]
        with adapter.atomic():
            adapter.upsert(table, [(1, stored), (2, None)])
        since = dt.datetime(2025, 1, 1, 0, 0, 0, 500000)
        rows = list(adapter.scan(table, modified_column="at", modified_since=since))
        assert [r[0] for r in rows] == [1]
    finally:
        adapter.close()


def test_mariadb_session_is_strict_even_on_a_lenient_server(make_backend: Any) -> None:
    """A server whose sql_mode is not strict stores '?' for an emoji in a utf8mb3 column
    and clamps 70000 to 32767 with a warning: the adapter's session refuses them."""
    backend = make_backend("mariadb")
    backend.execute(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) CHARACTER SET utf8mb3, s SMALLINT)"
    )
    lenient = backend.connection + ";INITSTMT=SET SESSION sql_mode=''"
    adapter = open_database(lenient)
    try:
        (table,) = adapter.tables()
        for row in [(1, "emoji 😀", None), (2, None, 70000)]:
            with pytest.raises(DatabaseError, match="table t"), adapter.atomic():
                adapter.upsert(table, [row])
        assert adapter.fetch(table, [(1,), (2,)]) == []
    finally:
        adapter.close()


def test_discovery_sees_a_widened_column_on_the_same_connection(make_backend: Any) -> None:
    """A long-lived adapter (the Siège's service): a value refused by VARCHAR(5) is
    written after ``ALTER TABLE`` widens the column and ``tables()`` runs again."""
    backend = make_backend("mariadb")
    backend.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5))")
    adapter = open_database(backend.connection)
    try:
        (table,) = adapter.tables()
        with pytest.raises(DatabaseError, match="colonne v"), adapter.atomic():
            adapter.upsert(table, [(1, "abcdefgh")])
        backend.execute("ALTER TABLE t MODIFY v VARCHAR(50)")
        (table,) = adapter.tables()
        with adapter.atomic():
            adapter.upsert(table, [(1, "abcdefgh")])
        assert adapter.fetch(table, [(1,)]) == [(1, "abcdefgh")]
    finally:
        adapter.close()


def test_refusal_reads_the_column_types_again_without_discovery(make_backend: Any) -> None:
    """A caller that keeps its ``Table`` (a Node kept open, its retry of quarantined rows)
    still sees a column widened since: a refusal reads the types again, once per table
    and transaction, before it is final."""
    backend = make_backend("mariadb")
    backend.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5))")
    adapter = open_database(backend.connection)
    try:
        (table,) = adapter.tables()
        with pytest.raises(DatabaseError, match="colonne v"), adapter.atomic():
            adapter.upsert(table, [(1, "abcdefgh")])
        backend.execute("ALTER TABLE t MODIFY v VARCHAR(50)")
        with adapter.atomic():
            adapter.upsert(table, [(1, "abcdefgh")])
        assert adapter.fetch(table, [(1,)]) == [(1, "abcdefgh")]
        with pytest.raises(DatabaseError, match="colonne v"), adapter.atomic():
            adapter.upsert(table, [(2, "x" * 51)])  # still refused when it does not fit
    finally:
        adapter.close()
