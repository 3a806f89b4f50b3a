"""What checking SQLite foreign keys declared ``DEFERRABLE INITIALLY DEFERRED`` costs.

    .venv/bin/python bench/bench_deferred.py [--rows 200000] [--pairs 3]

SQLite checks such a key only at the commit, where a row it refuses fails the whole
apply; the adapter checks it after each write instead (``db.deferred``: one keyed read
of the parents per statement). Two senders hold the same rows, ``clients`` (rows / 2) and
``commandes`` (rows), each order referring to a client: in ``deferred`` the key is
declared ``DEFERRABLE INITIALLY DEFERRED`` (as Django declares it), in ``immediate``, the
baseline, it is not. Each sender's first package is applied to a receiver with the same
schema, empty: the most the check can cost (every row written).

Each import runs in a fresh interpreter (``bench_sync.run_script_phase``: CPU from the
kernel, start-up included), baseline and checked in pairs; the line printed last is the
median of the CPU ratios deferred / immediate. Nothing is asserted on time; both
receivers must end with every row (the bench fails otherwise).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_parents import CLIENTS, fill
from bench_sync import _node, paired_runs, run_script_phase

ORDERS = (
    "CREATE TABLE commandes (id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL"
    " REFERENCES clients (id){later}, montant DECIMAL(12,2), etat VARCHAR(20), note TEXT)"
)
KINDS = {"immediate": "", "deferred": " DEFERRABLE INITIALLY DEFERRED"}


def generate(work: Path, rows: int) -> None:
    for name, later in KINDS.items():
        for node in ("a", "b"):
            conn = sqlite3.connect(work / f"{name}-{node}.db")
            with conn:
                conn.execute(CLIENTS)
                conn.execute(ORDERS.format(later=later))
                if node == "a":
                    fill(conn, rows)
            conn.close()


def phase_export(work: Path, name: str) -> dict[str, Any]:
    with _node(work, f"{name}-a", "serveur") as node:
        result = node.export()
    (work / f"{name}.pkg").write_text(str(result.path))
    return {"rows": result.manifest.rows}


def phase_import(work: Path, name: str) -> dict[str, Any]:
    path = Path((work / f"{name}.pkg").read_text())
    with _node(work, f"{name}-b", "serveur") as node:
        result = node.import_package(path)
    if result.status != "applied" or result.stats.quarantined:
        raise SystemExit(f"import: {result.status} {result.stats}")
    return {"rows": result.stats.rows}


def main() -> None:
    def one_pair(work: Path, args: argparse.Namespace) -> float:
        cpu = {}
        for name in KINDS:
            extra = ["--dir", str(work), "--name", name]
            run_script_phase(__file__, "export", extra)
            got = run_script_phase(__file__, "import", extra)
            cpu[name] = got["cpu"]
            print(f"{work.name} {name:9}: {got['rows']} rows applied, CPU {got['cpu']:.2f} s")
            if got["rows"] != args.rows + args.rows // 2:
                raise SystemExit(f"{name}: {got['rows']} rows applied")
        return float(cpu["deferred"] / cpu["immediate"])

    phases = {"export": phase_export, "import": phase_import}
    done = paired_runs(__doc__ or "", phases, generate, one_pair, "bench-deferred-")
    if done is None:
        return
    args, ratios = done
    print(
        f"import of {args.rows} orders: CPU ratio deferred / immediate "
        f"{statistics.median(ratios):.3f} (pairs {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
