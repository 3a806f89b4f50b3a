"""Real databases for tests: SQLite (stdlib and ODBC), PostgreSQL and MariaDB on loopback.

Fixtures (registered by ``pytest_plugins = ["backends"]`` in conftest.py):

- ``backend``: parametrised over ``sqlite``, ``sqlite-odbc``, ``postgresql``, ``mariadb``;
  one fresh, uniquely named, empty database per test, dropped afterwards.
- ``make_backend``: ``make_backend(name) -> Backend``, as many databases as a test needs
  (three nodes of one kind, say), all dropped at the end of the test.

A ``Backend`` has ``name``, ``dialect`` (``sqlite``/``postgresql``/``mysql``), ``connection``
(for ``synchro.db.open_database``), ``database`` (file path or database name),
``execute(sql, params=())`` (committed at once) and ``query(sql, params=()) -> list[tuple]``.
Raw SQL uses ``?`` parameters on every back end.

``create_sample_schema(backend)`` makes the portable test tables (see ``SAMPLE_TABLES``).
A missing driver or server calls ``require`` (skip, or fail under SYNCHRO_REQUIRE_ALL=1);
``need_pyodbc(name)`` does that check alone and returns the pyodbc module.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import require

from synchro.db.odbc_connect import narrow_utf8

BACKENDS = ("sqlite", "sqlite-odbc", "postgresql", "mariadb")
DRIVERS = {
    "sqlite-odbc": "SQLite3",
    "postgresql": "PostgreSQL Unicode",
    "mariadb": "MariaDB Unicode",
}
DIALECTS = {
    "sqlite": "sqlite",
    "sqlite-odbc": "sqlite",
    "postgresql": "postgresql",
    "mariadb": "mysql",
}
PG = "DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT=5432;UID=postgres;DATABASE={db}"
MARIA = (
    "DRIVER={{MariaDB Unicode}};SERVER=127.0.0.1;PORT=3306;USER=root;DATABASE={db};CHARSET=utf8mb4"
)

SAMPLE_TABLES = ("parent", "child", "pair", "kinds", "textkey", "uniq", "nokey")


def need_pyodbc(name: str) -> Any:
    """pyodbc, with pooling off, once the ODBC driver of back end ``name`` is known present."""
    try:
        import pyodbc
    except ImportError as exc:  # no unixODBC on this machine
        require(f"{name}: pyodbc cannot be imported ({exc})")
    pyodbc.pooling = False  # a pooled connection would keep the database from being dropped
    if DRIVERS[name] not in pyodbc.drivers():
        require(f"{name}: ODBC driver {DRIVERS[name]!r} missing (have {pyodbc.drivers()})")
    return pyodbc


class Backend:
    """One fresh database of one kind; ``close()`` drops it."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.dialect = DIALECTS[name]
        self.database = f"synchro_t_{uuid.uuid4().hex[:12]}"
        self._cleanup: list[Callable[[], None]] = []
        self._runner = False  # MariaDB: the procedure that runs statements sent as hex
        self._conn: Any
        if name in ("sqlite", "sqlite-odbc"):
            self.database = str(tmp_path / f"{self.database}.db")
            self.connection = self.database
            if name == "sqlite-odbc":
                need_pyodbc(name)
                self.connection = f"DRIVER={{SQLite3}};Database={self.database}"
            self._conn = sqlite3.connect(self.database, isolation_level=None)
            self._conn.execute("PRAGMA foreign_keys = ON")
        else:
            self._create_server_database(need_pyodbc(name))
        self._cleanup.append(self._conn.close)

    def _create_server_database(self, pyodbc: Any) -> None:
        template, admin_db, ddl = {
            "postgresql": (
                PG,
                "postgres",
                "CREATE DATABASE \"{}\" ENCODING 'UTF8' TEMPLATE template0",
            ),
            "mariadb": (MARIA, "mysql", "CREATE DATABASE `{}` CHARACTER SET utf8mb4"),
        }[self.name]
        drop = (
            'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'
            if self.name == "postgresql"
            else "DROP DATABASE IF EXISTS `{}`"
        )
        try:
            admin = pyodbc.connect(template.format(db=admin_db), autocommit=True, timeout=5)
        except pyodbc.Error as exc:
            require(f"{self.name} server on 127.0.0.1 unreachable: {exc}")
        try:
            admin.execute(ddl.format(self.database))
        finally:
            admin.close()

        def dropper() -> None:
            conn = pyodbc.connect(template.format(db=admin_db), autocommit=True, timeout=5)
            try:
                conn.execute(drop.format(self.database))
            finally:
                conn.close()

        self._cleanup.append(dropper)
        self.connection = template.format(db=self.database)
        self._conn = pyodbc.connect(self.connection, autocommit=True, timeout=5)
        if self.name == "mariadb":
            narrow_utf8(pyodbc, self._conn)  # its UTF-16 path cuts text and overruns buffers

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement and commit it."""
        cursor = self._conn.cursor()
        try:
            self._run(cursor, sql, params)
        finally:
            cursor.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.cursor()
        try:
            self._run(cursor, sql, params)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _run(self, cursor: Any, sql: str, params: Sequence[Any]) -> None:
        if self.dialect == "mysql" and not sql.isascii():
            self._run_on_server(cursor, sql, params)
        else:
            cursor.execute(sql, list(params))

    def _run_on_server(self, cursor: Any, sql: str, params: Sequence[Any]) -> None:
        """Run ``sql`` on MariaDB without handing its text to the driver.

        MariaDB Connector/ODBC 3.1 measures statement text that is not ASCII wrongly and
        reads past its end once per character such as Ú, Ø, ヘ (``mysql_catalog``); with two
        or more in one statement it overran the heap: ``free(): invalid pointer`` and the
        test process aborted (2 runs of 4 of the database test files under glibc's malloc
        checks, and once in CI). The product never sends such a statement
        (``unsafe_statement``); a test's own statement goes as hex to a procedure that
        prepares it on the server (the driver refuses PREPARE and EXECUTE themselves)."""
        assert not params, "MariaDB statement text outside ASCII takes no parameters here"
        if not self._runner:
            cursor.execute(
                "CREATE PROCEDURE synchro_test_run(IN s LONGTEXT) BEGIN SET @synchro_test = s;"
                " PREPARE st FROM @synchro_test; EXECUTE st; DEALLOCATE PREPARE st; END"
            )
            self._runner = True
        cursor.execute(f"CALL synchro_test_run(CONVERT(X'{sql.encode().hex()}' USING utf8mb4))")

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()

    def __repr__(self) -> str:
        return f"Backend({self.name}, {self.database})"


@pytest.fixture
def make_backend(tmp_path: Path) -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(name: str) -> Backend:
        folder = tmp_path / f"db{len(made)}"
        folder.mkdir()
        made.append(Backend(name, folder))
        return made[-1]

    yield make
    for backend in reversed(made):
        backend.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, make_backend: Callable[[str], Backend]) -> Backend:
    return make_backend(request.param)


# Per dialect: int, decimal, text, date, datetime, bool, blob, float, time.
_TYPES = {
    "sqlite": "INTEGER DECIMAL(12,2) TEXT DATE DATETIME BOOLEAN BLOB REAL TIME",
    "postgresql": "INTEGER DECIMAL(12,2) TEXT DATE TIMESTAMP BOOLEAN BYTEA FLOAT8 TIME",
    "mysql": "INT DECIMAL(12,2) TEXT DATE DATETIME BOOLEAN LONGBLOB DOUBLE TIME",
}


def create_sample_schema(backend: Backend) -> tuple[str, ...]:
    """Create the portable sample tables and return their names.

    - ``parent(id, name)`` and ``child(id, parent_id -> parent.id, label)``
    - ``pair(site, num, qty)`` with the composite key (site, num)
    - ``kinds(id, i, amount, label, day, at, flag, note, data, ratio, t, changed)``: every kind
    - ``textkey(code, v)``: a text primary key, for the binary order
    - ``uniq(code, v)``: no primary key, a UNIQUE NOT NULL column
    - ``nokey(v, n)``: no key at all
    """
    i, dec, text, date, dtm, boolean, blob, flt, time = _TYPES[backend.dialect].split()
    vc = "VARCHAR"
    statements = [
        f"CREATE TABLE parent (id {i} NOT NULL PRIMARY KEY, name {vc}(100) NOT NULL)",
        f"CREATE TABLE child (id {i} NOT NULL PRIMARY KEY, parent_id {i} NOT NULL,"
        f" label {vc}(200), FOREIGN KEY (parent_id) REFERENCES parent (id))",
        f"CREATE TABLE pair (site {vc}(20) NOT NULL, num {i} NOT NULL, qty {i},"
        " PRIMARY KEY (site, num))",
        f"CREATE TABLE kinds (id {i} NOT NULL PRIMARY KEY, i {i}, amount {dec}, label {text},"
        f" day {date}, at {dtm}, flag {boolean}, note {vc}(50), data {blob}, ratio {flt},"
        f" t {time}, changed {dtm})",
        f"CREATE TABLE textkey (code {vc}(50) NOT NULL PRIMARY KEY, v {i})",
        f"CREATE TABLE uniq (code {vc}(20) NOT NULL UNIQUE, v {i})",
        f"CREATE TABLE nokey (v {vc}(50), n {i})",
    ]
    for sql in statements:
        if backend.dialect == "mysql":
            sql += " ENGINE=InnoDB"
        backend.execute(sql)
    return SAMPLE_TABLES
