"""A shop's program writes a row while the Siège's package is applied over it.

The apply reads the local rows of a batch, decides each conflict from them (the table's
rule: here the Siège's version wins, the local one is logged as the loser), then writes.
A write of the shop's committed between that read and the apply's write was overwritten
unseen: neither in the database, nor logged as a loser, nor ever sent — lost silently.
``bench/soak_live.py --layout pg-maria`` found it (seed 5205: A on MariaDB, A's last write
of a « hot » client gone). SQLite was never exposed (``BEGIN IMMEDIATE`` keeps every other
writer out of the apply); PostgreSQL and MariaDB were: the apply's read now locks the rows
(``Dialect.locking``: ``FOR UPDATE``), so the shop's write waits for the apply's commit and
lands after it, to be captured and sent. A row the read did not find is not locked on
PostgreSQL, but it is written as a plain INSERT: a shop's row of that key made in between
is refused by the key, never overwritten.

The moment is made, not hoped for: the apply's read of the local rows is wrapped so that,
right after it, another connection (the tests' own, through the real driver; SQLite: a
connection of its own) runs the shop's statement, and the apply waits up to 2 s for it.
"""

from __future__ import annotations

import dataclasses
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
DDL = "CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(40))"


@dataclasses.dataclass
class Scene:
    overtook: bool  # the shop's statement ended while the apply was between read and write
    shop_error: str  # what the shop's statement raised ('' when it went through)
    site: dict[int, str]  # the site's rows once the shop's statement ended
    hq: dict[int, str]  # the Siège's rows after the site's next package
    losers: str  # every conflict's losing version, at both nodes


def apply_while_the_shop_writes(
    backend: Backend, tmp_path: Path, siege: str, local: str, shop: str
) -> Scene:
    """Both nodes hold rows 1-3; the Siège runs ``siege``, the site ``local``; the site
    applies the Siège's package while its shop runs ``shop`` right after the apply's read;
    then the site sends what it has and the Siège applies it."""
    hq_db = tmp_path / "hq.db"
    conn = sqlite3.connect(hq_db)
    conn.execute(DDL)
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(n, f"siège {n}") for n in (1, 2, 3)])
    conn.commit()
    backend.execute(DDL)
    with (
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
        make_node(tmp_path, "A", backend.connection) as site,
    ):
        hq.export()
        assert hq.import_package(site.export().path).status == "applied"
        path, _manifest = hq.publish("A", tmp_path / "out1")
        assert site.import_package(path).status == "applied"  # both hold rows 1-3
        assert hq.import_package(site.export().path).status == "applied"
        conn.executescript(siege)
        hq.export()
        path, _manifest = hq.publish("A", tmp_path / "out2")
        backend.execute(local)

        real_fetch = site.adapter.fetch
        ended = threading.Event()
        overtook: list[bool] = []
        error: list[str] = []

        def shop_writes() -> None:
            try:
                run_as_the_shop(backend, shop)
            except Exception as exc:  # the shop's program is told: not a silent loss
                error.append(str(exc))
            ended.set()

        def fetch(table: Table, keys: Sequence[Any], *, lock: bool = False) -> list[Any]:
            rows = real_fetch(table, keys, lock=lock)
            if table.name == "t" and not overtook:  # the apply's read: the shop writes now
                threading.Thread(target=shop_writes, daemon=True).start()
                overtook.append(ended.wait(WAIT_S))
            return rows

        site.adapter.fetch = fetch  # type: ignore[method-assign]
        result = site.import_package(path)
        assert result.status == "applied", result.message
        assert ended.wait(60), "the shop's statement never ended"
        with Db(backend.connection) as db:
            held = dict(db.rows("t"))
        assert hq.import_package(site.export().path).status == "applied"
        losers = [str(c["loser_json"]) for n in (site, hq) for c in n.state.conflicts()]
    rows = dict(sqlite3.connect(hq_db).execute("SELECT id, v FROM t").fetchall())
    return Scene(overtook == [True], " ".join(error), held, rows, " ".join(losers))


def run_as_the_shop(backend: Backend, statement: str) -> None:
    if not backend.name.startswith("sqlite"):
        backend.execute(statement)
        return
    shop = sqlite3.connect(backend.database, timeout=60, isolation_level=None)
    try:
        for _try in range(600):  # told « locked » at once where waiting could deadlock (the
            try:  # apply's transaction, not in WAL mode): it tries again, as a program would
                shop.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                time.sleep(0.1)
    finally:
        shop.close()


def test_a_shop_s_write_during_the_apply_is_never_lost_silently(
    backend: Backend, tmp_path: Path
) -> None:
    """A row both nodes changed (a conflict the Siège wins); the shop changes it again
    right after the apply's read: that write waits for the apply, lands after it, and
    reaches the Siège. Old code on PostgreSQL and MariaDB: it went in between and was
    overwritten, in no database and no conflict log."""
    scene = apply_while_the_shop_writes(
        backend,
        tmp_path,
        siege="UPDATE t SET v = 'siège, modifié' WHERE id = 1;",
        local="UPDATE t SET v = 'ici, avant' WHERE id = 1",
        shop="UPDATE t SET v = 'ici, pendant' WHERE id = 1",
    )
    assert not scene.overtook, "the shop's write went in between the apply's read and write"
    assert scene.shop_error == ""
    assert "ici, avant" in scene.losers  # the conflict the apply saw, logged
    assert scene.site[1] == "ici, pendant", scene  # the shop's later write, kept...
    assert scene.hq[1] == "ici, pendant", scene  # ...and sent to the group


def test_a_row_the_shop_makes_during_the_apply_is_never_overwritten(
    backend: Backend, tmp_path: Path
) -> None:
    """The Siège sends a new row 4 (with a change of row 1, so the batch is read first);
    the shop makes its own row 4 right after the apply's read. PostgreSQL locks no row that
    was not there: the shop's INSERT goes in, and the apply's plain INSERT of row 4 is
    refused by the key — row 4 set aside, the shop's kept and sent, where the Siège's
    version wins the conflict and logs the shop's. MariaDB does the same in READ
    COMMITTED (its transactions' level since 19c807c); in REPEATABLE READ it locked the
    gap, and the shop's INSERT waited and was refused (its program told). Either way
    nothing is overwritten unseen."""
    scene = apply_while_the_shop_writes(
        backend,
        tmp_path,
        siege="UPDATE t SET v = 'siège, modifié' WHERE id = 1;"
        "INSERT INTO t VALUES (4, 'siège, nouveau');",
        local="UPDATE t SET v = 'ici, avant' WHERE id = 2",
        shop="INSERT INTO t VALUES (4, 'ici, nouveau')",
    )
    assert scene.hq[4] == "siège, nouveau", scene
    if scene.shop_error:  # refused: the shop's program knows its row was not made
        assert scene.site[4] == "siège, nouveau", scene
    else:  # made: kept at the site until the Siège's version won, and logged there
        assert "ici, nouveau" in scene.losers, scene
