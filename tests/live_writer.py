"""The shop's own program, writing into a node's database while a round runs.

Run as a process of its own (``python tests/live_writer.py NODE KIND TARGET JOURNAL STOP
SEED``): ``KIND`` is ``sqlite`` (``TARGET`` a file) or a server kind (``TARGET`` the
database's name, reached through its ODBC driver with the tests' own connection,
``server_dbs.connect``). Until the file ``STOP`` exists it writes, each change its own
committed transaction, a few milliseconds apart: new clients in the node's own range of
ids, each with an order of its own in the same transaction (a sale to a new customer: the
order refers to the client), changes and deletes of those (the order first), and changes
of a few « hot » clients of the Siège's that every node's writer changes too (the
conflicts a group meets when two shops change one customer). After each commit it
appends the change to ``JOURNAL`` (one JSON line, with the wall clock): the journal holds
exactly what the database committed.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

LIVE_BASE = {"SIEGE": 500_000, "A": 1_500_000, "B": 2_500_000}  # ids no one else uses
HOT = tuple(range(50, 56))  # clients of the Siège's seed that every writer changes
TEXTS = ("Zoé à l'hôtel", "日本語テキスト", "Ελληνικά", "한국어", "𠜎𠜱 😀👨‍👩‍👧", "e\u0301\u0327")


class Writer:
    def __init__(self, node: str, kind: str, target: str) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.conn: Any = sqlite3.connect(target, timeout=60, isolation_level=None)
        else:
            sys.path.insert(0, str(Path(__file__).parent))
            from server_dbs import ServerDb, connect

            self.conn = connect(ServerDb(kind, target))
        self.node = node

    def run(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """The statements in one transaction, committed."""
        if self.kind == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                self.conn.execute(sql, params)
            self.conn.execute("COMMIT")
        else:
            for sql, params in statements:
                self.conn.execute(sql, params)
            self.conn.commit()


def main(node: str, kind: str, target: str, journal: Path, stop: Path, seed: int) -> None:
    rng = random.Random(seed)
    writer = Writer(node, kind, target)
    live: list[int] = []
    made = 0
    with journal.open("a", encoding="utf-8") as out:
        while not stop.exists():
            draw = rng.random()
            text = f"{node} {made} {rng.choice(TEXTS)}"
            if draw < 0.45 or not live:
                key = LIVE_BASE[node] + made
                writer.run(
                    ("INSERT INTO clients VALUES (?, ?, ?)", (key, text, "live")),
                    ("INSERT INTO commandes VALUES (?, ?, ?, ?)", (key, key, "12.50", "live")),
                )
                change = {"op": "insert", "id": key, "nom": text, "note": "live"}
                live.append(key)
            elif draw < 0.65:
                key = rng.choice(live)
                writer.run(("UPDATE clients SET nom = ? WHERE id = ?", (text, key)))
                change = {"op": "update", "id": key, "nom": text}
            elif draw < 0.75:
                key = live.pop(rng.randrange(len(live)))
                writer.run(
                    ("DELETE FROM commandes WHERE client_id = ?", (key,)),
                    ("DELETE FROM clients WHERE id = ?", (key,)),
                )
                change = {"op": "delete", "id": key}
            else:
                key = rng.choice(HOT)
                note = f"hot {node} {made} {rng.choice(TEXTS)}"
                writer.run(("UPDATE clients SET note = ? WHERE id = ?", (note, key)))
                change = {"op": "hot", "id": key, "note": note}
            made += 1
            out.write(json.dumps({**change, "at": time.time()}, ensure_ascii=False) + "\n")
            out.flush()
            time.sleep(rng.uniform(0.002, 0.02))
    writer.conn.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], Path(a[3]), Path(a[4]), int(a[5]))
