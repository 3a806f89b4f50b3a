"""Driver errors come out as DatabaseError saying what failed, where, and what to do."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend, need_pyodbc
from smtp_server import unanswered_port

from synchro.db import odbc_connect, open_database
from synchro.db.odbc_connect import hide_secrets
from synchro.errors import DatabaseError, TransactionLost, text_in


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("postgresql", "DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={};UID=postgres"),
        ("mariadb", "DRIVER={{MariaDB Unicode}};SERVER=127.0.0.1;PORT={};USER=root"),
    ],
)
def test_refused_connection_names_the_server(name: str, template: str) -> None:
    need_pyodbc(name)
    port = closed_port()
    with pytest.raises(DatabaseError) as info:
        open_database(template.format(port) + ";PWD=s3cret")
    message = str(info.value)
    assert f"127.0.0.1:{port} injoignable" in message
    assert "s3cret" not in message
    english = text_in(info.value, "en")  # (the English UI's words)
    assert f"server 127.0.0.1:{port} unreachable" in english and "s3cret" not in english


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("postgresql", "DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={};UID=postgres"),
        ("mariadb", "DRIVER={{MariaDB Unicode}};SERVER=127.0.0.1;PORT={};USER=root"),
        ("mariadb", "DSN=synchro_t_maria;PORT={}"),
    ],
)
def test_a_server_that_never_answers_fails_the_opening_within_the_connect_timeout(
    name: str, template: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The database server's machine drops the connection requests (powered off behind
    a switch, a firewall): the opening ends at ``CONNECT_TIMEOUT`` and says the server
    is unreachable. MariaDB Connector/ODBC ignores the login timeout pyodbc sets and
    waited 135 s here (the system's own tries); its ``CONN_TIMEOUT`` bounds it, whether
    the string names the driver or a data source of it."""
    need_pyodbc(name)
    monkeypatch.setattr(odbc_connect, "CONNECT_TIMEOUT", 2)
    ini = tmp_path / "odbc.ini"
    ini.write_text("[synchro_t_maria]\nDriver=MariaDB Unicode\nSERVER=127.0.0.1\nUSER=root\n")
    monkeypatch.setenv("ODBCINI", str(ini))  # (unixODBC reads it at each call)
    with unanswered_port() as port:
        started = time.monotonic()
        with pytest.raises(DatabaseError) as info:
            open_database(template.format(port))
        took = time.monotonic() - started
    assert "injoignable" in str(info.value), str(info.value)
    assert took < 30, took  # (the bound of a hang: the system's own tries last 135 s)


def test_missing_driver_lists_installed_drivers() -> None:
    pyodbc = need_pyodbc("postgresql")
    with pytest.raises(DatabaseError) as info:
        open_database("DRIVER={Pilote Inexistant};DBQ=x")
    assert "Pilotes installés" in str(info.value)
    assert "PostgreSQL Unicode" in str(info.value)
    assert "Installed drivers: " in text_in(info.value, "en")
    assert pyodbc.drivers()
    with pytest.raises(DatabaseError, match="introuvable"):
        open_database("DSN=synchro_absent_dsn")


def test_unknown_database() -> None:
    need_pyodbc("postgresql")
    with pytest.raises(DatabaseError, match="n'existe pas"):
        open_database(
            "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=5432;UID=postgres;"
            "DATABASE=synchro_no_such_base"
        )


def test_sqlite_bad_path(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="chemin"):
        open_database(str(tmp_path / "missing" / "dir" / "x.db"))


def test_hide_secrets() -> None:
    assert hide_secrets("DSN=a;PWD=x;y=1") == "DSN=a;PWD=***;y=1"
    assert hide_secrets("Password={a;b};UID=u") == "Password=***;UID=u"


@pytest.mark.parametrize("name", ["postgresql", "mariadb"])
def test_a_connection_lost_before_discovery_is_an_error_not_an_empty_database(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    """The server ends the adapter's session (a restart, a cut network), then the engine
    lists the tables: that is a DatabaseError saying the connection was lost, never "no
    table" (a run would then have captured nothing and said OK) nor a bare driver error."""
    backend = make_backend(name)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10))")
    adapter = open_database(backend.connection)
    try:
        assert [t.name for t in adapter.tables()] == ["t"]
        end_other_sessions(backend)
        with pytest.raises(DatabaseError, match="connexion perdue"):
            adapter.tables()
        assert [t.name for t in adapter.tables()] == ["t"]  # on a new connection
    finally:
        adapter.close()


def test_mariadb_a_write_to_a_closed_session_is_a_lost_connection_too(
    make_backend: Callable[[str], Backend],
) -> None:
    """MariaDB's driver mostly says 08S01 « Lost connection (2013) » to a request on a
    session the server ended, but at times HY000 « Write error: Broken pipe (5014) » (2
    times in 30, by the timing of the server's close): that one was taken for « this
    driver has no such catalog function », an empty list — no table at all, the first
    failure of the existing test above in a clean run. Asked many times over, every one
    must be the lost connection."""
    backend = make_backend("mariadb")
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10))")
    adapter = open_database(backend.connection)
    said: list[str] = []
    try:
        for _ in range(TRIES):
            assert [t.name for t in adapter.tables()] == ["t"]  # (a new connection)
            end_other_sessions(backend)
            try:
                said.append(f"no error: {[t.name for t in adapter.tables()]}")
            except DatabaseError as exc:
                said.append("lost" if "connexion perdue" in str(exc) else str(exc))
    finally:
        adapter.close()
    assert set(said) == {"lost"}, sorted(set(said))


def test_mariadb_a_catalog_query_the_server_interrupts_is_an_error_not_no_table(
    make_backend: Callable[[str], Backend],
) -> None:
    """A server whose statements have a time limit (``max_statement_time``, set by some
    hosts; the catalog's ``information_schema`` queries are the slow ones on a loaded
    server) interrupts the driver's SQLTables: HY018. That was read as « this driver has
    no such catalog function », an empty list: no table, and a run that captured nothing
    said OK. Only IM001 / HYC00 mean « not offered »."""
    backend = make_backend("mariadb")
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10))")
    adapter = open_database(backend.connection)
    try:
        assert [t.name for t in adapter.tables()] == ["t"]
        limit = "SET SESSION max_statement_time = 0.000001"
        adapter._conn.execute(limit)  # type: ignore[attr-defined]
        with pytest.raises(DatabaseError, match="max_statement_time"):
            adapter.tables()
        adapter._conn.execute("SET SESSION max_statement_time = 0")  # type: ignore[attr-defined]
        assert [t.name for t in adapter.tables()] == ["t"]
    finally:
        adapter.close()


def test_only_a_function_the_driver_lacks_reads_as_nothing() -> None:
    """``odbc_connect.not_offered``: Access's and mdbtools' « Driver does not support this
    function » (IM001) and « Optional feature not implemented » (HYC00), nothing else."""
    pyodbc = need_pyodbc("postgresql")
    lacks = "[IM001] [unixODBC][Driver Manager]Driver does not support this function"
    assert odbc_connect.not_offered(pyodbc.InterfaceError("IM001", lacks))
    assert odbc_connect.not_offered(pyodbc.Error("HYC00", "Optional feature not implemented"))
    for state in ("HY018", "HY000", "HYT00", "08S01", "42000"):
        assert not odbc_connect.not_offered(pyodbc.Error(state, "[x] an error"))


@pytest.mark.parametrize("name", ["postgresql", "mariadb"])
def test_a_connection_the_server_ended_is_made_again_for_the_next_transaction(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    """A Siège's service keeps its database connection for days; the server restarts in
    the night (here: it ends the session). The next transaction begins on a new
    connection. Before, every later transaction failed (« début de la transaction
    impossible »; on MariaDB a raw driver error, « erreur interne ») until the program
    was started again."""
    backend = make_backend(name)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10))")
    adapter = open_database(backend.connection)
    try:
        table = next(t for t in adapter.tables() if t.name == "t")
        end_other_sessions(backend)
        with adapter.atomic():
            adapter.insert(table, [(1, "un")])
        assert backend.query("SELECT id, v FROM t") == [(1, "un")]
    finally:
        adapter.close()


TRIES = 60  # the old code met the broken pipe in ~98 % of such runs (1 - (28/30)^60)


def end_other_sessions(backend: Backend) -> None:
    """The server ends every session on the database but the test's own (a server
    restart, a cut network), then waits until they are gone."""
    if backend.dialect == "postgresql":
        others = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        end = "SELECT pg_terminate_backend({})"
    else:
        others = (
            "SELECT id FROM information_schema.PROCESSLIST WHERE db = DATABASE()"
            " AND id <> CONNECTION_ID()"
        )
        end = "KILL CONNECTION {}"
    ended = backend.query(others)
    assert ended, "no session of the adapter on the server"
    for (ident,) in ended:
        if backend.dialect == "postgresql":
            backend.query(end.format(int(ident)))  # (a SELECT: its row read)
        else:
            backend.execute(end.format(int(ident)))
    deadline = time.monotonic() + 10
    while backend.query(others) and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("name", ["postgresql", "mariadb"])
@pytest.mark.parametrize("where", ["statement", "rollback"])
def test_a_connection_lost_inside_a_transaction_is_a_lost_transaction_then_a_new_one(
    name: str, where: str, make_backend: Callable[[str], Backend]
) -> None:
    """The server ends the adapter's session in the middle of a transaction, between two
    statements that are in no savepoint (an apply writes its rows, then reads them back).
    The next statement meets the lost connection: the transaction is a ``TransactionLost``
    (the import is then made again, ``engine.lost``), nothing of it is kept, and the
    adapter's next transaction runs on a new connection. Before, the statement's error was
    a plain DatabaseError (the package set aside, the round « Echec ») — on MariaDB even the
    rollback's « Server has gone away » — and every later statement of the process failed
    on the dead connection (« début de la transaction impossible »).
    ``rollback``: the block fails on its own (a refused row) after the session ended: its
    own error stands, and the connection is made again all the same."""
    backend = make_backend(name)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10))")
    adapter = open_database(backend.connection)
    try:
        table = next(t for t in adapter.tables() if t.name == "t")
        expected: type[Exception] = TransactionLost if where == "statement" else ValueError
        with pytest.raises(expected) as info, adapter.atomic():
            adapter.insert(table, [(1, "un")])
            end_other_sessions(backend)
            if where == "rollback":
                raise ValueError("a row refused by the engine")
            adapter.fetch(table, [(1,)])
        if where == "statement":  # said as lost, caused by the statement's error
            assert "rien n'en est gardé, elle sera refaite" in str(info.value)
            assert isinstance(info.value.__cause__, DatabaseError)
        assert backend.query("SELECT id FROM t") == []  # the server dropped row 1
        with adapter.atomic():
            adapter.insert(table, [(2, "deux")])
        assert [tuple(r) for r in adapter.fetch(table, [(1,), (2,)])] == [(2, "deux")]
    finally:
        adapter.close()
