"""Driver errors come out as DatabaseError saying what failed, where, and what to do."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend, need_pyodbc

from synchro.db import open_database
from synchro.db.odbc_connect import hide_secrets
from synchro.errors import DatabaseError, text_in


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
        if name == "postgresql":
            ended = backend.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        else:
            ended = backend.query(
                "SELECT id FROM information_schema.PROCESSLIST WHERE db = DATABASE()"
                " AND id <> CONNECTION_ID()"
            )
            for (ident,) in ended:
                backend.execute(f"KILL CONNECTION {int(ident)}")
        assert ended
        with pytest.raises(DatabaseError, match="connexion perdue"):
            adapter.tables()
    finally:
        adapter.close()
