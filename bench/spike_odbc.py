"""Issue 13 spike: can ``arrow-odbc`` read (and write) Arrow batches through the installed
"PostgreSQL Unicode" and "MariaDB Unicode" drivers, exactly?

Usage: ``.venv/bin/python bench/spike_odbc.py [--rows 200000]``

Needs ``pip install arrow-odbc pyarrow`` (spike only; pyodbc, already a dependency, creates
and drops the throwaway databases); without them it says so and exits 0. Servers on
127.0.0.1 as in DESIGN.md §5 (PostgreSQL trust user postgres, MariaDB root without password).

Per driver: a uniquely named database is created, ``ventes`` filled from bench_sync's rows
with ``arrow_odbc.insert_into_table`` (timed), read back with
``read_arrow_batches_from_odbc`` (timed, CPU), the Arrow types printed, the values compared
with the rows sent, then a row of text holding characters the MariaDB driver loses in
UTF-16 (DESIGN.md §5) written and read back with each payload text encoding; the database
is dropped at the end whatever happened.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sync

HARD_TEXT = "Ø Ù Ú Û ט י ך כ Ә 中文 ÿ é — 𝄞"
SERVERS = {
    "PostgreSQL Unicode": (
        "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Uid=postgres;Pwd=;Database={db}",
        "TIMESTAMP",
        "postgres",
        " WITH (FORCE)",  # arrow-odbc may still hold its connection
    ),
    "MariaDB Unicode": (
        "Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;User=root;Password=;Database={db}",
        "DATETIME",
        "mysql",
        "",
    ),
}


def table_sql(timestamp: str) -> str:
    return (
        "CREATE TABLE ventes(site VARCHAR(10) NOT NULL, num INTEGER NOT NULL, "
        "article_id INTEGER NOT NULL, qte INTEGER NOT NULL, montant DECIMAL(12, 2) NOT NULL, "
        f"quand {timestamp} NOT NULL, note VARCHAR(100), PRIMARY KEY (site, num))"
    )


def source(rows: int) -> Any:
    import pyarrow as pa

    data = list(bench_sync._rows(rows))
    cols = list(zip(*data, strict=True))
    schema = pa.schema(
        [
            ("site", pa.string()),
            ("num", pa.int32()),
            ("article_id", pa.int32()),
            ("qte", pa.int32()),
            ("montant", pa.decimal128(12, 2)),
            ("quand", pa.timestamp("us")),
            ("note", pa.string()),
        ]
    )
    arrays = [
        pa.array(cols[0]),
        pa.array(cols[1], pa.int32()),
        pa.array(cols[2], pa.int32()),
        pa.array(cols[3], pa.int32()),
        pa.array([Decimal(v) for v in cols[4]], pa.decimal128(12, 2)),
        pa.array([dt.datetime.fromisoformat(v) for v in cols[5]], pa.timestamp("us")),
        pa.array(cols[6]),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def admin(driver: str, sql: str) -> None:
    import pyodbc

    template, _ts, admin_db, _force = SERVERS[driver]
    conn = pyodbc.connect(template.format(db=admin_db), autocommit=True)
    conn.execute(sql)
    conn.close()


def one(driver: str, rows: int) -> None:
    import arrow_odbc
    import pyarrow as pa

    template, timestamp, _admin, force = SERVERS[driver]
    db = f"synchro_spike_{os.getpid()}"
    admin(driver, f"CREATE DATABASE {db}")
    try:
        conn_str = template.format(db=db)
        import pyodbc

        conn = pyodbc.connect(conn_str, autocommit=True)
        conn.execute(table_sql(timestamp))
        conn.execute("CREATE TABLE hard(id INTEGER PRIMARY KEY, t VARCHAR(100))")
        conn.close()
        table = source(rows)
        start, cpu = time.perf_counter(), time.process_time()
        arrow_odbc.insert_into_table(
            pa.RecordBatchReader.from_batches(table.schema, table.to_batches(10_000)),
            chunk_size=1000,
            table="ventes",
            connection_string=conn_str,
        )
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        print(f"  insert_into_table: {rows / wall:,.0f} rows/s wall, {used:.2f} CPU s (client)")
        start, cpu = time.perf_counter(), time.process_time()
        reader = arrow_odbc.read_arrow_batches_from_odbc(
            "SELECT * FROM ventes ORDER BY site, num", conn_str, batch_size=65_536
        )
        got = pa.Table.from_batches(list(reader), schema=reader.schema)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        print(f"  read_arrow_batches: {rows / wall:,.0f} rows/s wall, {used:.2f} CPU s (client)")
        print(f"  types read: {', '.join(f'{f.name} {f.type}' for f in got.schema)}")
        same = got.cast(table.schema).equals(
            table.sort_by([("site", "ascending"), ("num", "ascending")])
        )
        print(f"  values read = values sent: {same}")
        for enc in ("AUTO", "UTF8", "UTF16"):
            encoding = getattr(arrow_odbc.TextEncoding, enc)
            check_text(conn_str, encoding, enc)
    finally:
        admin(driver, f"DROP DATABASE {db}{force}")


def check_text(conn_str: str, encoding: Any, name: str) -> None:
    import arrow_odbc
    import pyarrow as pa
    import pyodbc

    conn = pyodbc.connect(conn_str, autocommit=True)
    conn.execute("DELETE FROM hard")
    conn.close()
    try:
        batch = pa.table({"id": pa.array([1], pa.int32()), "t": pa.array([HARD_TEXT])})
        arrow_odbc.insert_into_table(
            pa.RecordBatchReader.from_batches(batch.schema, batch.to_batches()),
            chunk_size=10,
            table="hard",
            connection_string=conn_str,
        )
        reader = arrow_odbc.read_arrow_batches_from_odbc(
            "SELECT t FROM hard", conn_str, payload_text_encoding=encoding
        )
        back = [v for b in reader for v in b.column(0).to_pylist()]
        ok = back == [HARD_TEXT]
        print(f"  hard text, read as {name}: {'exact' if ok else f'WRONG {back!r}'}")
    except Exception as exc:  # a spike: report what the driver said and go on
        print(f"  hard text, read as {name}: error {type(exc).__name__}: {exc}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    import importlib.util

    lacking = [
        m for m in ("arrow_odbc", "pyarrow", "pyodbc") if importlib.util.find_spec(m) is None
    ]
    if lacking:
        print(
            f"spike_odbc: needs {', '.join(lacking)}: pip install arrow-odbc pyarrow (spike only)"
        )
        return 0
    import pyodbc

    pyodbc.pooling = False  # so the throwaway databases can be dropped
    for driver in SERVERS:
        print(f"{driver}, {args.rows:,} rows:")
        try:
            one(driver, args.rows)
        except Exception as exc:  # a spike: one server down must not hide the other
            print(f"  failed: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
