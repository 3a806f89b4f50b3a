"""The database ends an apply's whole transaction itself: nothing of it is kept, the run
says why, and the next import applies the package exactly once (rules 1 and 3).

- **MariaDB, a real deadlock**: another session (a shop's program) holds a row the
  import's rows refer to, then asks for a row the import has written; InnoDB breaks the
  cycle by rolling back the transaction that wrote less: the import's, whole.
- **SQLite, a real full disk**: the Siège's database file lives on a tmpfs of 1 MB; SQLite
  ends the transaction when it cannot spill its cache.
- **The state database's disk fills** after the user's database committed.

Before the fix the driver's error inside a savepoint was taken for a refused row: the rows
were then written one by one *outside* any transaction (MariaDB began a new one, SQLite
ran in autocommit). Measured: MariaDB said "applied, 3,000 rows" and held 500 (the
snapshot held all 3,000: the next capture would have sent 2,500 deletes to every site);
SQLite left 8,000 of 40,000 rows committed and said "cannot commit - no transaction is
active" (kind database, not disk); the full state disk said "cannot rollback - no
transaction is active", an internal error. A real ``python`` process imports, as the
service would; the database and the disk are real.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import Backend, need_pyodbc
from conftest import require
from engine_helpers import checksums, make_node
from test_faults_kill_servers import DDL, WAIT_S, finish, package, start
from test_locked_table import TABLE_T, import_guarded, sqlite_t

from synchro.errors import ErrorKind, TransactionLost, kind_of


def import_in_child(home: Path, connection: str, path: Path) -> subprocess.Popen[str]:
    return start(home, connection, path)  # the child of the kill tests: it says its error


def outcome(proc: subprocess.Popen[str]) -> dict[str, object]:
    """What the child said: its import's status, or the error it met and its kind."""
    code, out, err = finish(proc)
    assert code == 0, err[-3000:]
    found: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return found


def then_applied_once(home: Path, connection: str, path: Path, site_db: str) -> None:
    """What must hold after the failed import: nothing left of it, and a new import (a new
    process) applies the package (``applied_once``)."""
    with make_node(home, "HQ", connection, hq=True) as node:
        assert node.state.intent() is None
        assert node.state.quarantined() == []
    again = outcome(import_in_child(home, connection, path))
    assert again["status"] == "applied", again
    applied_once(home, connection, path, site_db)


def applied_once(home: Path, connection: str, path: Path, site_db: str) -> None:
    """The Siège holds the establishment's rows, its change log each of them once, nothing
    is quarantined or left as an intent, a third import is a duplicate."""
    expected = checksums(site_db)
    assert checksums(connection, expected) == expected
    rows = sum(count for count, _ in expected.values())
    with make_node(home, "HQ", connection, hq=True) as node:
        logged = node.state.conn.execute(
            "SELECT count(*), count(DISTINCT tbl || key_json) FROM changelog"
        )
        assert logged.fetchone() == (rows, rows)  # each row once
        assert node.state.quarantined() == [] and node.state.intent() is None
        assert node.import_package(path).status == "duplicate"


# -- MariaDB: a deadlock the server breaks by rolling the import back -------------------------

PARENTS = "CREATE TABLE p (id INTEGER PRIMARY KEY, name VARCHAR(50))"
CHILDREN = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL REFERENCES p(id),"
    " txt VARCHAR(100))"
)
ROWS = 3000  # six batches of 500; the last 500 refer to parent 2


def parents_and_children(root: Path) -> tuple[Path, str]:
    """An establishment's package: parents 1 and 2, 3,000 children (the last 500 of
    parent 2); and its database."""
    db = root / "site.db"
    conn = sqlite3.connect(db)
    conn.execute(PARENTS)
    conn.execute(CHILDREN)
    conn.executemany("INSERT INTO p VALUES (?, ?)", [(1, "un"), (2, "deux")])
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(i, 1 if i <= ROWS - 500 else 2, f"ligne {i} é😀") for i in range(1, ROWS + 1)],
    )
    conn.commit()
    conn.close()
    with make_node(root, "S1", str(db)) as node:
        return node.export().path, str(db)


WAITING = {
    # InnoDB refreshes INNODB_TRX only when it was not read for 0.1 s: polled every 0.12 s.
    "mysql": "SELECT count(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'",
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    " AND datname = current_database()",
}
CHILD_TABLE = {
    "mysql": "CREATE TABLE t (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, txt VARCHAR(100),"
    " FOREIGN KEY (pid) REFERENCES p(id)) ENGINE=InnoDB",
    "postgresql": CHILDREN,
}


def wait_for_lock_wait(monitor: Any, dialect: str) -> None:
    """Until a session of the database waits for a lock."""
    for _ in range(int(WAIT_S / 0.12)):
        if monitor.execute(WAITING[dialect]).fetchone()[0]:
            return
        time.sleep(0.12)
    pytest.fail("the import never waited for the row another session holds")


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_deadlock_that_rolls_the_import_back_keeps_nothing_and_is_applied_next_time(
    name: str, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """The shop's program holds parent 2, which the import's last children need, then
    writes a row the import has written. The server picks the import as the deadlock's
    victim: InnoDB rolls back the transaction that wrote less (the program wrote 20,000
    rows elsewhere first), PostgreSQL aborts the session that finds the cycle (the
    program's own check comes after a minute). MariaDB ends the whole transaction;
    PostgreSQL only the statement, but a deadlock is no row's fault either: the apply is
    undone whole, not the row set aside, and made again a second later (``engine.lost``),
    once the program has ended its transaction: the package applied once, at the second
    try."""
    path, site_db = parents_and_children(tmp_path)
    backend = make_backend(name)
    backend.execute(PARENTS + (" ENGINE=InnoDB" if backend.dialect == "mysql" else ""))
    backend.execute(CHILD_TABLE[backend.dialect])
    backend.execute("CREATE TABLE other (id INTEGER PRIMARY KEY)")
    backend.execute("INSERT INTO p VALUES (1, 'un'), (2, 'deux')")
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=False)
    monitor = pyodbc.connect(backend.connection, autocommit=True)
    home = tmp_path / "hq"
    home.mkdir()
    try:
        if backend.dialect == "postgresql":
            shop.execute("SET deadlock_timeout = '60s'")
        shop.execute("INSERT INTO other VALUES " + ", ".join(f"({i})" for i in range(20000)))
        shop.execute("SELECT * FROM p WHERE id = 2 FOR UPDATE").fetchall()
        proc = import_in_child(home, backend.connection, path)
        wait_for_lock_wait(monitor, backend.dialect)  # 2,500 children written, waits for p 2
        shop.execute("INSERT INTO t VALUES (10, 1, 'le programme')")  # waits: the cycle
        left = monitor.execute("SELECT count(*) FROM t").fetchone()[0]
        assert left == 0, f"the rolled back import left {left} rows"
        shop.rollback()  # the program ends its transaction: the import's second try goes
        done = outcome(proc)
        assert done == {"status": "applied", "rows": ROWS, "attempts": 2}, done
    finally:
        shop.close()
        monitor.close()
    applied_once(home, backend.connection, path, site_db)


# -- SQLite and the state database: a full disk (a real tmpfs) ------------------------------


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A disk of ``size`` that fills up: a tmpfs mounted on ``folder``, unmounted on exit."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        require("a small disk for the test is a tmpfs: mounting one needs Linux and root")
    folder.mkdir()
    options = ["-t", "tmpfs", "-o", f"size={size}", "synchro-test", str(folder)]
    done = subprocess.run(["mount", *options], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        require(f"a tmpfs cannot be mounted here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=20)


def grow(disk: Path, size: str) -> None:
    """Room made on the disk (the user freed space)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True, timeout=20)


def rows_in(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["sqlite", "sqlite-odbc"])
def test_a_full_disk_under_the_database_keeps_nothing_of_the_import_and_says_disk(
    name: str, tmp_path: Path
) -> None:
    """The package (40,000 rows, ~3.5 MB of database) does not fit on a disk of 1 MB:
    SQLite fails while spilling its cache and ends the transaction; the import keeps
    nothing and says the disk. It kept 8,000 rows, committed outside any transaction;
    through the SQLite ODBC driver, once that was mended, its next tries on the same
    connection ran in autocommit (the driver never knew its transaction had ended) and
    kept 11,500: the connection is now opened again."""
    path, site_db = package(tmp_path, 40000)
    with small_disk(tmp_path / "disk", "1m") as disk:
        db = disk / "hq.db"
        conn = sqlite3.connect(db)
        conn.execute(DDL["sqlite"])
        conn.close()
        connection = str(db)
        if name == "sqlite-odbc":
            need_pyodbc(name)
            connection = f"DRIVER={{SQLite3}};Database={db}"
        home = tmp_path / "hq"
        home.mkdir()
        failed = outcome(import_in_child(home, connection, path))
        assert failed.get("error") == "TransactionLost" and failed["kind"] == "disk", failed
        assert rows_in(db) == 0
        with make_node(home, "HQ", connection, hq=True) as node:
            for _ in range(2):  # on the same connection again, as the Siège's service does
                with pytest.raises(TransactionLost) as lost:
                    node.import_package(path)
                assert lost.value.kind is ErrorKind.DISK and rows_in(db) == 0
        grow(disk, "64m")
        then_applied_once(home, connection, path, site_db)


@pytest.mark.parametrize("room_kb", [600, 2500])
def test_a_full_disk_under_the_state_database_is_said_and_the_apply_redone(
    room_kb: int, tmp_path: Path
) -> None:
    """The state database's disk has room for the intent, not for the snapshot and change
    log of 20,000 rows: with 600 kB it fills while the apply runs (the user's database
    then keeps nothing), with 2,500 kB when the state commits after the user's database
    (which keeps it all). The error is the disk's (with 600 kB it was "cannot rollback -
    no transaction is active", an internal error), and the next import, with room made,
    records every row once."""
    path, site_db = package(tmp_path, 20000)
    db = tmp_path / "hq.db"
    conn = sqlite3.connect(db)
    conn.execute(DDL["sqlite"])
    conn.close()
    with small_disk(tmp_path / "disk", "8m") as home:
        make_node(home, "HQ", str(db), hq=True).close()  # the state database, created
        free = shutil.disk_usage(home).free
        (home / "filler").write_bytes(bytes(free - room_kb * 1024))
        failed = outcome(import_in_child(home, str(db), path))
        assert failed.get("kind") == "disk", failed
        assert "no transaction is active" not in str(failed["text"])
        assert rows_in(db) in (0, 20000)  # all or nothing
        (home / "filler").unlink()
        then_applied_once(home, str(db), path, site_db)


# -- a row the shop's program keeps locked ---------------------------------------------------


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_row_another_program_keeps_locked_is_set_aside_not_waited_for_ever(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shop's program keeps a row locked (a form left open in a transaction): the
    import waits ``odbc.LOCK_WAIT_S`` for it (PostgreSQL waited for ever, the round with
    it), sets that row aside and applies the others; the next run, the lock gone, applies
    it (``retry_quarantined``)."""
    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    site_db = tmp_path / "site.db"
    conn = sqlite_t(site_db, range(1, 11))
    backend = make_backend(name)
    backend.execute(TABLE_T)
    with make_node(tmp_path, "S1", str(site_db)) as site:
        first = site.export().path
        conn.execute("UPDATE t SET txt = 'changée' WHERE id IN (5, 6)")
        conn.commit()
        second = site.export().path
    conn.close()
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=False)
    try:
        with make_node(tmp_path, "HQ", backend.connection, hq=True) as hq:
            assert hq.import_package(first).status == "applied"
            shop.execute("SELECT * FROM t WHERE id = 5 FOR UPDATE").fetchall()
            result = import_guarded(hq, second, shop, "ROLLBACK")
            assert not isinstance(result, Exception), result
            assert result.stats.quarantined == 1 and result.stats.upserts == 1
            [entry] = hq.state.quarantined()
            assert json.loads(entry["key_json"]) == [5] and "lock" in entry["error"].lower()
            shop.rollback()
            hq.export()  # the next run: its retry applies the row
            assert hq.state.quarantined() == []
    finally:
        shop.close()
    assert checksums(backend.connection) == checksums(str(site_db))


def test_an_import_is_made_again_after_a_lost_transaction_not_after_a_full_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``engine.lost``: a deadlock's ``TransactionLost`` is tried again (up to
    ``LOST_TRIES`` imports in all), a full disk's is not, nor one the user stopped."""
    from synchro.engine import lost
    from synchro.engine.apply_rows import ApplyStats
    from synchro.engine.node_results import ImportResult

    monkeypatch.setattr(lost, "LOST_PAUSE_S", 0.0)
    full = sqlite3.connect(":memory:")
    full.execute("PRAGMA max_page_count = 1")  # a database that cannot grow: SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError) as disk_error:
        full.execute("CREATE TABLE big (v TEXT)")
        full.execute("INSERT INTO big VALUES (?)", ("x" * 10_000,))
    full.close()

    def failing(times: int, cause: BaseException) -> tuple[list[int], Callable[[], ImportResult]]:
        calls: list[int] = []

        def attempt() -> ImportResult:
            calls.append(1)
            if len(calls) <= times:
                error = TransactionLost("la base a annulé toute la transaction")
                error.__cause__ = cause
                raise error
            return ImportResult(None, ApplyStats(), "applied")  # type: ignore[arg-type]

        return calls, attempt

    deadlock = RuntimeError("Deadlock found when trying to get lock")
    calls, attempt = failing(2, deadlock)
    assert lost.again_when_lost(attempt).attempts == 3 and len(calls) == 3
    calls, attempt = failing(3, deadlock)
    with pytest.raises(TransactionLost):
        lost.again_when_lost(attempt)
    assert len(calls) == lost.LOST_TRIES
    calls, attempt = failing(1, disk_error.value)
    with pytest.raises(TransactionLost) as raised:
        lost.again_when_lost(attempt)
    assert raised.value.kind is ErrorKind.DISK and len(calls) == 1
    ioerr = sqlite3.OperationalError("disk I/O error")
    ioerr.sqlite_errorname = "SQLITE_IOERR_WRITE"  # an extended error: its primary is IOERR
    calls, attempt = failing(1, ioerr)
    with pytest.raises(TransactionLost):
        lost.again_when_lost(attempt)
    assert len(calls) == 1 and kind_of(ioerr) is ErrorKind.DISK
    stopped = threading.Event()
    stopped.set()
    calls, attempt = failing(1, deadlock)
    with pytest.raises(TransactionLost):
        lost.again_when_lost(attempt, stopped)
    assert len(calls) == 1
