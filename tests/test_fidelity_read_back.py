"""``Adapter.read_back``: what the verified apply reads after a write.

- On every back end (stdlib SQLite, SQLite ODBC, PostgreSQL, MariaDB), a row stored
  correctly reads back with the hash of what was sent (every value of the fidelity
  catalogue the back end holds).
- It does not go through the driver's character conversion: with MariaDB's broken wide
  character path switched back on, ``fetch`` reads cut texts while ``read_back`` still
  reads the stored bytes, so the damage cannot be read back as "equal".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from backends import BACKENDS, Backend, need_pyodbc
from engine_helpers import Db
from fidelity_helpers import D8DB, TABLES, create_tables, write_each

from synchro.db import open_database
from synchro.db.odbc_connect import utf8mb4_connection
from synchro.values import normalise, row_hasher


@pytest.mark.parametrize("name", BACKENDS)
def test_read_back_of_a_stored_row_hashes_as_what_was_sent(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(name)
    create_tables(backend)
    with Db(backend.connection) as db:
        checked = 0
        for k in TABLES:
            table = db.tables[f"fid_{k.name}"]
            rows = [(i, v.value) for i, v in enumerate(k.values)]
            refused = write_each(db, table.name, rows)
            sent = {
                i: (i, normalise(table.kinds[1], value)) for i, value in rows if i not in refused
            }
            hash_row = row_hasher(table.kinds)
            back = db.adapter.read_back(table, [(i,) for i in sent])
            assert len(back) == len(sent), table.name
            for row in back:
                assert hash_row(row) == hash_row(sent[row[0]]), (name, table.name, row[0])
                checked += 1
        assert checked > 60


def test_read_back_does_not_read_through_the_drivers_character_conversion(
    make_backend: Callable[[str], Backend],
) -> None:
    backend = make_backend("mariadb")
    pyodbc = need_pyodbc("mariadb")
    create_tables(backend, [k for k in TABLES if k.name == "text"])
    texts = [(1, "Último Pau-De-Arara"), (2, D8DB), (3, "abc")]
    with Db(backend.connection) as db:
        db.write("fid_text", texts)
        table = db.tables["fid_text"]
        # The driver's UTF-16 path, as pyodbc uses it by default: it cuts these texts.
        db.adapter._conn.setdecoding(pyodbc.SQL_WCHAR, encoding="utf-16le")  # type: ignore[attr-defined]
        keys = [(i,) for i, _ in texts]
        fetched = dict(db.adapter.fetch(table, keys))
        assert fetched[1] != texts[0][1]  # the damage this test is about, still there
        assert dict(db.adapter.read_back(table, keys)) == dict(texts)


def test_mariadb_session_is_utf8mb4_whatever_charset_the_connection_names(
    make_backend: Callable[[str], Backend],
) -> None:
    """With ``CHARSET=latin1`` the narrow UTF-8 bytes were stored double-encoded (Ã‰) and
    read back as "equal" by the same connection: the adapter reconnects in utf8mb4."""
    backend = make_backend("mariadb")
    backend.execute(
        "CREATE TABLE t (id INTEGER NOT NULL PRIMARY KEY,"
        " v VARCHAR(50) CHARACTER SET latin1, w TEXT CHARACTER SET utf8mb4)"
    )
    latin = backend.connection.replace("CHARSET=utf8mb4", "CHARSET=latin1")
    assert "CHARSET=latin1" in latin
    adapter = open_database(latin)
    try:
        (table,) = adapter.tables()
        with adapter.atomic():
            adapter.upsert(table, [(1, "Élève Ú", "Último 😀 ヘ")])
    finally:
        adapter.close()
    assert backend.query("SELECT HEX(v), HEX(w) FROM t") == [
        ("Élève Ú".encode("latin-1").hex().upper(), "Último 😀 ヘ".encode().hex().upper())
    ]


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("DRIVER={MariaDB Unicode};SERVER=h;CHARSET=latin1;DATABASE=d", "CHARSET=utf8mb4"),
        ("DRIVER={MariaDB Unicode};charset = utf8 ;DATABASE=d", "charset = utf8mb4;"),
        ("DRIVER={MariaDB Unicode};SERVER=h", "SERVER=h"),
    ],
)
def test_utf8mb4_connection(given: str, used: str) -> None:
    assert used in utf8mb4_connection(given)
