"""PostgreSQL through psqlODBC: a batch of keys of several columns of integers and texts goes
as one array per column (``db.pg_keys``). The rows read back, read first and deleted by key
are exactly those the typed list (the way before, kept for every other key) finds and
deletes, whatever the text: quotes, backslashes, braces, commas, spaces kept at both ends,
an empty text, « NULL » as a text, all of Unicode's planes, the largest integers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend

from synchro.db import Adapter, open_database
from synchro.db.base import Table
from synchro.db.pg_keys import array_params, array_types
from synchro.db.sql_core import SqlCore

NASTY = [
    "",
    " ",
    "  deux espaces  ",
    '"',
    '""',
    "\\",
    "\\\\",
    '\\"',
    "a,b",
    "{a}",
    "{",
    "}",
    "NULL",
    "null",
    "'",
    "a'b",
    "\t\n\r",
    "Zoé",
    "Ω",
    "😀",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "ヘ",
    "عربي",
    "\u200b",
    "\ufeff",
    "\U0010fffd",
    "e\u0301",
]
INTS = [0, 1, -1, 2**63 - 1, -(2**63), 2**31, -(2**31) - 1]


@pytest.fixture
def db(make_backend: Any) -> Iterator[tuple[Backend, Adapter]]:
    backend = make_backend("postgresql")
    backend.execute(
        "CREATE TABLE k2 (code VARCHAR(40) NOT NULL, n BIGINT NOT NULL, t TEXT NOT NULL,"
        " fixed CHAR(3) NOT NULL, v TEXT, PRIMARY KEY (code, n, t, fixed))"
    )
    adapter = open_database(backend.connection)
    yield backend, adapter
    adapter.close()


def table_of(db: Adapter, name: str) -> Table:
    return next(t for t in db.tables() if t.name == name)


def test_keys_of_every_text_go_as_arrays_and_find_what_the_list_finds(
    db: tuple[Backend, Adapter], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, adapter = db
    table = table_of(adapter, "k2")
    assert array_types(table) is not None
    rng = random.Random(5)
    rows = []
    for i, code in enumerate(NASTY):
        for j, n in enumerate(INTS):
            t = NASTY[(i + j) % len(NASTY)]
            fixed = ["abc", "xyz", "é€ü", "😀😀😀"][(i * j) % 4]
            rows.append((code, n, t, fixed, f"{i}-{j}"))
    with adapter.atomic():
        adapter.upsert(table, rows)
    assert backend.query("SELECT COUNT(*) FROM k2") == [(len(rows),)]
    keys = [r[:4] for r in rows]
    asked = rng.sample(keys, 120) + keys[:10]  # some asked twice
    asked.append(("pas là", 7, "x", "abc"))  # a key with no row
    assert array_params(table, asked) is not None  # this batch goes as arrays
    assert isinstance(adapter, SqlCore)
    assert "unnest(CAST(? AS varchar[])" in adapter.sql.fetch(table, 3, arrays=array_types(table))
    by_arrays = sorted(adapter.fetch(table, asked))
    back = sorted(adapter.read_back(table, asked, raw=True))
    with monkeypatch.context() as listed:  # the typed list: the oracle
        listed.setattr(type(adapter.sql), "key_array_types", lambda self, table: None)
        by_list = sorted(adapter.fetch(table, asked))
        assert sorted(adapter.read_back(table, asked, raw=True)) == back
    wanted = set(asked)
    assert by_arrays == by_list == sorted(r for r in rows if r[:4] in wanted)
    gone = rng.sample(keys, 60)
    with adapter.atomic():
        adapter.delete(table, gone + gone[:5])
    left = sorted(backend.query("SELECT code, n, t, fixed, v FROM k2"))
    assert left == sorted(r for r in rows if r[:4] not in set(gone))


def test_a_value_not_exactly_an_integer_or_a_text_goes_the_usual_way(
    db: tuple[Backend, Adapter],
) -> None:
    """A NUL (PostgreSQL has no text with one) or a value of another type: that batch is a
    typed list, and finds what it finds there; a NULL in a key matches nothing in both."""
    _backend, adapter = db
    table = table_of(adapter, "k2")
    with adapter.atomic():
        adapter.upsert(table, [("a", 1, "t", "abc", "v")])
    assert array_params(table, [("a", 1, "t", "abc")]) == ['{"a"}', '{"1"}', '{"t"}', '{"abc"}']
    assert array_params(table, [("a", True, "t", "abc")]) is None  # a bool is not an int
    assert array_params(table, [("a\x00", 1, "t", "abc")]) is None
    assert array_params(table, [(None, 1, "t", "abc")]) == ["{NULL}", '{"1"}', '{"t"}', '{"abc"}']
    assert adapter.fetch(table, [("a", 1, "t", "abc"), (None, 1, "t", "abc")]) == [
        ("a", 1, "t", "abc", "v")
    ]


def test_only_keys_of_several_integer_and_text_columns_go_as_arrays(
    db: tuple[Backend, Adapter],
) -> None:
    backend, _adapter = db
    backend.execute("CREATE TABLE one (code VARCHAR(9) PRIMARY KEY, v TEXT)")
    backend.execute("CREATE TABLE dated (d DATE NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (d, n))")
    fresh = open_database(backend.connection)
    try:
        assert array_types(table_of(fresh, "one")) is None
        assert array_types(table_of(fresh, "dated")) is None
        assert array_types(table_of(fresh, "k2")) == ("varchar", "int8", "text", "bpchar")
    finally:
        fresh.close()


def test_the_engine_applies_through_the_arrays_exactly(
    db: tuple[Backend, Adapter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An establishment on SQLite sends rows of `(code, n)` keys of every awkward text, then
    changes a third and deletes a seventh; the Siège's PostgreSQL takes every batch's keys
    as arrays (read first, read back, deleted) and holds exactly what was sent: nothing
    quarantined, the same table checksums on both sides (read by another path)."""
    import sqlite3

    from engine_helpers import checksums, make_node

    import synchro.db.sql_core as sql_core

    backend, _adapter = db
    backend.execute(
        "CREATE TABLE ventes (code VARCHAR(40) NOT NULL, n INTEGER NOT NULL, note TEXT,"
        " PRIMARY KEY (code, n))"
    )
    source = tmp_path / "site.db"
    conn = sqlite3.connect(source)
    conn.execute(
        "CREATE TABLE ventes (code VARCHAR(40), n INTEGER, note TEXT, PRIMARY KEY (code, n))"
    )
    rows = [(code, n, f"{code}·{n}") for code in NASTY for n in range(-40, 40)]
    conn.executemany("INSERT INTO ventes VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    went: list[bool] = []
    arrays = sql_core.array_params

    def spied(table: Table, keys: Any) -> Any:
        found = arrays(table, keys)
        went.append(found is not None)
        return found

    monkeypatch.setattr(sql_core, "array_params", spied)
    site = make_node(tmp_path, "S1", str(source))
    hq = make_node(tmp_path, "HQ", backend.connection, hq=True)
    try:
        first = hq.import_package(site.export().path)
        assert (first.status, first.stats.upserts, first.stats.quarantined) == (
            "applied",
            len(rows),
            0,
        )
        conn = sqlite3.connect(source)
        conn.execute("UPDATE ventes SET note = note || ' modifiée' WHERE n % 3 = 0")
        conn.execute("DELETE FROM ventes WHERE n % 7 = 0")
        conn.commit()
        conn.close()
        second = hq.import_package(site.export().path)
        assert second.status == "applied" and second.stats.quarantined == 0
        assert second.stats.deletes == sum(1 for r in rows if r[1] % 7 == 0)
        assert went and all(went)
        assert checksums(str(source)) == checksums(backend.connection, ["ventes"])
    finally:
        site.close()
        hq.close()
