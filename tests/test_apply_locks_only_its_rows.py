"""The apply's locking read holds only the rows it writes over, on MariaDB too.

``bench/soak_live.py --layout maria-pg`` (the Siège on MariaDB, every shop's program
writing during the round) found the shop's program of the Siège failing with « Deadlock
found when trying to get lock » in 15 of 72 seeds: InnoDB's default REPEATABLE READ made
the apply's ``SELECT … WHERE id IN (500 keys) FOR UPDATE`` lock every row its plan
scanned (a whole small table, 746 row locks in the server's deadlock report) and the gaps
around keys it did not find, so a shop deleting or adding its own rows, which the package
never touched, waited for the apply — and InnoDB ended the shop's transaction, the
smaller one. Now the adapter's transactions run in READ COMMITTED, as PostgreSQL's always
did: a locking read keeps only the rows it returns (``db.odbc``).

A MariaDB server that logs statements (``--log-bin --binlog-format=STATEMENT``: for its
replicas, its backups) refuses InnoDB's writes in READ COMMITTED; there the adapter has its
session's changes logged the server's default way (MIXED) when the user may, and keeps
REPEATABLE READ when not — its writes must go through either way. That server is one of
the tests' own (``own_db_servers``), the shared one is never restarted.

Real MariaDB and PostgreSQL through their ODBC drivers; the shop is another connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from backends import Backend, need_pyodbc
from own_db_servers import OwnServer, own_server
from server_dbs import ServerDb, connect, create_database

from synchro.db import open_database

ROWS = 2_000
LOGS_STATEMENTS = ("--log-bin=binlog", "--binlog-format=STATEMENT", "--server-id=1")


def locks_only_returned_rows(kind: str, connection: str) -> None:
    """A locking read of 500 rows (and 10 keys not there) in the adapter's transaction;
    meanwhile a shop's writes to rows before, after and among them, and to keys it did
    not find, all go through; a row it returned stays locked."""
    pyodbc = need_pyodbc(kind)
    shop = pyodbc.connect(connection, autocommit=True)
    shop.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    shop.execute(
        "INSERT INTO t VALUES " + ", ".join(f"({n}, 'ligne {n}')" for n in range(0, ROWS, 2))
    )
    if kind == "mariadb":
        shop.execute("SET SESSION innodb_lock_wait_timeout = 1")
    else:
        shop.execute("SET lock_timeout = '1s'")
    wanted = [(n,) for n in range(ROWS // 4, ROWS // 4 + 1000, 2)]  # 500 keys
    wanted += [(n,) for n in range(ROWS + 1, ROWS + 21, 2)]  # 10 keys it does not hold
    with open_database(connection) as adapter:
        [table] = [t for t in adapter.tables() if t.name == "t"]
        with adapter.atomic():
            found = adapter.fetch(table, wanted, lock=True)
            assert len(found) == 500
            adapter.insert(table, [(ROWS + 1001, "du paquet")])  # a write of its own
            refused: list[str] = []
            for sql in (
                "UPDATE t SET v = 'shop' WHERE id = 2",  # a row before the keys read
                f"DELETE FROM t WHERE id = {ROWS - 2}",  # a row after them
                "INSERT INTO t VALUES (1, 'new')",  # a new row among the rows
                f"INSERT INTO t VALUES ({ROWS + 101}, 'new')",  # beyond the last one
                f"INSERT INTO t VALUES ({ROWS + 4}, 'new')",  # among keys not found
            ):
                try:
                    shop.execute(sql)
                except pyodbc.Error as exc:
                    refused.append(f"{sql}: {exc}")
            assert refused == []
            with pytest.raises(pyodbc.Error):  # the rows it returned: locked
                shop.execute(f"UPDATE t SET v = 'shop' WHERE id = {ROWS // 4}")
    assert shop.execute(f"SELECT v FROM t WHERE id = {ROWS + 1001}").fetchall()[0][0] == (
        "du paquet"
    )
    shop.close()


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_locking_read_keeps_no_lock_on_rows_it_did_not_return(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    locks_only_returned_rows(name, make_backend(name).connection)


@pytest.fixture(scope="module")
def logging_server() -> Iterator[OwnServer]:
    """A MariaDB server of the tests' own that logs every statement for its replicas."""
    with own_server("mariadb", *LOGS_STATEMENTS) as server:
        yield server


def test_mariadb_logging_statements_the_locking_read_keeps_no_lock_either(
    logging_server: OwnServer,
) -> None:
    """Before, READ COMMITTED was skipped on such a server: the shop's five writes waited
    for the apply's lock (the deadlocks of the soak)."""
    db = create_database("mariadb", logging_server.port)
    admin = connect(logging_server.admin)
    assert [tuple(r) for r in admin.execute("SELECT @@log_bin, @@binlog_format")] == [
        (1, "STATEMENT")
    ]
    admin.close()
    locks_only_returned_rows("mariadb", db.connection)


def test_mariadb_logging_statements_a_user_who_may_not_change_it_still_writes(
    logging_server: OwnServer,
) -> None:
    """A user without SUPER / BINLOG ADMIN cannot have its changes logged as rows: the
    session keeps REPEATABLE READ (READ COMMITTED would have every InnoDB write refused,
    1665), and the apply's writes land."""
    db = create_database("mariadb", logging_server.port)
    admin = connect(logging_server.admin)
    admin.autocommit = True
    admin.execute("CREATE USER 'boutique'@'127.0.0.1'")
    admin.execute(f"GRANT ALL ON `{db.name}`.* TO 'boutique'@'127.0.0.1'")
    admin.execute(f"CREATE TABLE `{db.name}`.t (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    admin.close()
    connection = db.connection.replace("USER=root", "USER=boutique")
    assert connection != db.connection
    with open_database(connection) as adapter:
        [table] = [t for t in adapter.tables() if t.name == "t"]
        with adapter.atomic():
            assert adapter.fetch(table, [(1,)], lock=True) == []
            adapter.insert(table, [(1, "du paquet")])
    check = connect(ServerDb("mariadb", db.name, logging_server.port))
    assert [tuple(r) for r in check.execute("SELECT id, v FROM t")] == [(1, "du paquet")]
    check.close()
