"""What checking the parents of the rows a capture sends costs (``capture.parents``).

    .venv/bin/python bench/bench_parents.py [--rows 200000] [--pairs 3]

Two SQLite files hold the same rows: ``clients`` (rows / 2) and ``commandes`` (rows), each
order referring to a client. In ``fk.db`` the orders' table declares its foreign key, so
the capture checks every order it sends against the clients' snapshot; ``nofk.db``, the
baseline, declares none, so nothing is checked. The phase is a node's first export of the
whole database (every row sent: the most the check can cost); ``--changed`` instead
measures an ordinary run (1 % of the orders changed since the first export).

Each export runs in a fresh interpreter (``bench_sync.run_script_phase``: CPU from the
kernel, start-up included), baseline and checked in pairs; the line printed last is the
median of the CPU ratios checked / baseline. Nothing is asserted on time; the two packages
must hold the same number of rows (the bench fails otherwise).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sync import _node, paired_runs, run_script_phase

CLIENTS = "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom VARCHAR(40) NOT NULL, ville TEXT)"
ORDERS = (
    "CREATE TABLE commandes (id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL{fk},"
    " montant DECIMAL(12,2), etat VARCHAR(20), note TEXT)"
)


def generate(work: Path, rows: int) -> None:
    for name, fk in (("fk", " REFERENCES clients (id)"), ("nofk", "")):
        conn = sqlite3.connect(work / f"{name}.db")
        with conn:
            conn.execute(CLIENTS)
            conn.execute(ORDERS.format(fk=fk))
            fill(conn, rows)
        conn.close()


def fill(conn: sqlite3.Connection, rows: int) -> None:
    """``rows`` / 2 clients and ``rows`` orders, each referring to a client."""
    conn.executemany(
        "INSERT INTO clients VALUES (?, ?, ?)",
        ((i, f"client {i} — Zoé Ærø 山田", f"ville {i % 97}") for i in range(rows // 2)),
    )
    conn.executemany(
        "INSERT INTO commandes VALUES (?, ?, ?, ?, ?)",
        (
            (i, i % (rows // 2), (i * 37 % 100000) / 100, "neuve", f"commande n°{i}")
            for i in range(rows)
        ),
    )


def phase_export(work: Path, name: str) -> dict[str, Any]:
    with _node(work, name, "serveur") as node:
        result = node.export()
    counts = result.capture.counts["commandes"]
    return {"rows": result.manifest.rows, "held_back": counts.held_back}


def phase_change(work: Path, name: str) -> dict[str, Any]:
    """1 % of the orders changed after the first export (run once per copy)."""
    conn = sqlite3.connect(work / f"{name}.db")
    with conn:
        conn.execute("UPDATE commandes SET etat = 'payée' WHERE id % 100 = 3")
    conn.close()
    return {}


def main() -> None:
    rows_sent = [-1]

    def one_pair(work: Path, args: argparse.Namespace) -> float:
        cpu = {}
        for name in ("nofk", "fk"):
            extra = ["--dir", str(work), "--name", name]
            if args.changed:
                run_script_phase(__file__, "export", extra)
                run_script_phase(__file__, "change", extra)
            got = run_script_phase(__file__, "export", extra)
            cpu[name] = got["cpu"]
            print(f"{work.name} {name:5}: {got['rows']} rows sent, CPU {got['cpu']:.2f} s")
            if name == "fk" and got["rows"] != rows_sent[0]:
                raise SystemExit(f"the packages differ: {got['rows']} != {rows_sent[0]}")
            rows_sent[0] = got["rows"]
        return float(cpu["fk"] / cpu["nofk"])

    phases = {"export": phase_export, "change": phase_change}
    done = paired_runs(__doc__ or "", phases, generate, one_pair, "bench-parents-")
    if done is None:
        return
    args, ratios = done
    what = "1 % changed" if args.changed else "first export"
    print(
        f"{what}, {args.rows} orders: CPU ratio checked / baseline "
        f"{statistics.median(ratios):.3f} (pairs {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
