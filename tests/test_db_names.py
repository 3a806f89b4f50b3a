"""Table and column names the MariaDB driver's UTF-16 path cuts (Ú, Ø, ヘ...).

Discovery must find their columns, key and foreign keys (``db.mysql_catalog``), and rows
must be written and read under those names, on every back end.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from backends import BACKENDS, Backend, need_pyodbc

from synchro.db import open_database
from synchro.db.mysql_catalog import cut_by_driver
from synchro.db.odbc_connect import narrow_utf8

PARENT, CHILD = "ÉlèveÚ", "ノートヘ"


def _create(backend: Backend) -> None:
    q = "`" if backend.dialect == "mysql" else '"'
    statements = [
        f"CREATE TABLE {q}{PARENT}{q} (id INTEGER NOT NULL PRIMARY KEY, {q}nomØ{q} VARCHAR(20))",
        f"CREATE TABLE {q}{CHILD}{q} (id INTEGER NOT NULL PRIMARY KEY, {q}élèveÚ{q} INTEGER,"
        f" FOREIGN KEY ({q}élèveÚ{q}) REFERENCES {q}{PARENT}{q} (id))",
    ]
    if backend.dialect != "mysql":
        for sql in statements:
            backend.execute(sql)
        return
    pyodbc = need_pyodbc(backend.name)  # the test's own connection would cut the names too
    conn = pyodbc.connect(backend.connection, autocommit=True, timeout=5)
    try:
        narrow_utf8(pyodbc, conn)
        for sql in statements:
            conn.execute(sql + " ENGINE=InnoDB")
    finally:
        conn.close()


def test_names_the_driver_would_cut_are_recognised() -> None:
    assert cut_by_driver("Ú") and cut_by_driver("ヘ") and cut_by_driver("a\u05d8")
    assert not cut_by_driver("Élève") and not cut_by_driver("中文") and not cut_by_driver("😀")


@pytest.mark.parametrize("name", BACKENDS)
def test_tables_with_such_names_are_discovered_and_synchronised(
    name: str, make_backend: Callable[[str], Backend]
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
        with adapter.atomic():
            adapter.upsert(parent, [(1, "Último")])
            adapter.upsert(child, [(1, 1)])
        assert list(adapter.scan(parent)) == [(1, "Último")]
        assert adapter.read_back(child, [(1,)]) == [(1, 1)]
    finally:
        adapter.close()
