"""Row digests of a whole SQLite table: the row engine against the columnar reader (issue 13).

    .venv/bin/python bench/bench_digests.py [--rows 1000000]

The same ``ventes`` table as ``bench_sync.py`` (its DECIMAL column holds SQLite REALs and,
for whole amounts, INTEGERs: the mixed storage classes real SQLite files have). Each phase
runs in a fresh interpreter and its CPU time (start-up and imports included) and peak RSS
come from the kernel (``bench_sync.run_script_phase``):

- ``read``     stdlib sqlite3 ``SELECT *``, every row fetched: the reference;
- ``rows``     the product's checksum (``engine.checksum.table_checksum``) with the
               columnar threshold out of reach: ``Adapter.scan`` and ``row_hasher`` per row;
- ``columnar`` the same call with the threshold at one row: ``db.columnar.batches``
               (storage-class census, then ADBC → Arrow batches) and ``values.vector``.

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


def phase_generate(db: Path, rows: int) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.execute(SCHEMA)
    with conn:
        conn.executemany("INSERT INTO ventes VALUES (?, ?, ?, ?, ?, ?, ?)", _rows(rows))
    classes = conn.execute("SELECT typeof(montant), count(*) FROM ventes GROUP BY 1").fetchall()
    conn.close()
    return {"classes": classes}


def phase_read(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    start = time.process_time()
    cursor = conn.execute("SELECT * FROM ventes")
    count = 0
    while batch := cursor.fetchmany(5000):
        count += len(batch)
    return {"rows": count, "work_cpu": time.process_time() - start}


def phase_rows(db: Path) -> dict[str, Any]:
    return _checksum(db, threshold=10**15)  # the row engine, whatever the size


def phase_columnar(db: Path) -> dict[str, Any]:
    return _checksum(db, threshold=1)  # column by column, whatever the size


def _checksum(db: Path, *, threshold: int) -> dict[str, Any]:
    """The product's own checksum of the table (``engine.checksum.table_checksum``), with
    the columnar threshold (``SYNCHRO_COLUMNAR_FROM``) set for this phase."""
    from synchro.db import open_database
    from synchro.engine.checksum import table_checksum

    os.environ["SYNCHRO_COLUMNAR_FROM"] = str(threshold)
    with open_database(str(db)) as adapter:
        table = _discover(adapter)
        start = time.process_time()
        count, digest = table_checksum(adapter, table)
    return {"rows": count, "sum": digest, "work_cpu": time.process_time() - start}


def _discover(adapter: Any) -> Any:
    return next(t for t in adapter.tables() if t.name == "ventes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        db = Path(args.db)
        phases = {"read": phase_read, "rows": phase_rows, "columnar": phase_columnar}
        result = (
            phase_generate(db, args.rows) if args.phase == "generate" else phases[args.phase](db)
        )
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="synchro-digests-") as folder:
        db = Path(folder) / "a.db"
        extra = ["--db", str(db), "--rows", str(args.rows)]
        made = run_script_phase(__file__, "generate", extra)
        res = {
            name: run_script_phase(__file__, name, extra) for name in ("read", "rows", "columnar")
        }
    base = res["read"]["cpu"]
    print(f"rows {args.rows:,}; montant storage classes {made['classes']}")
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
