"""Adapter throughput against the raw driver, measured in the same run.

    .venv/bin/python bench/bench_db.py [ROWS] [BACKEND ...]

For each back end (sqlite, sqlite-odbc, postgresql, mariadb) it creates a fresh database
(as the tests do), then times, on ``ventes(site, num, article_id, qte, montant, quand,
note)`` with a composite key:

- baseline: raw multi-row ``INSERT ... VALUES`` of 100 rows through the same driver;
- ``upsert`` into the empty table and ``upsert`` over existing rows (updates);
- ``scan`` ordered by key (normalised values) against a raw ``fetchmany`` loop;
- ``fetch`` by keys, and locked in a transaction by batches of 500 as the apply reads
  the rows it writes over (``Dialect.locking``), and ``delete`` by keys;
- the engine's whole import of a package of the same rows into the empty table (a
  Serveur's ``import_package``: checks, apply, read-back of every row, snapshot), the
  package exported by a node on an SQLite file (issue 13: ≥ 80 % of the baseline), then
  of a package that changes every row (the rows read locked, then written).

It prints rows/s and the ratio to the baseline. Not a test: speed is never asserted.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from backends import BACKENDS, Backend

from synchro.db import open_database

DDL = (
    "CREATE TABLE ventes (site VARCHAR(10) NOT NULL, num INTEGER NOT NULL, article_id INTEGER,"
    " qte INTEGER, montant DECIMAL(12,2), quand {dtm}, note VARCHAR(100), PRIMARY KEY (site, num))"
)


def rows(n: int, bump: int = 0) -> list[tuple[Any, ...]]:
    base = dt.datetime(2025, 1, 1)
    return [
        (
            f"S{i % 7}",
            i,
            i % 1000,
            (i + bump) % 13,
            Decimal(i % 10000) / 100,
            base + dt.timedelta(seconds=i),
            f"note {i}",
        )
        for i in range(n)
    ]


def timed(label: str, count: int, fn: Callable[[], Any], baseline: float | None) -> float:
    start = time.perf_counter()
    fn()
    rate = count / (time.perf_counter() - start)
    ratio = f"  ×{rate / baseline:.2f} of baseline" if baseline else ""
    print(f"  {label:<28} {rate:>10,.0f} rows/s{ratio}")
    return rate


def raw_insert(backend: Backend, data: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERT of 100 rows, one transaction, through the back end's own driver."""
    one = "(" + ", ".join("?" * 7) + ")"
    if backend.name == "sqlite":
        conn = sqlite3.connect(backend.database)
        data = [
            tuple(str(v) if isinstance(v, Decimal | dt.datetime) else v for v in r) for r in data
        ]
    else:
        import pyodbc

        conn = pyodbc.connect(backend.connection)
    try:
        for start in range(0, len(data), 100):
            part = data[start : start + 100]
            sql = "INSERT INTO ventes VALUES " + ", ".join([one] * len(part))
            conn.execute(sql, [v for r in part for v in r])
        conn.commit()
    finally:
        conn.close()


def bench(name: str, n: int, folder: Path) -> None:
    print(f"{name} ({n} rows)")
    backend = Backend(name, folder)
    try:
        dtm = "TIMESTAMP" if backend.dialect == "postgresql" else "DATETIME"
        backend.execute(DDL.format(dtm=dtm))
        data = rows(n)
        base = timed("baseline raw INSERT x100", n, lambda: raw_insert(backend, data), None)
        backend.execute("DELETE FROM ventes")
        with open_database(backend.connection) as db:
            table = next(t for t in db.tables() if t.name == "ventes")

            def upsert(batch: list[tuple[Any, ...]]) -> None:
                with db.atomic():
                    db.upsert(table, batch)

            timed("upsert (insert)", n, lambda: upsert(data), base)
            timed("upsert (update)", n, lambda: upsert(rows(n, 1)), base)
            timed("scan ordered", n, lambda: sum(1 for _ in db.scan(table)), base)
            keys = [(r[0], r[1]) for r in data[::3]]
            timed("fetch by key", len(keys), lambda: db.fetch(table, keys), base)

            def fetch_locked() -> None:
                with db.atomic():  # the apply's read of the rows it writes over
                    for start in range(0, len(keys), 500):
                        db.fetch(table, keys[start : start + 500], lock=True)

            timed("fetch by key, locked", len(keys), fetch_locked, base)

            def delete() -> None:
                with db.atomic():
                    db.delete(table, keys)

            timed("delete by key", len(keys), delete, base)
        backend.execute("DELETE FROM ventes")
        engine_import(backend, folder, data, base)
    finally:
        backend.close()


def engine_import(backend: Backend, folder: Path, data: list[tuple[Any, ...]], base: float) -> None:
    """A node on an SQLite file exports ``data``; a node on ``backend`` imports it."""
    from engine_helpers import make_node

    source = folder / "source.db"
    conn = sqlite3.connect(source)
    conn.execute(DDL.format(dtm="DATETIME"))
    conn.executemany(
        "INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?)",
        [tuple(str(v) if isinstance(v, Decimal | dt.datetime) else v for v in r) for r in data],
    )
    conn.commit()
    conn.close()
    sender = make_node(folder, "A", str(source))
    receiver = make_node(folder, "B", backend.connection)
    try:
        package = sender.export().path

        def import_package() -> None:
            status = receiver.import_package(package).status
            if status != "applied":
                raise RuntimeError(f"import: {status}")

        timed("engine import (Serveur)", len(data), import_package, base)
        conn = sqlite3.connect(source)
        conn.execute("UPDATE ventes SET qte = qte + 1")
        conn.commit()
        conn.close()
        package = sender.export().path  # every row changed: read locked, then written
        timed("engine import (updates)", len(data), import_package, base)
    finally:
        sender.close()
        receiver.close()


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 50_000
    names = argv[1:] or list(BACKENDS)
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(names):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            try:
                bench(name, n, folder)
            except BaseException as exc:  # pytest.skip from require(): driver/server missing
                if isinstance(exc, KeyboardInterrupt):
                    raise
                print(f"  skipped: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
