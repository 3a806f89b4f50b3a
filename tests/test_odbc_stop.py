"""A stop ends a statement that waits for another program's lock on a database server.

Another program (its own connection, through the same real driver) keeps a row locked in
an open transaction. The adapter's UPDATE of that row waits on the server — up to
``odbc.LOCK_WAIT_S`` (50 s) — inside the driver. The program is then asked to stop
(``stopping()`` becomes true, as the service's stop or a SIGTERM of ``sync`` makes it):
the statement is cancelled on the server (``db.statement_watch``), ``Cancelled`` comes
out of the adapter (kind stopped, not a lost connection made again nor a refused row),
nothing of the transaction is kept, and the same adapter works for what follows.
Before, the stop waited the whole 50 s.

A database server that hangs (a server of the tests' own, every process SIGSTOPped: it
takes the connection and never answers the login) kept a stopping program waiting in
``pyodbc.connect`` for the whole ``CONNECT_TIMEOUT`` (15 s): the opening now runs in a
thread of its own (``odbc_connect.Opening``), the stop raises ``Cancelled`` at once, and
the connection made once the server answers again is closed, never left open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from backends import Backend, need_pyodbc
from own_db_servers import OwnServer, own_server
from server_dbs import ServerDb, connect, create_database

from synchro.db import open_database
from synchro.errors import Cancelled, ErrorKind

SERVERS = ["postgresql", "mariadb"]


@pytest.fixture
def locked(make_backend: Callable[[str], Backend], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A table ``t`` whose row 1 another connection keeps locked (update, no commit)."""
    backend = make_backend(request.param)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(20))")
    backend.execute("INSERT INTO t VALUES (1, 'avant'), (2, 'libre')")
    other = need_pyodbc(backend.name).connect(backend.connection, autocommit=False)
    other.cursor().execute("UPDATE t SET v = 'autre' WHERE id = 1")
    try:
        yield backend
    finally:
        other.rollback()
        other.close()


def _update(adapter: Any, key: int, value: str) -> None:
    table = _table(adapter)
    with adapter.atomic():
        adapter.upsert(table, [(2, "changée")])
        adapter.upsert(table, [(key, value)])


@pytest.mark.parametrize("locked", SERVERS, indirect=True)
def test_a_stop_cancels_a_statement_waiting_for_a_lock(locked: Backend) -> None:
    stop = threading.Event()
    adapter = open_database(locked.connection)
    adapter.stopping = stop.is_set
    outcome: list[BaseException | None] = []
    ended = threading.Event()

    def work() -> None:
        try:
            _update(adapter, 1, "nous")
            outcome.append(None)
        except BaseException as exc:  # (any: the test says which)
            outcome.append(exc)
        ended.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        assert not ended.wait(1.5), f"the UPDATE did not wait for the lock: {outcome}"
        stop.set()
        # (a bound on a hang, not a speed figure: bench_stop.py --servers measures it)
        assert ended.wait(10), "the stop did not end the wait (LOCK_WAIT_S is 50 s)"
        (error,) = outcome
        assert isinstance(error, Cancelled), repr(error)
        assert error.kind is ErrorKind.STOPPED
        # nothing of the transaction kept: row 2 as it was, row 1 the other program's
        assert locked.query("SELECT id, v FROM t ORDER BY id") == [(1, "avant"), (2, "libre")]
        stop.clear()  # the same adapter, used again (the next run's work)
        assert sorted(adapter.fetch(_table(adapter), [(2,)])) == [(2, "libre")]
    finally:
        adapter.close()


@pytest.mark.parametrize("locked", SERVERS, indirect=True)
def test_statements_that_do_not_wait_are_not_cancelled_by_a_stop(locked: Backend) -> None:
    """Once the program stops, what still runs without waiting (a quick statement, the
    cleanup) goes through: only a statement still running at the watch's look is
    cancelled."""
    adapter = open_database(locked.connection)
    adapter.stopping = lambda: True
    try:
        with adapter.atomic():
            adapter.upsert(_table(adapter), [(2, "changée")])
        assert locked.query("SELECT v FROM t WHERE id = 2") == [("changée",)]
    finally:
        adapter.close()


def _table(adapter: Any) -> Any:
    return next(t for t in adapter.tables() if t.name == "t")


@pytest.fixture(scope="module", params=SERVERS)
def own(request: pytest.FixtureRequest) -> Iterator[OwnServer]:
    with own_server(request.param) as server:
        yield server


def _sessions(admin: ServerDb, name: str) -> int:
    """Sessions on database ``name`` of ``admin``'s server, but the asking one."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()"
        if admin.kind == "postgresql"
        else "SELECT count(*) FROM information_schema.PROCESSLIST"
        " WHERE db = ? AND id <> CONNECTION_ID()"
    )
    conn = connect(admin)
    try:
        return int(conn.execute(sql, name).fetchone()[0])
    finally:
        conn.close()


def test_a_stop_ends_the_opening_of_a_connection_to_a_server_that_hangs(own: OwnServer) -> None:
    db = create_database(own.kind, own.port)
    stop = threading.Event()
    outcome: list[Any] = []
    ended = threading.Event()

    def work() -> None:
        try:
            outcome.append(open_database(db.connection, stop.is_set))
        except BaseException as exc:  # (any: the test says which)
            outcome.append(exc)
        ended.set()

    own.pause()
    try:
        threading.Thread(target=work, daemon=True).start()
        assert not ended.wait(1.5), f"the opening did not wait for the server: {outcome}"
        stop.set()
        # (a bound on a hang, not a speed figure)
        assert ended.wait(5), "the stop did not end the opening (CONNECT_TIMEOUT is 15 s)"
        (error,) = outcome
        assert isinstance(error, Cancelled), repr(error)
        assert error.kind is ErrorKind.STOPPED
    finally:
        own.resume()
    # the opening left alone ends once the server answers; its connection is closed
    deadline = time.monotonic() + 30
    while _sessions(own.admin, db.name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sessions(own.admin, db.name) == 0
    stop.clear()
    with open_database(db.connection, stop.is_set) as adapter:  # the server back: it opens
        assert adapter.tables() == []
