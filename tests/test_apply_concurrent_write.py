"""A shop's program writes a row while the Siège's package is applied over it.

The apply reads the local rows of a batch, decides each conflict from them (the table's
rule: here the Siège's version wins, the local one is logged as the loser), then writes.
A write of the shop's committed between that read and the apply's write was overwritten
unseen: neither in the database, nor logged as a loser, nor ever sent — lost silently.
``bench/soak_live.py --layout pg-maria`` found it (seed 5205: A on MariaDB, A's last write
of a « hot » client gone). SQLite was never exposed (``BEGIN IMMEDIATE`` keeps every other
writer out of the apply); PostgreSQL and MariaDB were: the apply's read now locks the rows
(``Dialect.locking``: ``FOR UPDATE``), so the shop's write waits for the apply's commit and
lands after it, to be captured and sent.

The moment is made, not hoped for: the apply's read of the local rows is wrapped so that,
right after it, another connection (the tests' own, through the real driver) writes the
row and commits, and the apply waits up to 2 s for that write before it goes on.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backends import Backend
from engine_helpers import Db, make_node

from synchro.db.base import Table

WAIT_S = 2.0


def test_a_shop_s_write_during_the_apply_is_never_lost_silently(
    backend: Backend, tmp_path: Path
) -> None:
    hq_db = tmp_path / "hq.db"
    conn = sqlite3.connect(hq_db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(n, f"siège {n}") for n in (1, 2, 3)])
    conn.commit()
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40))")
    with (
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
        make_node(tmp_path, "A", backend.connection) as site,
    ):
        hq.export()
        assert hq.import_package(site.export().path).status == "applied"
        path, _manifest = hq.publish("A", tmp_path / "out1")
        assert site.import_package(path).status == "applied"  # both hold rows 1-3
        assert hq.import_package(site.export().path).status == "applied"

        conn.execute("UPDATE t SET v = 'siège, modifié' WHERE id = 1")
        conn.commit()
        hq.export()
        path, _manifest = hq.publish("A", tmp_path / "out2")
        backend.execute("UPDATE t SET v = 'ici, avant' WHERE id = 1")  # a conflict

        real_fetch = site.adapter.fetch
        written = threading.Event()
        overtook: list[bool] = []

        def shop_writes() -> None:
            update = "UPDATE t SET v = 'ici, pendant' WHERE id = 1"
            if backend.name.startswith("sqlite"):  # (a connection of this thread's own)
                shop = sqlite3.connect(backend.database, timeout=60, isolation_level=None)
                for _try in range(600):  # told « locked » at once where waiting could
                    try:  # deadlock (the apply's transaction not in WAL mode): it tries again
                        shop.execute(update)
                        break
                    except sqlite3.OperationalError:
                        time.sleep(0.1)
                shop.close()
            else:
                backend.execute(update)
            written.set()

        def fetch(table: Table, keys: Sequence[Any], *, lock: bool = False) -> list[Any]:
            rows = real_fetch(table, keys, lock=lock)
            if table.name == "t" and not overtook:  # the apply's read: the shop writes now
                threading.Thread(target=shop_writes, daemon=True).start()
                overtook.append(written.wait(WAIT_S))
            return rows

        site.adapter.fetch = fetch  # type: ignore[method-assign]
        result = site.import_package(path)
        assert result.status == "applied", result.message
        assert written.wait(60), "the shop's write never ended"
        assert overtook == [False], "the shop's write went in between the apply's read and write"

        with Db(backend.connection) as db:
            held = dict(db.rows("t"))
        losers = " ".join(str(c["loser_json"]) for c in site.state.conflicts())
        assert "ici, avant" in losers  # the conflict the apply saw, logged
        assert held[1] == "ici, pendant", held  # the shop's later write, kept...
        sent = site.export()
        assert sent.manifest.rows == 1  # ...and sent to the group
        assert hq.import_package(sent.path).status == "applied"
    rows = dict(sqlite3.connect(hq_db).execute("SELECT id, v FROM t").fetchall())
    assert rows[1] == "ici, pendant", rows
