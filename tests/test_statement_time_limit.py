"""A server that limits how long a statement may run: the row that outlasts the limit is
set aside, saying so; the others are applied; the next run applies it once the limit
allows (rules 1 and 3).

PostgreSQL's ``statement_timeout`` (set on the database by its administrator) cancels the
statement with SQLSTATE 57014, class 57, which the adapter took for a lost connection:
the whole import was undone, made again three times, and failed « connexion perdue :
vérifiez le réseau et le serveur » — nothing applied, and the same every day while the
slow row stayed in the package. MariaDB's ``max_statement_time`` (here the user's own
limit, as a host sets it: 1969 « Query execution was interrupted ») already set the one
row aside; both now do.

The slow row is made slow by a trigger of the database (``pg_sleep``, ``SLEEP``) on a
real server through its real ODBC driver; the limit is the server's own.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import checksums, make_node

ROWS = 50
SLOW_ROW = 7  # its text makes the trigger sleep longer than the limit
LIMIT_S = 0.3
SLOW = {
    "postgresql": (
        "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN IF NEW.txt = 'lente' THEN"
        " PERFORM pg_sleep(1); END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow()",
    ),
    "mariadb": (
        "CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW BEGIN"
        " IF NEW.txt = 'lente' THEN DO SLEEP(1); END IF; END",
    ),
}
SAYS = {"postgresql": "statement timeout", "mariadb": "max_statement_time"}


@pytest.fixture
def limited(
    request: pytest.FixtureRequest, make_backend: Callable[[str], Backend]
) -> Iterator[tuple[Backend, str, Callable[[], None]]]:
    """A database whose table ``t`` has the slow trigger; the connection string the node
    uses, under the server's time limit; and what lifts the limit."""
    backend = make_backend(request.param)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(100))")
    for sql in SLOW[backend.name]:
        backend.execute(sql)
    name = backend.connection.split("DATABASE=")[1].split(";")[0]
    if backend.name == "postgresql":
        backend.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '{LIMIT_S}s'")
        yield (
            backend,
            backend.connection,
            lambda: backend.execute(f'ALTER DATABASE "{name}" RESET statement_timeout'),
        )
        return
    user = f"synchro_lent_{uuid.uuid4().hex[:8]}"
    backend.execute(f"CREATE USER '{user}'@'127.0.0.1' WITH MAX_STATEMENT_TIME {LIMIT_S}")
    try:
        backend.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'127.0.0.1'")
        as_user = backend.connection.replace("USER=root", f"USER={user}")
        yield (
            backend,
            as_user,
            lambda: backend.execute(f"ALTER USER '{user}'@'127.0.0.1' WITH MAX_STATEMENT_TIME 0"),
        )
    finally:
        backend.execute(f"DROP USER '{user}'@'127.0.0.1'")


@pytest.mark.parametrize("limited", ["postgresql", "mariadb"], indirect=True)
def test_a_row_that_outlasts_the_servers_time_limit_is_set_aside_the_others_applied(
    limited: tuple[Backend, str, Callable[[], None]], tmp_path: Path
) -> None:
    backend, connection, lift = limited
    site_db = tmp_path / "site.db"
    conn = sqlite3.connect(site_db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(100))")
    rows = [(i, "lente" if i == SLOW_ROW else f"ligne {i}") for i in range(ROWS)]
    conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    with make_node(tmp_path, "S1", str(site_db)) as site:
        package = site.export().path
    with make_node(tmp_path, "HQ", connection, hq=True) as hq:
        result = hq.import_package(package)
        assert result.status == "applied" and result.attempts <= 1  # not made again
        assert (result.stats.upserts, result.stats.quarantined) == (ROWS - 1, 1)
        [aside] = hq.state.quarantined()
        assert aside["kind"] == "refused"
        assert SAYS[backend.name] in aside["error"]
        assert "connexion perdue" not in aside["error"]
    assert backend.query("SELECT count(*) FROM t WHERE txt = 'lente'") == [(0,)]
    assert backend.query("SELECT count(*) FROM t") == [(ROWS - 1,)]
    lift()
    with make_node(tmp_path, "HQ", connection, hq=True) as hq:  # the next run's retry
        hq.export()
        assert hq.state.quarantined() == []
    assert checksums(backend.connection) == checksums(str(site_db))
