"""Table and column names MariaDB Connector/ODBC's UTF-16 conversion gets wrong (Ú, Ø, ヘ...),
and statement text under a locale that is not UTF-8.

Discovery must find their columns, key and foreign keys (``db.mysql_catalog``) on every back
end. Rows are written and read under those names on SQLite and PostgreSQL; on MariaDB the
driver reads statement text past its end once per such character (``mysql_catalog``), so a
table whose statements would hold more than one is refused up front, naming the table and
column, and a statement holding more than one is never handed to the driver.
"""

from __future__ import annotations

import json
import locale
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import BACKENDS, Backend, need_pyodbc
from engine_helpers import make_node
from pair_helpers import synchro

from synchro.application import list_tables
from synchro.cli import main
from synchro.config.model import DatabaseSettings
from synchro.db import odbc_connect, open_database
from synchro.db.doing import act
from synchro.db.mysql_catalog import cut_by_driver, lead_units
from synchro.db.odbc_connect import PROBE_TEXT, connect, narrow_utf8, statement_text_fault
from synchro.engine.tables import select_tables
from synchro.errors import DatabaseError

PARENT, CHILD = "ÉlèveÚ", "ノートヘ"
ONE = "NotÚ"  # one such character, in the table's name only: usable on MariaDB


def _ddl(backend: Backend) -> tuple[str, list[str]]:
    q = "`" if backend.dialect == "mysql" else '"'
    return q, [
        f"CREATE TABLE {q}{PARENT}{q} (id INTEGER NOT NULL PRIMARY KEY, {q}nomØ{q} VARCHAR(20))",
        f"CREATE TABLE {q}{CHILD}{q} (id INTEGER NOT NULL PRIMARY KEY, {q}élèveÚ{q} INTEGER,"
        f" FOREIGN KEY ({q}élèveÚ{q}) REFERENCES {q}{PARENT}{q} (id))",
        f"CREATE TABLE {q}{ONE}{q} (id INTEGER NOT NULL PRIMARY KEY, nom VARCHAR(200))",
    ]


def _create(backend: Backend) -> None:
    _q, statements = _ddl(backend)
    engine = " ENGINE=InnoDB" if backend.dialect == "mysql" else ""
    for sql in statements:
        backend.execute(sql + engine)  # on MariaDB as hex: the driver never sees the names
    if backend.dialect == "mysql":
        # Checked apart from the statement text: the names' UTF-8 as hex.
        wanted = ", ".join(f"'{n.encode().hex().upper()}'" for n in (PARENT, CHILD, ONE))
        (found,) = backend.query(
            "SELECT COUNT(*) FROM information_schema.tables"
            f" WHERE table_schema = DATABASE() AND HEX(table_name) IN ({wanted})"
        )
        assert found == (3,)


@pytest.fixture(params=["C.UTF-8", "C"])
def ctype(request: pytest.FixtureRequest) -> Iterator[str]:
    """The process's character type for the test: a service or cron job runs under C."""
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, request.param)
    try:
        yield str(request.param)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_names_the_driver_would_cut_are_recognised() -> None:
    assert cut_by_driver("Ú") and cut_by_driver("ヘ") and cut_by_driver("a\u05d8")
    assert not cut_by_driver("Élève") and not cut_by_driver("中文") and not cut_by_driver("😀")
    assert lead_units("ØÙÚÛ ǘ ט ヘ") == 7 and lead_units("SELECT 1") == 0


@pytest.mark.parametrize("name", BACKENDS)
def test_tables_with_such_names_are_discovered_and_synchronised_or_refused(
    name: str, make_backend: Callable[[str], Backend], ctype: str
) -> None:
    backend = make_backend(name)
    _create(backend)
    adapter = open_database(backend.connection)
    try:
        tables = {t.name: t for t in adapter.tables()}
        parent, child = tables[PARENT], tables[CHILD]
        assert parent.column_names == ("id", "nomØ") and parent.key == ("id",)
        assert child.key == ("id",)
        assert [(f.columns, f.ref_table) for f in child.foreign_keys] == [(("élèveÚ",), PARENT)]
        if backend.dialect == "mysql":
            with pytest.raises(DatabaseError) as refused:
                select_tables(list(tables.values()), DatabaseSettings())
            assert f"table {PARENT}, colonne nomØ" in str(refused.value)
            assert f"table {CHILD}, colonne élèveÚ" in str(refused.value)
            kept = select_tables(list(tables.values()), DatabaseSettings(exclude=(PARENT, CHILD)))
            assert [t.name for t in kept.synced] == [ONE]
            listed = list_tables(backend.connection, "fr")  # the wizard's database Test
            assert f"{PARENT} (refusée : colonne nomØ : le pilote MariaDB" in "\n".join(listed)
            assert ONE in listed
            return
        assert len(select_tables(list(tables.values()), DatabaseSettings()).synced) == 3
        with adapter.atomic():
            adapter.upsert(parent, [(1, "Último")])
            adapter.upsert(child, [(1, 1)])
        assert list(adapter.scan(parent)) == [(1, "Último")]
        assert adapter.read_back(child, [(1,)]) == [(1, 1)]
    finally:
        adapter.close()


def test_mariadb_table_named_with_one_such_character_is_synchronised(
    make_backend: Callable[[str], Backend],
) -> None:
    """Every statement on it holds the character once: the one unit the driver reads past
    the text is its terminating zero. Rows of every length, written and read many times."""
    backend = make_backend("mariadb")
    _create(backend)
    adapter = open_database(backend.connection)
    try:
        table = {t.name: t for t in adapter.tables()}[ONE]
        assert not table.unusable
        rows = [(i, "Último" * (i % 30)) for i in range(1, 301)]
        for start in range(0, 300, 7):
            with adapter.atomic():
                adapter.upsert(table, rows[start : start + 7])
            assert (
                adapter.read_back(table, [(k,) for k, _ in rows[start : start + 7]])
                == (rows[start : start + 7])
            )
        assert list(adapter.scan(table)) == rows
        with adapter.atomic():
            adapter.delete(table, [(k,) for k, _ in rows[::2]])
        assert list(adapter.scan(table)) == rows[1::2]
    finally:
        adapter.close()


def test_mariadb_statement_holding_two_such_characters_never_reaches_the_driver(
    make_backend: Callable[[str], Backend],
) -> None:
    backend = make_backend("mariadb")
    _create(backend)
    adapter = open_database(backend.connection)
    try:
        sql = f"INSERT INTO `{ONE}` (id, nom) VALUES (1, 'Ø')"  # Ú and Ø: two
        with pytest.raises(DatabaseError, match="au-delà de la fin"), adapter.atomic():
            adapter._run(sql, [], act("write", ONE)).close()
        with adapter.atomic():
            adapter._run(
                f"INSERT INTO `{ONE}` (id, nom) VALUES (2, 'O')", [], act("write", ONE)
            ).close()
        assert list(adapter.scan({t.name: t for t in adapter.tables()}[ONE])) == [(2, "O")]
    finally:
        adapter.close()


def test_a_connection_that_alters_statement_text_is_measured(
    make_backend: Callable[[str], Backend],
) -> None:
    """Opened under LC_CTYPE=C without ``utf8_ctype``, unixODBC reads MariaDB statement text
    as Latin-1: the probe sees it and says what arrived."""
    backend = make_backend("mariadb")
    pyodbc = need_pyodbc("mariadb")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        conn = pyodbc.connect(backend.connection, autocommit=True, timeout=5)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    try:
        narrow_utf8(pyodbc, conn)
        fault = statement_text_fault(lambda sql: conn.execute(sql).fetchall())
        assert PROBE_TEXT in fault and "C383C289" in fault  # É read as Latin-1: Ã and \x89
    finally:
        conn.close()


def test_the_probe_of_statement_text_names_its_column_in_ascii(
    make_backend: Callable[[str], Backend],
) -> None:
    """The SQLite ODBC driver gives a result column's name with its length in UTF-8 bytes:
    ``SELECT HEX('É€Ú')`` came back named ``HEX('É€Ú')`` and four more code units read past
    its end, which now and then were no UTF-16 and failed the connection's probe (and the
    run: « lecture du schéma impossible »). The probe, run on every connection, names its
    one column in ASCII."""
    backend = make_backend("sqlite-odbc")
    conn = connect(need_pyodbc(backend.name), backend.connection)
    names: list[str] = []

    def run(sql: str) -> list[Any]:
        cursor = conn.execute(sql)
        names.extend(d[0] for d in cursor.description)
        return list(cursor.fetchall())

    try:
        assert statement_text_fault(run) == ""
    finally:
        conn.close()
    assert names == ["probe"]


def test_reads_of_columns_named_outside_ascii_name_their_results_in_ascii(
    make_backend: Callable[[str], Backend],
) -> None:
    """The same fault on a user's table read through the SQLite ODBC driver: its column
    ``prix€`` came back named ``'prix€\\x00é'``. Every read (scan, fetch, read-back in
    hex) names its results in ASCII, with a prefix no column starts with, so a column named
    like the first choice neither shadows nor reorders anything."""
    backend = make_backend("sqlite-odbc")
    backend.execute('CREATE TABLE "prixÉ" (synchro_c0 INTEGER NOT NULL PRIMARY KEY, "prix€" TEXT)')
    backend.execute("INSERT INTO \"prixÉ\" VALUES (2, 'b'), (1, 'Último'), (3, NULL)")
    adapter = open_database(backend.connection)
    conn = connect(need_pyodbc(backend.name), backend.connection)
    try:
        table = next(t for t in adapter.tables() if t.name == "prixÉ")
        sql = adapter.sql  # type: ignore[attr-defined]
        for statement, params in (
            (sql.select(table, table.column_names, ordered=True), []),
            (sql.fetch(table, 2), [1, 3]),
            (sql.fetch(table, 2, raw_text=True), [1, 3]),
        ):
            cursor = conn.execute(statement, params)
            assert [d[0] for d in cursor.description] == ["_synchro_c0", "_synchro_c1"]
            cursor.fetchall()
        assert list(adapter.scan(table)) == [(1, "Último"), (2, "b"), (3, None)]
        assert adapter.read_back(table, [(3,), (1,)]) == [(1, "Último"), (3, None)]
    finally:
        conn.close()
        adapter.close()


def test_names_not_in_ascii_are_refused_when_the_connection_alters_them(
    make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Windows' driver manager does with its ANSI code page, made here with LC_CTYPE=C
    and the locale left as it is: tables named in ASCII are still synchronised, the others
    are refused naming the table and column, and no statement with such a name is sent."""
    backend = make_backend("mariadb")
    _create(backend)
    backend.execute("CREATE TABLE plain (id INTEGER NOT NULL PRIMARY KEY, nom VARCHAR(20))")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    monkeypatch.setattr(odbc_connect, "utf8_ctype", lambda: None)
    try:
        adapter = open_database(backend.connection)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    try:
        found = adapter.tables()
        with pytest.raises(DatabaseError, match="altère le texte") as refused:
            select_tables(found, DatabaseSettings())
        assert f"table {ONE}, nom de la table" in str(refused.value)
        assert f"table {PARENT}, colonne nomØ" in str(refused.value)
        kept = select_tables(found, DatabaseSettings(include=("plain",)))
        (plain,) = kept.synced
        with adapter.atomic():
            adapter.upsert(plain, [(1, "Élève Ø€😀")])  # values are parameters: exact
        assert adapter.read_back(plain, [(1,)]) == [(1, "Élève Ø€😀")]
        with pytest.raises(DatabaseError, match="altère le texte"):
            adapter._run(f"DELETE FROM `{ONE}`", [], act("delete", ONE))
    finally:
        adapter.close()


def test_mariadb_table_named_with_one_such_character_goes_through_the_engine(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """Capture, package, verified apply, snapshot, checksums: every statement the engine
    makes on ``NotÚ`` holds the character once, none is refused, both databases end equal."""
    a, b = make_backend("mariadb"), make_backend("mariadb")
    for backend in (a, b):
        _create(backend)
    rows = [(i, f"Último {i} " + "ヘ" * (i % 5)) for i in range(1, 41)]
    # Written through the adapter: a wide pyodbc statement naming `NotÚ` got junk read past
    # the end of pyodbc's own buffer (the server saw `near '甀'`); narrow text is converted
    # by unixODBC into a buffer ending with a zero, which is what the one unit read is.
    writer = open_database(a.connection)
    table = {t.name: t for t in writer.tables()}[ONE]
    with writer.atomic():
        writer.upsert(table, rows)
    skip = (PARENT, CHILD)
    site = make_node(tmp_path, "3615", a.connection, exclude=skip)
    hq = make_node(tmp_path, "SIEGE", b.connection, hq=True, exclude=skip)
    try:
        for change in (None, "UPDATE", "DELETE"):
            with writer.atomic():
                if change == "UPDATE":
                    writer.upsert(table, [(7, "Ø modifié")])
                elif change == "DELETE":
                    writer.delete(table, [(8,)])
            result = hq.import_package(site.export().path)
            assert result.status == "applied" and result.stats.quarantined == 0
            assert hq.checksums() == site.checksums()
        assert hq.checksums()[ONE][0] == 39
    finally:
        writer.close()
        site.close()
        hq.close()


def test_a_synchro_process_under_lc_all_c_carries_accented_mariadb_names(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """``synchro export`` and ``synchro import`` as processes started with ``LC_ALL=C`` (a
    service, a cron job): the table `Opérations` and its column `libellé` are found and
    written under their own names on both MariaDB databases."""
    a, b = make_backend("mariadb"), make_backend("mariadb")
    pyodbc = need_pyodbc("mariadb")
    for backend in (a, b):
        conn = connect(pyodbc, backend.connection)
        try:
            narrow_utf8(pyodbc, conn)
            conn.execute(
                "CREATE TABLE `Opérations` (id INTEGER NOT NULL PRIMARY KEY,"
                " `libellé` VARCHAR(40)) ENGINE=InnoDB"
            )
            if backend is a:
                for i in range(1, 6):
                    conn.execute("INSERT INTO `Opérations` VALUES (?, ?)", i, f"Crème {i} €")
        finally:
            conn.close()
    configs = {}
    for name, backend, role in (("site", a, "serveur"), ("siege", b, "siege")):
        configs[name] = tmp_path / f"{name}.toml"
        code = "3615" if role == "serveur" else "SIEGE"
        args = ["init", "--role", role, "--site", code, "--db", backend.connection]
        assert main(["--config", str(configs[name]), *args]) == 0
    package = tmp_path / "envoi.pkg"
    for args in (
        ["--config", str(configs["site"]), "export", "--out", str(package)],
        ["--config", str(configs["siege"]), "import", str(package)],
    ):
        done = synchro(*args, cwd=tmp_path, timeout=120, env={"LC_ALL": "C"})  # over LANG
        assert done.returncode == 0, done.stdout + done.stderr
    expected = [(i, f"Crème {i} €".encode().hex().upper()) for i in range(1, 6)]
    for backend in (a, b):  # read apart from the product: the names and values as hex
        rows = backend.query("SELECT id, HEX(`libellé`) FROM `Opérations` ORDER BY id")
        assert rows == expected
        names = backend.query(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND HEX(table_name) = ? AND HEX(column_name) = ?",
            ["Opérations".encode().hex().upper(), "libellé".encode().hex().upper()],
        )
        assert names == [(1,)]


def test_a_mariadb_database_named_with_such_a_character_is_refused(
    make_backend: Callable[[str], Backend],
) -> None:
    """The driver's catalog functions get the database's name cut: a database ``ventesÚ``
    holding a table showed none, so its own changes were never captured, and a run said OK
    unless a package brought rows for its tables. Opening it is refused, naming the base."""
    admin = make_backend("mariadb")
    name = f"{admin.database}_ventesÚ"
    admin.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")  # as hex (backends.py)
    try:
        admin.execute(f"CREATE TABLE `{name}`.t (id INTEGER NOT NULL PRIMARY KEY)")
        connection = admin.connection.replace(f"DATABASE={admin.database};", f"DATABASE={name};")
        with pytest.raises(DatabaseError, match=f"le nom de la base {name} .*renommez la base"):
            open_database(connection)
    finally:
        admin.execute(f"DROP DATABASE `{name}`")


OPENINGS = textwrap.dedent(
    """
    import json, sys, threading, time
    import pyodbc
    from synchro.db.odbc_connect import connect, narrow_utf8, statement_text_fault
    pyodbc.pooling = False
    pg, maria, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    stop = time.monotonic() + seconds
    seen = {"altered": [], "errors": [], "maria": 0}
    threading.excepthook = lambda args: seen["errors"].append(repr(args.exc_value))

    def postgresql():
        while time.monotonic() < stop:
            connect(pyodbc, pg).close()

    def mariadb():
        while time.monotonic() < stop:
            conn = connect(pyodbc, maria)
            narrow_utf8(pyodbc, conn)
            fault = statement_text_fault(lambda sql: conn.execute(sql).fetchall())
            if fault:
                seen["altered"].append(fault)
            conn.close()
            seen["maria"] += 1

    threads = [threading.Thread(target=postgresql) for _ in range(2)]
    threads.append(threading.Thread(target=mariadb))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(seen))
    """
)


def test_connections_opened_in_threads_at_once_keep_statement_text_exact(
    make_backend: Callable[[str], Backend],
) -> None:
    """psqlODBC sets the process's character type from the environment on every connection
    it opens. Under LC_ALL=C (a service), PostgreSQL connections opened in two threads while
    a third opened MariaDB ones: without one opening at a time, 1-3 MariaDB connections in
    5 s read their statement text as Latin-1 (the probe caught them), and ``utf8_ctype``
    itself failed reading the locale's name being freed (UnicodeDecodeError)."""
    pg, maria = make_backend("postgresql"), make_backend("mariadb")
    done = subprocess.run(
        [sys.executable, "-c", OPENINGS, pg.connection, maria.connection, "5"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C"},
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["maria"] > 20, seen  # the MariaDB thread did open connections meanwhile
    assert seen["altered"] == [] and seen["errors"] == [], seen
