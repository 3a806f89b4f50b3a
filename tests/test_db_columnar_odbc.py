"""``synchro.db.columnar_odbc``: PostgreSQL and MariaDB tables read through arrow-odbc, every
value exactly as the adapter reads it, or not read in columns at all.

Against the real servers through their real ODBC drivers:
- the fidelity catalogue: each table is either read in columns with the row engine's very
  digests, or refused (the refused ones are named: a change there shows here);
- what arrow-odbc would lose if left to the driver's report (psqlODBC's double precision
  read as a 4-byte float) is read exactly, and a change below a 4-byte float's precision
  is captured through the columnar scan;
- a text cut by the driver (MariaDB's cuts in silence into a short buffer; only the
  length check sees it) and an error of the reader fail the read as ``NotExact``;
  the checksum and the capture then read the table row by row, and say the same;
- the capture of a big table through the columnar scan sends exactly the changed rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import Db, columnar_from_one_row, spy_tables
from fidelity_helpers import TABLES, create_tables, write_each

from synchro.db import columnar, columnar_odbc
from synchro.db.dialects import Dialect
from synchro.engine.checksum import table_checksum
from synchro.values import row_hasher

pytest.importorskip("arrow_odbc", reason="arrow-odbc is not installed")
pytest.importorskip("pyarrow", reason="pyarrow is not installed")

SERVERS = ("postgresql", "mariadb")
# Catalogue tables read row by row, and why (db/columnar_odbc.py): unbounded text, json
# and blobs (their buffers), 4-byte floats (the adapter's own read-back rule).
REFUSED = {
    "postgresql": {"fid_text", "fid_single", "fid_json", "fid_blob"},
    "mariadb": {"fid_text", "fid_single", "fid_json", "fid_blob"},
}


def _columnar_digests(db: Db, name: str) -> list[bytes] | None:
    table = db.tables[name]
    batches = db.adapter.arrow_batches(table, ordered=True)
    if batches is None:
        return None
    return [d for _arrays, digests in columnar.digested(table, batches) for d in digests]


@pytest.mark.parametrize("name", SERVERS)
def test_catalogue_is_read_exactly_or_refused(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(name)
    create_tables(backend)
    refused: set[str] = set()
    read = 0
    with Db(backend.connection) as db:
        assert db.adapter.arrow_ready()
        for k in TABLES:
            table = db.tables[f"fid_{k.name}"]
            write_each(db, table.name, [(i, v.value) for i, v in enumerate(k.values)])
            rows = list(db.adapter.scan(table, ordered=True))
            got = _columnar_digests(db, table.name)
            if got is None:
                refused.add(table.name)
                continue
            hasher = row_hasher(tuple(table.kinds))
            assert got == [hasher(r) for r in rows], (name, table.name, rows)
            read += len(rows)
    assert refused == REFUSED[name]
    assert read > 40


def _ventes(backend: Backend) -> None:
    backend.execute(
        "CREATE TABLE ventes (site VARCHAR(10) NOT NULL, num INTEGER NOT NULL, "
        "montant DECIMAL(12,2), taux DOUBLE PRECISION, note VARCHAR(200), "
        "PRIMARY KEY (site, num))"
    )


@pytest.mark.parametrize("name", SERVERS)
def test_a_double_is_read_as_a_double_and_a_text_cut_by_the_driver_is_not_taken(
    name: str, make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(name)
    _ventes(backend)
    rows = [
        ("S1", 1, Decimal("-0.01"), 1 / 3, "abc"),  # first a text that fits 8 bytes
        ("S1", 2, Decimal("12.34"), 0.1 + 2**-40, "Ø😀é中 " * 20),
        ("S1", 3, Decimal("0.00"), 0.0, ""),
        ("S2", 1, None, None, None),
    ]
    with Db(backend.connection) as db:
        db.write("ventes", rows)
        table = db.tables["ventes"]
        hasher = row_hasher(tuple(table.kinds))
        assert _columnar_digests(db, "ventes") == [
            hasher(r) for r in db.adapter.scan(table, ordered=True)
        ]
        expected = table_checksum(db.adapter, table)
        # The reader's text buffers made too short for the values (8 bytes): psqlODBC
        # reports the cut and arrow-odbc fails; MariaDB's driver, once a first value has
        # fitted, cuts the next ones in silence, and only the length check sees it. Either
        # way the read fails as a whole, and the checksum (read in columns from one row on)
        # falls back to rows.
        real_plan = columnar_odbc.plan
        monkeypatch.setattr(
            columnar_odbc, "plan", lambda *a: dataclasses.replace(real_plan(*a), text_bytes=8)
        )
        batches = db.adapter.arrow_batches(table, ordered=True)
        assert batches is not None
        cut = "mal lu" if name == "mariadb" else "too large"
        with pytest.raises(columnar.NotExact, match=cut):
            list(batches)
        monkeypatch.setattr(columnar, "COLUMNAR_FROM", 1)
        used = spy_tables(monkeypatch, columnar, "digested")
        assert table_checksum(db.adapter, table) == expected
        assert used == ["ventes"]  # the columnar read was tried, then the rows read


@pytest.mark.parametrize("name", SERVERS)
def test_a_table_another_program_keeps_locked_fails_the_read_soon(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    """Another program keeps the table locked (PostgreSQL ``ACCESS EXCLUSIVE``, MariaDB
    ``LOCK TABLES … WRITE``): the columnar read gives up after ``LOCK_WAIT_S`` with
    ``NotExact`` (the row path, which a stop can cancel, then reads the table). It
    used to wait as long as the lock: for ever on PostgreSQL, a day on MariaDB, and a
    stop could not cut arrow-odbc's wait."""
    backend = make_backend(name)
    _ventes(backend)
    with Db(backend.connection) as db:
        db.write("ventes", [("S1", 1, Decimal("1.00"), 0.5, "a")])
        table = db.tables["ventes"]
        batches = db.adapter.arrow_batches(table, ordered=True)
        assert batches is not None
        if name == "mariadb":
            backend.execute("LOCK TABLES ventes WRITE")
        else:
            backend.execute("BEGIN")
            backend.execute("LOCK TABLE ventes IN ACCESS EXCLUSIVE MODE")
        ended: list[str] = []

        def read() -> None:
            try:
                list(batches)
                ended.append("read")
            except columnar.NotExact as exc:
                ended.append(str(exc))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(columnar_odbc.LOCK_WAIT_S + 20)
        waiting = reader.is_alive()
        backend.execute("UNLOCK TABLES" if name == "mariadb" else "COMMIT")
        reader.join(60)
    assert not waiting, "the columnar read still waited for the lock"
    assert len(ended) == 1 and "lock" in ended[0].lower(), ended  # 55P03 / 1205


def test_the_reader_s_lock_wait_is_bounded_unless_the_user_bounds_it() -> None:
    """The reader's connection string: the user's, with the driver's attribute that runs
    the statement bounding lock waits; none when the user's string sets it already."""
    pg = "DRIVER={PostgreSQL Unicode};Server=127.0.0.1;Database=x;"
    assert columnar_odbc.arrow_connection("postgresql", pg) == (
        pg + "ConnSettings={SET lock_timeout = '2s'}"
    )
    maria = "DRIVER={MariaDB Unicode};Server=127.0.0.1"
    assert columnar_odbc.arrow_connection("mysql", maria) == (
        maria + ";InitStmt={SET lock_wait_timeout = 2, innodb_lock_wait_timeout = 2}"
    )
    assert columnar_odbc.arrow_connection("postgresql", pg + "a6={SET search_path=x}") is None
    assert columnar_odbc.arrow_connection("mysql", maria + "; INITSTMT = {SET x=1}") is None


@pytest.mark.parametrize("name", SERVERS)
def test_the_longest_bounded_text_of_four_byte_characters(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    """``varchar(TEXT_LIMIT)`` filled with characters of 4 UTF-8 bytes (2 UTF-16 units):
    the reader's buffers hold them whole (the length check would fail the read otherwise,
    never give a cut value)."""
    backend = make_backend(name)
    n = columnar_odbc.TEXT_LIMIT
    backend.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR({n}))")
    values = ["😀" * n, "é" * n, "中" * n, "a" * n, "𝄞Ø" * (n // 2)]
    with Db(backend.connection) as db:
        db.write("t", list(enumerate(values)))
        table = db.tables["t"]
        rows = list(db.adapter.scan(table, ordered=True))
        assert [r[1] for r in rows] == values
        hasher = row_hasher(tuple(table.kinds))
        assert _columnar_digests(db, "t") == [hasher(r) for r in rows]


def test_mariadb_is_read_in_key_ordered_pages_without_a_row_lost_or_twice(
    make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MariaDB Connector/ODBC 3.1.15 keeps a whole result in memory, so the reader pages by
    key (``Dialect.page_rows``, here 2 rows). Each key's text parameter is cast back to
    its type (MariaDB compares an integer with text as doubles, which cannot tell 2**62 + 1
    from 2**62 + 2); text in byte order, decimals and microseconds cross page boundaries."""
    monkeypatch.setattr(Dialect, "page_rows", property(lambda self: 2))
    queries: list[str] = []
    real_read = columnar_odbc._read

    def counted(*args: Any) -> Any:
        queries.append(args[4])
        return real_read(*args)

    monkeypatch.setattr(columnar_odbc, "_read", counted)
    backend = make_backend("mariadb")
    backend.execute(
        "CREATE TABLE k (site VARCHAR(10) NOT NULL, num BIGINT NOT NULL, v DECIMAL(12,2), "
        "PRIMARY KEY (site, num))"
    )
    backend.execute(
        "CREATE TABLE dk (d DECIMAL(30,10) NOT NULL, t DATETIME(6) NOT NULL, n INTEGER, "
        "PRIMARY KEY (d, t))"
    )
    big = 2**62
    k_rows = [(site, big + i, Decimal(i)) for site in ("B", "a", "é", "😀", "Ø") for i in (1, 2, 3)]
    moment = dt.datetime(1969, 12, 31, 23, 59, 59)
    dk_rows = [
        (Decimal("12345678901234567890.0000000001") + i, moment + dt.timedelta(microseconds=j), i)
        for i in range(3)
        for j in (1, 2, 3)
    ]
    with Db(backend.connection) as db:
        db.write("k", k_rows)
        db.write("dk", dk_rows)
        for name, count in (("k", 15), ("dk", 9)):
            table = db.tables[name]
            rows = list(db.adapter.scan(table, ordered=True))
            assert len(rows) == count
            hasher = row_hasher(tuple(table.kinds))
            queries.clear()
            assert _columnar_digests(db, name) == [hasher(r) for r in rows], name
            assert len(queries) == count // 2 + 1  # a page of 2 rows a query, the last short
            assert all(" LIMIT 2" in q for q in queries)


def _export_rows(node: Any) -> list[tuple[str, tuple[Any, ...]]]:
    from synchro.package import open_package

    result = node.export()
    reader = open_package(result.path, node.keys())
    return sorted((c.op, c.values) for c in reader.changes())


@pytest.mark.parametrize("name", SERVERS)
def test_capture_of_a_big_table_through_the_columnar_scan(
    name: str,
    make_backend: Callable[[str], Backend],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from synchro.config.model import Config, Role
    from synchro.engine.nodes import build_node

    backend = make_backend(name)
    _ventes(backend)
    base = [("S1", i, Decimal(i) / 100, i + 0.5, f"vente {i} — Ø") for i in range(1, 301)]
    with Db(backend.connection) as db:
        db.write("ventes", base)
    scanned = columnar_from_one_row(monkeypatch)
    config = Config(role=Role("serveur"), site="A")
    with build_node(
        config, tmp_path / "a.state", tmp_path / "out", connection=backend.connection
    ) as node:
        assert len(_export_rows(node)) == 300  # snapshot empty: the row path
        assert scanned == []
        tiny = 7.5 + 2**-40  # a 4-byte float read gives 7.5 both times: the change lost
        backend.execute("UPDATE ventes SET taux = ? WHERE num = 7", (tiny,))
        with Db(backend.connection) as db:  # the adapter writes 4-byte characters right
            db.write("ventes", [("S1", 8, Decimal("0.08"), 8.5, "vente 8 — Ø😀")])
        backend.execute("UPDATE ventes SET montant = ? WHERE num = 9", (Decimal("0.10"),))
        backend.execute("DELETE FROM ventes WHERE num = 10")
        changes = _export_rows(node)
        assert scanned == ["ventes"]
        assert [(op, v[1]) for op, v in changes] == [("D", 10), ("U", 7), ("U", 8), ("U", 9)]
        updated = {v[1]: v for op, v in changes if op == "U"}
        assert updated[7][3] == tiny
        assert updated[8][4] == "vente 8 — Ø😀"
        assert updated[9][2] == Decimal("0.10")
        assert _export_rows(node) == []  # and nothing more the next time
