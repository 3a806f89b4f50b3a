"""``synchro.db.columnar``: SQLite tables read as Arrow batches, every value exact.

- The fidelity catalogue written through the SQLite adapter reads back as Arrow with the
  values stdlib sqlite3 reads, in key order, and hashes (``values.vector``) as the row
  engine hashes the adapter's rows.
- The driver's hazards, measured (adbc-driver-sqlite 1.13), are each either read exactly
  or refused (None), never read as other values: integers then reals (the read would fail),
  reals then integers beyond 2**53 (rounded), text then blob, integers among date texts.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import Db
from fidelity_helpers import TABLES, create_tables, write_each

from synchro.db import columnar
from synchro.db.base import Column, Table
from synchro.db.dialects import Dialect
from synchro.engine import checksum
from synchro.errors import DatabaseError
from synchro.values import Kind, row_hasher, vector

SQLITE = Dialect("sqlite", '"')
N = 20_000  # more than one batch of the driver's, so a later batch can differ from the first


def read_all(path: str | Path, table: Table, *, ordered: bool = True) -> list[list[Any]] | None:
    """The table's columns (Python values) read through ``columnar.batches``, or None."""
    found = columnar.batches(SQLITE, path, table, ordered=ordered)
    if found is None:
        return None
    columns: list[list[Any]] = [[] for _ in table.column_names]
    for batch in found:
        for i, array in enumerate(columnar.column_arrays(batch, table.column_names)):
            columns[i].extend(array.to_pylist())
    return columns


def _fetchone(path: str) -> Callable[[str], Any]:
    def fetchone(sql: str) -> Any:
        conn = sqlite3.connect(path)
        try:
            return conn.execute(sql).fetchone()
        finally:
            conn.close()

    return fetchone


def digests_of(path: str | Path, table: Table) -> list[bytes] | None:
    found = columnar.batches(SQLITE, path, table, ordered=True)
    if found is None:
        return None
    out: list[bytes] = []
    for batch in found:
        out += vector.batch_digests(table.kinds, columnar.column_arrays(batch, table.column_names))
    return out


def test_the_catalogue_reads_exactly_and_hashes_as_the_row_engine(
    make_backend: Callable[[str], Backend],
) -> None:
    backend = make_backend("sqlite")
    create_tables(backend)
    with Db(backend.connection) as db:
        for k in TABLES:
            table = db.tables[f"fid_{k.name}"]
            write_each(db, table.name, [(i, v.value) for i, v in enumerate(k.values)])
            rows = list(db.adapter.scan(table, ordered=True))
            plain = sqlite3.connect(backend.database)
            stored = plain.execute(f"SELECT id, v FROM {table.name} ORDER BY id").fetchall()
            plain.close()
            columns = read_all(backend.database, table)
            classes = columnar.census(SQLITE, _fetchone(backend.database), table)
            if columns is None:  # only a column of several storage classes is refused
                assert len(classes["v"]) > 1, table.name
                continue
            assert list(zip(*columns, strict=True)) == [tuple(r) for r in stored], table.name
            hasher = row_hasher(tuple(table.kinds))
            assert digests_of(backend.database, table) == [hasher(r) for r in rows], table.name


def _table_of(tmp_path: Path, decl: str, values: list[Any], kind: Kind) -> tuple[Path, Table]:
    path = tmp_path / f"mixed_{abs(hash((decl, kind, len(values))))}.db"
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE t(id INTEGER PRIMARY KEY, v {decl})")
    conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    conn.commit()
    conn.close()
    return path, Table("t", (Column("id", Kind.INT), Column("v", kind)), ("id",))


@pytest.mark.parametrize(
    ("case", "decl", "values", "kinds", "readable"),
    [
        (
            "integers then reals",
            "DECIMAL(12,2)",
            [5] * N + [5.25] * N,
            (Kind.DECIMAL, Kind.FLOAT, Kind.INT),
            True,
        ),
        (
            "reals then integers",
            "DECIMAL(12,2)",
            [0.5] * N + [7] * N,
            (Kind.DECIMAL, Kind.FLOAT),
            True,
        ),
        (
            "integers at ±2**53 and reals",
            "NUMERIC",
            [2**53, -(2**53)] * N + [0.5],
            (Kind.DECIMAL,),
            True,
        ),
        (
            "integers beyond 2**53 then reals",
            "NUMERIC",
            [2**53 + 1] * N + [0.5] * N,
            (Kind.DECIMAL, Kind.INT),
            False,
        ),
        (
            "reals then integers beyond 2**53",
            "NUMERIC",
            [0.5] * N + [-(2**63)] * N,
            (Kind.DECIMAL,),
            False,
        ),
        ("text then blob", "TEXT", ["x"] * N + [b"\x00x"] * N, (Kind.TEXT, Kind.BLOB), False),
        (
            "integers among date texts",
            "DATETIME",
            ["2024-01-01 10:00:00"] * N + [1700000000],
            (Kind.DATETIME,),
            False,
        ),
        ("nulls then integers", "INTEGER", [None] * N + [5] * N, (Kind.INT,), True),
        ("integers and reals as moments", "DATETIME", [5] * N + [5.5], (Kind.DATETIME,), False),
        ("integers and reals as booleans", "BOOLEAN", [1] * N + [1.0, 0.5], (Kind.BOOL,), False),
        ("only nulls", "INTEGER", [None] * 10, (Kind.INT, Kind.TEXT), True),
    ],
)
def test_mixed_storage_classes_are_read_exactly_or_refused(
    tmp_path: Path, case: str, decl: str, values: list[Any], kinds: tuple[Kind, ...], readable: bool
) -> None:
    for kind in kinds:
        path, table = _table_of(tmp_path, decl, values, kind)
        stored = [r[0] for r in sqlite3.connect(path).execute("SELECT v FROM t ORDER BY id")]
        columns = read_all(path, table)
        if not readable:
            assert columns is None, case
            continue
        assert columns is not None, case
        assert columns[1] == stored, case  # 5 read as 5.0 compares equal; nothing rounded
        hasher = row_hasher(tuple(table.kinds))
        assert digests_of(path, table) == [hasher(r) for r in enumerate(stored)], (case, kind)


def test_unordered_read_holds_every_row(tmp_path: Path) -> None:
    path, table = _table_of(tmp_path, "TEXT", [f"é{i}" for i in range(3 * N)], Kind.TEXT)
    columns = read_all(path, table, ordered=False)
    assert columns is not None
    assert sorted(columns[0]) == list(range(3 * N))


def test_checksums_through_the_columnar_reader_equal_the_row_engines(
    make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every catalogue table, and one the reader refuses (text then blob): the checksum
    read column by column (threshold lowered to 1 row) equals the one read row by row."""
    backend = make_backend("sqlite")
    create_tables(backend)
    used: list[str] = []
    real = checksum._columnar_checksum

    def spy(table: Table, batches: Any) -> tuple[int, str]:
        used.append(table.name)
        return real(table, batches)

    with Db(backend.connection) as db:
        for k in TABLES:
            write_each(db, f"fid_{k.name}", [(i, v.value) for i, v in enumerate(k.values)])
        db.write("fid_text", [(100, "x")])
        db.adapter._conn.execute("UPDATE fid_text SET v = x'00ff' WHERE id = 100")  # type: ignore[attr-defined]
        tables = [db.tables[f"fid_{k.name}"] for k in TABLES]
        by_rows = checksum.checksums(db.adapter, tables)
        monkeypatch.setattr(columnar, "COLUMNAR_FROM", 1)
        monkeypatch.setattr(checksum, "_columnar_checksum", spy)
        by_columns = checksum.checksums(db.adapter, tables)
    assert by_columns == by_rows
    assert "fid_text" not in used  # refused: a BLOB among texts, read row by row
    assert len(used) >= len(TABLES) - 3, used


def test_a_driver_error_is_a_database_error(tmp_path: Path) -> None:
    path, table = _table_of(tmp_path, "TEXT", ["a"], Kind.TEXT)
    gone = Table("gone", table.columns, table.key)
    with pytest.raises(DatabaseError, match="lecture en colonnes de la table gone impossible"):
        columnar.batches(SQLITE, path, gone)


HIDE_PLANE = """\
import importlib.abc, sys
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("pyarrow", "adbc_driver_sqlite", "adbc_driver_manager"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
"""

EXPORT_TWICE = """\
import sqlite3, sys
from pathlib import Path
from synchro.capture import full_scan
from synchro.config.model import Config, Role
from synchro.db import columnar
from synchro.engine.nodes import build_node
scans = []
real = full_scan._columnar
def counted(table, batches):
    scans.append(table.name)
    return real(table, batches)
full_scan._columnar = counted
tmp = Path(sys.argv[1])
conn = sqlite3.connect(tmp / "a.db")
conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v DECIMAL(10,2))")
with conn:
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, i / 4) for i in range(50)])
config = Config(role=Role.SITE, site="A")
with build_node(config, tmp / "a.state", tmp / "a-pk", connection=str(tmp / "a.db")) as node:
    first = node.export().manifest.rows
    with conn:
        conn.execute("UPDATE t SET v = v + 1 WHERE id < 5")
    second = node.export().manifest.rows
print(columnar.available(), len(scans), first, second)
"""


@pytest.mark.parametrize("hidden", [False, True], ids=["installed", "missing"])
def test_without_pyarrow_and_adbc_big_tables_are_read_row_by_row(
    tmp_path: Path, hidden: bool
) -> None:
    """With the threshold at one row, a second export reads column by column when the
    plane's packages are there, and row by row, with the same result, when they are not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SYNCHRO_COLUMNAR_FROM"] = "1"
    if hidden:
        (tmp_path / "hide").mkdir()
        (tmp_path / "hide" / "sitecustomize.py").write_text(HIDE_PLANE)
        env["PYTHONPATH"] = str(tmp_path / "hide")
    done = subprocess.run(
        [sys.executable, "-c", EXPORT_TWICE, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # available, columnar scans (the second export only), rows of each package
    assert done.stdout.split() == [str(not hidden), "0" if hidden else "1", "50", "5"]
