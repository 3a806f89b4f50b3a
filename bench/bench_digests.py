"""Row digests of a whole table: the row engine against the columnar reader (issue 13).

    .venv/bin/python bench/bench_digests.py [--rows 1000000]
    .venv/bin/python bench/bench_digests.py --backend postgresql --rows 200000
    .venv/bin/python bench/bench_digests.py --backend mariadb --rows 200000

The same ``ventes`` table as ``bench_sync.py`` (its DECIMAL column holds SQLite REALs and,
for whole amounts, INTEGERs: the mixed storage classes real SQLite files have). Each phase
runs in a fresh interpreter and its CPU time (start-up and imports included) and peak RSS
come from the kernel (``bench_sync.run_script_phase``):

- ``read``     stdlib sqlite3 ``SELECT *``, every row fetched: the reference;
- ``rows``     the product's checksum (``engine.checksum.table_checksum``) with the
               columnar threshold out of reach: ``Adapter.scan`` and ``row_hasher`` per row;
- ``columnar`` the same call with the threshold at one row: ``db.columnar.batches``
               (storage-class census, then ADBC → Arrow batches) and ``values.vector``.

On PostgreSQL and MariaDB (``--backend``; a database of its own on 127.0.0.1, filled by
the server itself, dropped at the end) the reference is pyodbc's ``fetchmany`` of the same
SELECT, and the columnar reader is arrow-odbc (``db.columnar_odbc``). Only the client's CPU
is counted: the server's share (the text casts, the length checks) is not in the figures.

The two sums must be equal (the bench fails otherwise); ratios are CPU time over the
reference's. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sync import SCHEMA, _rows, run_script_phase

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SERVER_SCHEMA = (
    "CREATE TABLE ventes (site VARCHAR(10) NOT NULL, num INTEGER NOT NULL, article_id INTEGER,"
    " qte INTEGER, montant DECIMAL(12,2), quand {dtm}, note VARCHAR(100), PRIMARY KEY (site, num))"
)
# The rows bench_sync writes (~100 bytes, key (site, num)), made by the server itself.
SERVER_FILL = {
    "postgresql": (
        "INSERT INTO ventes SELECT 'S' || lpad(((i - 1) / 10000 + 1)::text, 3, '0'), i,"
        " 1 + i % 5000, 1 + i % 9, ((i * 37) % 100000) / 100.0,"
        " timestamp '2024-01-01' + (i % 8760) * interval '1 hour' + (i % 59) * interval '1 s',"
        " 'vente n°' || i || ' caisse ' || (i % 7) || ' — client '"
        " || lpad((i % 9973)::text, 5, '0')"
        " FROM generate_series(1, {n}) AS i"
    ),
    "mariadb": (
        "INSERT INTO ventes SELECT CONCAT('S', LPAD((seq - 1) DIV 10000 + 1, 3, '0')), seq,"
        " 1 + seq % 5000, 1 + seq % 9, ((seq * 37) % 100000) / 100.0,"
        " TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq % 8760) HOUR"
        " + INTERVAL (seq % 59) SECOND,"
        " CONCAT('vente n°', seq, ' caisse ', seq % 7, ' — client ', LPAD(seq % 9973, 5, '0'))"
        " FROM seq_1_to_{n}"
    ),
}


def phase_generate(db: Path, rows: int) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.execute(SCHEMA)
    with conn:
        conn.executemany("INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?)", _rows(rows))
    classes = conn.execute("SELECT typeof(montant), count(*) FROM ventes GROUP BY 1").fetchall()
    conn.close()
    return {"classes": classes}


def phase_read(db: str) -> dict[str, Any]:
    if "DRIVER=" in db:
        import pyodbc

        conn: Any = pyodbc.connect(db)
    else:
        conn = sqlite3.connect(db)
    start = time.process_time()
    cursor = conn.execute("SELECT * FROM ventes")
    count = 0
    while batch := cursor.fetchmany(5000):
        count += len(batch)
    return {"rows": count, "work_cpu": time.process_time() - start}


def phase_rows(db: str) -> dict[str, Any]:
    return _checksum(db, threshold=10**15)  # the row engine, whatever the size


def phase_columnar(db: str) -> dict[str, Any]:
    return _checksum(db, threshold=1)  # column by column, whatever the size


def _checksum(db: str, *, threshold: int) -> dict[str, Any]:
    """The product's own checksum of the table (``engine.checksum.table_checksum``), with
    the columnar threshold (``SYNCHRO_COLUMNAR_FROM``) set for this phase."""
    from synchro.db import open_database
    from synchro.engine.checksum import table_checksum

    os.environ["SYNCHRO_COLUMNAR_FROM"] = str(threshold)
    with open_database(db) as adapter:
        table = _discover(adapter)
        start = time.process_time()
        count, digest = table_checksum(adapter, table)
    return {"rows": count, "sum": digest, "work_cpu": time.process_time() - start}


def _server_table(name: str, folder: Path, rows: int) -> tuple[Any, dict[str, Any]]:
    """A database of its own on the server, ``ventes`` filled by the server itself."""
    from backends import Backend

    server = Backend(name, folder)
    dtm = "TIMESTAMP" if name == "postgresql" else "DATETIME"
    server.execute(SERVER_SCHEMA.format(dtm=dtm))
    server.execute(SERVER_FILL[name].format(n=int(rows)))
    return server, {"classes": "typed by the server"}


def _discover(adapter: Any) -> Any:
    return next(t for t in adapter.tables() if t.name == "ventes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mariadb"), default="sqlite")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phases = {"read": phase_read, "rows": phase_rows, "columnar": phase_columnar}
        result = (
            phase_generate(Path(args.db), args.rows)
            if args.phase == "generate"
            else phases[args.phase](args.db)
        )
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="synchro-digests-") as folder:
        server = None
        if args.backend == "sqlite":
            db = str(Path(folder) / "a.db")
            made = run_script_phase(__file__, "generate", ["--db", db, "--rows", str(args.rows)])
        else:
            server, made = _server_table(args.backend, Path(folder), args.rows)
            db = server.connection
        extra = ["--db", db, "--rows", str(args.rows)]
        try:
            res = {
                name: run_script_phase(__file__, name, extra)
                for name in ("read", "rows", "columnar")
            }
        finally:
            if server is not None:
                server.close()
    base = res["read"]["cpu"]
    print(f"{args.backend}, rows {args.rows:,}; montant storage classes {made['classes']}")
    print("| phase | CPU s (process) | CPU s (work) | CPU ratio to read | peak MB |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        ratio = r["cpu"] / base
        print(
            f"| {name} | {r['cpu']:.2f} | {r['work_cpu']:.2f} | {ratio:.2f} | {r['peak_mb']:.0f} |"
        )
    same = (
        res["rows"]["sum"] == res["columnar"]["sum"]
        and res["rows"]["rows"] == res["columnar"]["rows"]
    )
    print(f"  {'OK  ' if same else 'FAIL'} the two sums are equal ({res['rows']['sum']})")
    print(f"  columnar / rows, CPU time ratio {res['columnar']['cpu'] / res['rows']['cpu']:.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
