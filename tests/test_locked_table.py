"""A table another program keeps locked, on the server back ends (the shop's program runs
a ``LOCK TABLES``, a long report holding a share lock).

Before: MariaDB waited for a table lock as long as its ``lock_wait_timeout`` (a year by
default) — the import, and the round with it, hung until the other program let go; and
where a statement did give up (``odbc.LOCK_WAIT_S``), the apply tried every row of the
batch again on its own, each waiting as long (500 rows × 50 s). Now every wait gives up
after ``LOCK_WAIT_S``, and two rows in a row that waited in vain set the rest of the table
aside for the next run (``engine.apply``), which applies them once the lock is gone.

Real PostgreSQL and MariaDB through their ODBC drivers; the lock is taken on the real
server by another connection, as the shop's program would.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend, need_pyodbc
from engine_helpers import checksums, db, make_node

from synchro.errors import DatabaseError
from synchro.gui_backend import quarantine_line

ROWS = 200  # waited for one by one at LOCK_WAIT_S = 1, a guard of GUARD_S would fail
GUARD_S = 60.0  # a guard against a hang, not a figure: the bounded apply takes ~3 s
LOCKS = {
    "mariadb": ("LOCK TABLES t READ", "UNLOCK TABLES"),  # reads go on, writes wait
    "postgresql": ("LOCK TABLE t IN SHARE MODE", "ROLLBACK"),
}


def import_guarded(node: Any, path: Path, shop: Any, release: str) -> Any:
    """``node.import_package(path)``, guarded (``guarded``)."""
    return guarded(lambda: node.import_package(path), shop, release)


def guarded(work: Callable[[], Any], shop: Any, release: str) -> Any:
    """``work()`` in a thread; the lock released (``release`` on the shop's connection, so
    the test does not hang with it) and the test failed if it is still running after
    ``GUARD_S`` — a guard against a hang, not a figure. Its result, or the
    ``DatabaseError`` it raised."""
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(work())
        except DatabaseError as exc:
            results.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(GUARD_S)
    if worker.is_alive():
        shop.execute(release)
        worker.join()
        pytest.fail(f"the import was still waiting after {GUARD_S:.0f} s")
    return results[0]


TABLE_T = "CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(100))"  # on every back end


def sqlite_t(path: Path, ids: range) -> sqlite3.Connection:
    """An SQLite file at ``path`` holding ``TABLE_T`` with the rows ``ids`` (« ligne N »),
    committed; its connection, for the changes the test makes next."""
    conn = sqlite3.connect(path)
    conn.execute(TABLE_T)
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"ligne {i}") for i in ids])
    conn.commit()
    return conn


def site_packages(tmp_path: Path, changes: str) -> tuple[Path, Path]:
    """A site's first package (ROWS rows) and a second one made after ``changes``."""
    site_db = tmp_path / "site.db"
    conn = sqlite_t(site_db, range(ROWS))
    with make_node(tmp_path, "S1", str(site_db)) as site:
        first = site.export().path
        conn.executescript(changes)
        second = site.export().path
    conn.close()
    return first, second


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_table_kept_locked_is_set_aside_not_waited_for_row_by_row(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    backend = make_backend(name)
    backend.execute(TABLE_T)
    first, second = site_packages(tmp_path, "UPDATE t SET txt = txt || ' changée';")
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=name == "mariadb")
    lock, release = LOCKS[name]
    try:
        with make_node(tmp_path, "HQ", backend.connection, hq=True) as hq:
            assert hq.import_package(first).status == "applied"
            shop.execute(lock)
            result = import_guarded(hq, second, shop, release)
            assert not isinstance(result, Exception), result
            assert result.stats.quarantined == ROWS and result.stats.upserts == 0
            aside = hq.state.quarantined()
            assert {e["kind"] for e in aside} == {"locked"}
            assert "verrouillée par un autre programme" in quarantine_line(aside[0], "fr")
            guarded(lambda: hq.export(), shop, release)  # the next run, still locked: its
            assert len(hq.state.quarantined()) == ROWS  # retry does not wait row by row
            shop.execute(release)
            hq.export()  # the lock gone, the retry applies every row
            assert hq.state.quarantined() == []
    finally:
        shop.close()
    assert checksums(backend.connection) == checksums(str(tmp_path / "site.db"))


def test_mariadb_gives_up_on_a_table_locked_for_writing(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LOCK TABLES t WRITE`` by the shop's program: even the import's reads wait. It used
    to wait a year (MariaDB's metadata-lock wait); then it failed after ``LOCK_WAIT_S``.
    Now the apply's read of the rows it writes over is a locking read (the rows locked
    until it commits, ``Dialect.locking``), and its wait given up sets the table's rows
    aside as any write's does, saying why; the next run applies them once the lock is
    gone."""
    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    backend = make_backend("mariadb")
    backend.execute(TABLE_T)
    first, second = site_packages(tmp_path, "UPDATE t SET txt = 'changée' WHERE id < 5;")
    pyodbc = need_pyodbc("mariadb")
    shop = pyodbc.connect(backend.connection, autocommit=True)
    try:
        with make_node(tmp_path, "HQ", backend.connection, hq=True) as hq:
            assert hq.import_package(first).status == "applied"
            shop.execute("LOCK TABLES t WRITE")
            result = import_guarded(hq, second, shop, "UNLOCK TABLES")
            assert not isinstance(result, Exception), result
            assert result.stats.quarantined == 5 and result.stats.upserts == 0
            aside = hq.state.quarantined()
            assert {e["kind"] for e in aside} == {"locked"}
            assert "verrouillée par un autre programme" in quarantine_line(aside[0], "fr")
            shop.execute("UNLOCK TABLES")
            hq.export()  # the lock gone, the retry applies every row
            assert hq.state.quarantined() == []
    finally:
        shop.close()
    assert checksums(backend.connection) == checksums(str(tmp_path / "site.db"))


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_retry_applies_the_rows_no_other_program_keeps_locked(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shop's program keeps two rows locked: the import sets aside the rows of that
    batch (two waits in vain in a row: the table). The next run, one row still locked:
    its retry applies the others and sets aside only that one (before, the retry's batch
    read gave up and left every row of the batch in the quarantine for one more day).
    The run after, the lock gone, applies it."""
    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    backend = make_backend(name)
    backend.execute(TABLE_T)
    first, second = site_packages(
        tmp_path, "UPDATE t SET txt = 'changée' WHERE id IN (5, 6, 7, 8);"
    )
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=False)
    try:
        with make_node(tmp_path, "HQ", backend.connection, hq=True) as hq:
            assert hq.import_package(first).status == "applied"
            shop.execute("SELECT * FROM t WHERE id IN (5, 6) FOR UPDATE").fetchall()
            result = import_guarded(hq, second, shop, "ROLLBACK")
            assert not isinstance(result, Exception), result
            assert result.stats.quarantined == 4 and result.stats.upserts == 0
            shop.rollback()
            shop.execute("SELECT * FROM t WHERE id = 6 FOR UPDATE").fetchall()
            guarded(lambda: hq.export(), shop, "ROLLBACK")
            [entry] = hq.state.quarantined()
            assert json.loads(entry["key_json"]) == [6] and entry["kind"] == "locked"
            shop.rollback()
            hq.export()  # the lock gone, the retry applies it
            assert hq.state.quarantined() == []
    finally:
        shop.close()
    assert checksums(backend.connection) == checksums(str(tmp_path / "site.db"))


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_row_the_shop_was_changing_is_a_conflict_its_rule_decides(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Siège changed row 5; at site B the shop's program was changing it too (its
    transaction open) when the Siège's package came: the apply gave up waiting and set the
    row aside unread. The shop then committed. The next run's retry finds the row changed
    here: a conflict no one decided, which the table's rule (the Siège's version wins)
    decides now, logging the shop's version as the loser, which does not travel. Before,
    the shop's version was taken for a newer edit: sent to every site, the Siège's dropped
    with no conflict logged — the outcome hung on how long the shop's lock lasted."""
    from test_verified_apply import hq_to

    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    hq_db = tmp_path / "hq.db"
    conn = sqlite_t(hq_db, range(1, 11))
    backend = make_backend(name)
    backend.execute(TABLE_T)
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=False)
    try:
        with (
            make_node(tmp_path, "SIEGE", str(hq_db), hq=True) as hq,
            make_node(tmp_path, "B", backend.connection) as site,
        ):
            hq.export()
            assert hq_to(hq, site, tmp_path).status == "applied"
            conn.execute("UPDATE t SET txt = 'siège' WHERE id = 5")
            conn.commit()
            hq.export()
            shop.execute("UPDATE t SET txt = 'boutique' WHERE id = 5")
            result = guarded(lambda: hq_to(hq, site, tmp_path), shop, "ROLLBACK")
            assert not isinstance(result, Exception), result
            assert result.stats.quarantined == 1 and result.stats.conflicts == 0
            shop.commit()  # the shop's change lands after the apply gave up on it
            out = site.export()
            assert out.manifest.rows == 0  # the loser does not travel
            assert [(r["key_json"], r["outcome"]) for r in out.capture.retried] == [
                ("[5]", "applied")
            ]
            [conflict] = site.state.conflicts()
            assert (conflict["winner"], conflict["loser"]) == ("SIEGE", "B")
            assert "boutique" in conflict["loser_json"]
            assert "siège" in conflict["winner_json"]
            assert site.state.pending() == []
    finally:
        shop.close()
        conn.close()
    assert checksums(backend.connection) == checksums(str(hq_db))


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_at_the_siege_the_shops_version_wins_its_rule_and_travels(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same at the Siège, whose rule keeps its own version: site A's change of row 5
    was set aside unread while the Siège's shop was changing the row; the retry gives
    the Siège's version the win, logs A's as the loser, and the Siège's travels to A."""
    from test_verified_apply import hq_to

    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    backend = make_backend(name)
    backend.execute(TABLE_T)
    first, second = site_packages(tmp_path, "UPDATE t SET txt = 'site' WHERE id = 5;")
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=False)
    try:
        with (
            make_node(tmp_path, "HQ", backend.connection, hq=True) as hq,
            make_node(tmp_path, "S1", str(tmp_path / "site.db")) as site,
        ):
            assert hq.import_package(first).status == "applied"
            shop.execute("UPDATE t SET txt = 'boutique' WHERE id = 5")
            result = import_guarded(hq, second, shop, "ROLLBACK")
            assert not isinstance(result, Exception), result
            assert result.stats.quarantined == 1
            shop.commit()
            out = hq.export()
            assert [(r["key_json"], r["outcome"]) for r in out.capture.retried] == [
                ("[5]", "local-change-wins")
            ]
            [conflict] = hq.state.conflicts()
            assert (conflict["winner"], conflict["loser"]) == ("HQ", "S1")
            assert "boutique" in conflict["winner_json"] and "site" in conflict["loser_json"]
            assert hq_to(hq, site, tmp_path).status == "applied"
    finally:
        shop.close()
    assert checksums(backend.connection) == checksums(str(tmp_path / "site.db"))
    assert db(tmp_path / "site.db", "SELECT txt FROM t WHERE id = 5") == [("boutique",)]
