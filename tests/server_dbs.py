"""Databases on the test servers for the fault suite, through pyodbc only.

A ``ServerDb`` is one database on PostgreSQL or MariaDB on 127.0.0.1 (the connection
strings of ``tests/backends.py``, real ODBC drivers): made with a unique name
(``create_database``), copied whole (``clone_database``: a scenario's own copy of a
template's database), dropped (``drop_database``). ``run_sql`` writes and ``server_rows``
reads it through a pyodbc connection of this module's own (``connect``), never through
synchro's adapter: a value is not checked only through what wrote it (rule 1). Values are
compared in one form (``canon``): a decimal is the same whether SQLite holds it as a float
or a server as a Decimal. ``end_writing_sessions`` cuts a writer's session on the server
(a server restart, a cut network); ``end_sessions_of`` cuts every session a process holds,
whatever it is doing. A missing driver or server calls ``require``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from backends import MARIA, PG, need_pyodbc
from conftest import require

KINDS = ("postgresql", "mariadb")


@dataclasses.dataclass(frozen=True)
class ServerDb:
    """One database on a server: ``kind`` (postgresql / mariadb) and its ``name``; ``port``
    0 for the shared server of the suite, else a server of the test's own
    (``own_db_servers``) on 127.0.0.1."""

    kind: str
    name: str
    port: int = 0

    @property
    def connection(self) -> str:
        """The ODBC connection string the product and this module use."""
        return connection_string(self.kind, self.name, self.port)


def connection_string(kind: str, name: str, port: int = 0) -> str:
    """``tests/backends.py``'s connection string of database ``name``, on ``port`` when it
    is not 0 (a server of the test's own)."""
    text = (PG if kind == "postgresql" else MARIA).format(db=name)
    return re.sub(r"PORT=\d+", f"PORT={port}", text) if port else text


def _admin(kind: str, port: int = 0) -> Any:
    """An autocommit connection to the server's administration database (or ``require``)."""
    pyodbc = need_pyodbc(kind)
    admin_db = "postgres" if kind == "postgresql" else "mysql"
    try:
        return pyodbc.connect(connection_string(kind, admin_db, port), autocommit=True, timeout=10)
    except pyodbc.Error as exc:
        require(f"{kind} server on 127.0.0.1 unreachable: {exc}")


def require_servers() -> None:
    """``require`` (skip, or fail under SYNCHRO_REQUIRE_ALL=1) unless both servers and
    their ODBC drivers answer."""
    for kind in KINDS:
        _admin(kind).close()


def create_database(kind: str, port: int = 0) -> ServerDb:
    """A new empty UTF-8 database with a unique name (on the server of ``port``)."""
    db = ServerDb(kind, f"synchro_fx_{uuid.uuid4().hex[:12]}", port)
    ddl = (
        "CREATE DATABASE \"{}\" ENCODING 'UTF8' TEMPLATE template0"
        if kind == "postgresql"
        else "CREATE DATABASE `{}` CHARACTER SET utf8mb4"
    )
    admin = _admin(kind, port)
    try:
        admin.execute(ddl.format(db.name))
    finally:
        admin.close()
    return db


def drop_database(db: ServerDb) -> None:
    drop = (
        'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'
        if db.kind == "postgresql"
        else "DROP DATABASE IF EXISTS `{}`"
    )
    admin = _admin(db.kind, db.port)
    try:
        admin.execute(drop.format(db.name))
    finally:
        admin.close()


def clone_database(source: ServerDb) -> ServerDb:
    """A copy of ``source`` (every table, rows included) under a new unique name.
    PostgreSQL copies the template database whole; MariaDB gets each table's own DDL and
    its rows copied across."""
    if source.kind == "postgresql":
        db = ServerDb(source.kind, f"synchro_fx_{uuid.uuid4().hex[:12]}", source.port)
        admin = _admin(db.kind, db.port)
        try:
            for attempt in range(20):  # another scenario may be cloning the same template
                try:
                    admin.execute(f'CREATE DATABASE "{db.name}" TEMPLATE "{source.name}"')
                    break
                except Exception as exc:
                    if "being accessed" not in str(exc) or attempt == 19:
                        raise
                    time.sleep(0.25)
        finally:
            admin.close()
        return db
    db = create_database(source.kind, source.port)
    conn = connect(db)
    try:  # every table, synchro's own mark of the database (synchro_repere) included
        conn.execute("SET SESSION foreign_key_checks = 0")
        names = [r[0] for r in conn.execute(f"SHOW TABLES FROM `{source.name}`").fetchall()]
        for name in names:
            ddl = conn.execute(f"SHOW CREATE TABLE `{source.name}`.`{name}`").fetchone()[1]
            conn.execute(ddl)
            conn.execute(f"INSERT INTO `{name}` SELECT * FROM `{source.name}`.`{name}`")
        conn.commit()
    finally:
        conn.close()
    return db


def connect(db: ServerDb) -> Any:
    """A pyodbc connection of this test's own (not the product's adapter). MariaDB's text
    goes as UTF-8 bytes both ways (its UTF-16 path corrupts text: DESIGN.md §5) and its
    ``||`` concatenates, as in the SQL of ``fault_helpers.mutations``."""
    pyodbc = need_pyodbc(db.kind)
    conn = pyodbc.connect(db.connection, autocommit=False, timeout=10)
    if db.kind == "mariadb":
        conn.setencoding(encoding="utf-8")
        conn.setdecoding(pyodbc.SQL_CHAR, encoding="utf-8")
        conn.setdecoding(pyodbc.SQL_WCHAR, encoding="utf-8", ctype=pyodbc.SQL_CHAR)
        conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')")
    return conn


def statements(script: str) -> list[str]:
    """The statements of a script whose statements end with ';' at the end of a line."""
    return [s.strip() for s in re.split(r";[ \t]*(?:\n|$)", script) if s.strip()]


def run_sql(db: ServerDb, script: str, *, foreign_keys: bool = True) -> None:
    """Run ``script`` in one transaction. A MariaDB statement that is not ASCII goes to the
    server as hex, prepared there: Connector/ODBC 3.1 misreads such statement text and has
    overrun the heap on it (``tests/backends.py``, ``Backend._run_on_server``).
    ``foreign_keys=False``: rows may refer to parents that are not there yet (a site's
    first orders refer to the Siège's clients, which its first round brings)."""
    conn = connect(db)
    try:
        cursor = conn.cursor()
        if not foreign_keys:
            cursor.execute(
                "SET session_replication_role = replica"
                if db.kind == "postgresql"
                else "SET SESSION foreign_key_checks = 0"
            )
        runner = False
        for statement in statements(script):
            if db.kind == "mariadb" and not statement.isascii():
                if not runner:
                    cursor.execute(
                        "CREATE PROCEDURE IF NOT EXISTS synchro_test_run(IN s LONGTEXT)"
                        " BEGIN SET @synchro_test = s; PREPARE st FROM @synchro_test;"
                        " EXECUTE st; DEALLOCATE PREPARE st; END"
                    )
                    runner = True
                hexed = statement.encode().hex()
                cursor.execute(f"CALL synchro_test_run(CONVERT(X'{hexed}' USING utf8mb4))")
            else:
                cursor.execute(statement)
        conn.commit()
    finally:
        conn.close()


def canon(value: Any) -> Any:
    """One form per value whatever held it: a decimal (SQLite float, server Decimal) as the
    shortest Decimal, an integral one as an int; anything else as it is."""
    if isinstance(value, (float, Decimal)) and not isinstance(value, bool):
        number = Decimal(str(value))
        return int(number) if number == number.to_integral_value() else number.normalize()
    return value


def canon_rows(rows: dict[str, set[tuple[Any, ...]]]) -> dict[str, set[tuple[Any, ...]]]:
    return {t: {tuple(canon(v) for v in row) for row in rows[t]} for t in rows}


def server_rows(db: ServerDb, tables: Iterable[str]) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of ``tables``, read through pyodbc (``canon`` form)."""
    conn = connect(db)
    try:
        out = {}
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table}")
            out[table] = {tuple(canon(v) for v in row) for row in cursor.fetchall()}
        conn.rollback()
        return out
    finally:
        conn.close()


def end_writing_sessions(db: ServerDb, running: Callable[[], bool], timeout: float = 60) -> int:
    """Once a session on ``db`` holds a transaction that has written rows, end it on the
    server, as a server restart or a cut network would (``pg_terminate_backend``,
    ``KILL CONNECTION``); how many were ended (0: ``running()`` turned False first).
    InnoDB refreshes what INNODB_TRX shows only when it was not read for 0.1 s: MariaDB is
    polled more slowly (``test_faults_kill_servers.cut_while_writing``)."""
    if db.kind == "postgresql":
        writing = (
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        end, pause = "SELECT pg_terminate_backend({})", 0.005
    else:
        writing = (
            "SELECT p.id FROM information_schema.PROCESSLIST p JOIN"
            " information_schema.INNODB_TRX x ON x.trx_mysql_thread_id = p.id"
            " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() AND x.trx_rows_modified > 0"
        )
        end, pause = "KILL CONNECTION {}", 0.12
    conn = connect(db)
    conn.autocommit = True
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and running():
            sessions = [int(r[0]) for r in conn.execute(writing).fetchall()]
            for ident in sessions:
                conn.execute(end.format(ident))
            if sessions:
                return len(sessions)
            time.sleep(pause)
        return 0
    finally:
        conn.close()


def tcp_ports(pid: int, remote: int = 0) -> set[int]:
    """The local ports of the TCP sockets process ``pid`` holds (Linux ``/proc``: its open
    sockets' inodes matched in its own network namespace's tables), only those connected
    to port ``remote`` when it is not 0; empty once it ended."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:  # ended (or a descriptor closed meanwhile: read again next time)
        return set()
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as lines:
                rows = [line.split() for line in lines.readlines()[1:]]
        except OSError:
            continue
        ports |= {
            int(r[1].rsplit(":", 1)[1], 16)
            for r in rows
            if r[9] in inodes and (not remote or int(r[2].rsplit(":", 1)[1], 16) == remote)
        }
    return ports


def server_port(db: ServerDb) -> int:
    """The TCP port of ``db``'s server."""
    found = re.search(r"PORT=(\d+)", db.connection)
    return int(found.group(1)) if found else 0


def holds_session(db: ServerDb, pid: int) -> bool:
    """Whether process ``pid`` holds a connection to ``db``'s server now (by ``/proc``
    only: cheap enough to ask every few milliseconds)."""
    return bool(tcp_ports(pid, server_port(db)))


def end_sessions_of(db: ServerDb, pid: int) -> int:
    """End on the server every session process ``pid`` holds on ``db``, whatever it is
    doing (a statement running, a transaction open, idle between two): a cable pulled
    between that process and its database, as the process sees it (the next use of the
    connection fails). How many were ended; the sessions of other programs on ``db`` (the
    shop's) are left alone."""
    ports = tcp_ports(pid, server_port(db))
    if not ports:
        return 0
    if db.kind == "postgresql":
        sessions = (
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
        )
        end = "SELECT pg_terminate_backend({})"
    else:
        sessions = "SELECT id, host FROM information_schema.PROCESSLIST WHERE db = DATABASE()"
        end = "KILL CONNECTION {}"
    conn = connect(db)
    conn.autocommit = True
    try:
        ended = 0
        for ident, client in conn.execute(sessions).fetchall():
            port = str(client or "").rpartition(":")[2]
            if port.isdigit() and int(port) in ports:
                try:
                    conn.execute(end.format(int(ident)))
                except Exception as exc:  # MariaDB: 1094 « Unknown thread id », closed since
                    if "(1094)" not in str(exc):
                        raise
                    continue
                ended += 1
        return ended
    finally:
        conn.close()
