"""A database server's table that cannot grow while the Siège applies a package.

Servers of the test's own (``own_db_servers``), reached through their real ODBC drivers:
a PostgreSQL table in a tablespace on a real tmpfs of 1 MB, a MariaDB table in InnoDB's
system tablespace of a fixed size. The package (40,000 rows) does not fit. The import must
keep nothing, say the disk (kind disk, not made again at once), and not set the rows aside
one by one as if the database had refused each; once room is made, the next import applies
the package exactly once. Measured before the fix on MariaDB (whose every error is SQLSTATE
HY000): « applied, 1,833 rows », the other 38,167 set aside one by one, in 2 minutes.
"""

from __future__ import annotations

import os
import pwd
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from backends import need_pyodbc
from engine_helpers import make_node
from own_db_servers import OwnServer, own_server
from server_dbs import ServerDb, connect, create_database, drop_database, run_sql
from test_faults_kill_servers import DDL, package
from test_faults_lost_transaction import (
    grow,
    import_in_child,
    outcome,
    small_disk,
    then_applied_once,
)

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="a tmpfs is Linux's")]
ROWS = 40_000  # ~5 MB in either server


@contextmanager
def server_disk(server: OwnServer, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` the server's user may write to, outside pytest's closed folders."""
    root = Path(tempfile.mkdtemp(prefix="synchro-disk-"))
    root.chmod(0o711)
    try:
        with small_disk(root / "disk", size) as disk:
            if server.user is not None:
                entry = pwd.getpwnam(server.user)
                os.chown(disk, entry.pw_uid, entry.pw_gid)
            yield disk
    finally:
        os.rmdir(root / "disk") if (root / "disk").exists() else None
        os.rmdir(root)


def autocommit(server: OwnServer, statement: str) -> None:
    """A statement no transaction may hold (PostgreSQL's tablespaces)."""
    conn = need_pyodbc(server.kind).connect(server.admin.connection, autocommit=True, timeout=10)
    try:
        conn.execute(statement)
    finally:
        conn.close()


def test_a_postgresql_tablespace_on_a_full_disk_keeps_nothing_and_is_applied_once_room_is_made(
    tmp_path: Path,
) -> None:
    """The table in a tablespace on a tmpfs of 1 MB: « could not extend file … No space left
    on device » (53100)."""
    path, site_db = package(tmp_path, ROWS)
    with own_server("postgresql") as server, server_disk(server, "1m") as disk:
        db = create_database("postgresql", server.port)
        try:
            autocommit(server, f"CREATE TABLESPACE petit LOCATION '{disk}'")
            run_sql(db, DDL["postgresql"] + " TABLESPACE petit")
            home = said_disk_and_kept_nothing(tmp_path, db, path)
            grow(disk, "64m")
            then_applied_once(home, db.connection, path, site_db)
        finally:
            drop_database(db)
            autocommit(server, "DROP TABLESPACE IF EXISTS petit")


def test_a_mariadb_tablespace_that_cannot_grow_keeps_nothing_and_is_applied_once_room_is_made(
    tmp_path: Path,
) -> None:
    """The tables in InnoDB's system tablespace, of a fixed size (``innodb_data_file_path``
    without ``autoextend``): « The table 't' is full » (1114, SQLSTATE HY000 as any error of
    MariaDB's). Before, each row was taken for one the database refused: the 40,000 were
    set aside one by one. (A MariaDB table on a disk that is really full is no test: the
    server, 10.11, aborts in the rollback, « Error (Out of disk space) in rollback »; its
    restart is the server crash of ``test_db_server_crash.py``.)"""
    path, site_db = package(tmp_path, ROWS)
    fixed = ("--innodb-file-per-table=0", "--innodb-data-file-path=ibdata1:12M")
    with own_server("mariadb", *fixed) as server:
        db = create_database("mariadb", server.port)
        try:
            run_sql(db, DDL["mysql"])
            home = said_disk_and_kept_nothing(tmp_path, db, path)
            server.stop()  # the administrator lets the tablespace grow
            server.options = (
                "--innodb-file-per-table=0",
                "--innodb-data-file-path=ibdata1:12M:autoextend",
            )
            server.start()
            then_applied_once(home, db.connection, path, site_db)
        finally:
            drop_database(db)


def said_disk_and_kept_nothing(tmp_path: Path, db: ServerDb, path: Path) -> Path:
    """The Siège's import (a real process) fails whole on the full table and says the disk;
    nothing is kept, set aside or made again; its home folder."""
    home = tmp_path / "hq"
    home.mkdir()
    failed = outcome(import_in_child(home, db.connection, path))
    assert failed.get("error") == "TransactionLost" and failed["kind"] == "disk", failed
    assert "rien n'en est gardé" in str(failed["text"]), failed
    assert held(db) == 0
    with make_node(home, "HQ", db.connection, hq=True) as node:
        assert node.state.quarantined() == []
    return home


def held(db: ServerDb) -> int:
    conn = connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()
