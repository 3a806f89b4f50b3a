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

Real MariaDB through its ODBC driver; the shop is another connection of the tests.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from backends import Backend, need_pyodbc

from synchro.db import open_database

ROWS = 2_000


@pytest.mark.parametrize("name", ["mariadb", "postgresql"])
def test_a_locking_read_keeps_no_lock_on_rows_it_did_not_return(
    name: str, make_backend: Callable[[str], Backend]
) -> None:
    backend = make_backend(name)
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    backend.execute(
        "INSERT INTO t VALUES " + ", ".join(f"({n}, 'ligne {n}')" for n in range(0, ROWS, 2))
    )
    pyodbc = need_pyodbc(name)
    shop = pyodbc.connect(backend.connection, autocommit=True)
    if name == "mariadb":
        shop.execute("SET SESSION innodb_lock_wait_timeout = 1")
    else:
        shop.execute("SET lock_timeout = '1s'")
    wanted = [(n,) for n in range(ROWS // 4, ROWS // 4 + 1000, 2)]  # 500 keys
    wanted += [(n,) for n in range(ROWS + 1, ROWS + 21, 2)]  # 10 keys it does not hold
    with open_database(backend.connection) as adapter:
        [table] = [t for t in adapter.tables() if t.name == "t"]
        with adapter.atomic():
            found = adapter.fetch(table, wanted, lock=True)
            assert len(found) == 500
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
    shop.close()
