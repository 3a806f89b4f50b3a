"""Kept packages sent again read their keys through a spool, not into memory.

An establishment whose kept packages go again as the rows are now (``engine.resend``:
another machine under its code, or the whole machine put back) used to gather every key
those packages changed into a dict: a kept first export of a million rows held ~250 MB of
key tuples, above the 200 MB the program may use. The keys now go to a spool per table in
the state database and come back in key order, ``READ_KEYS`` at a time.
"""

from __future__ import annotations

import sqlite3
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from engine_helpers import make_node

from synchro.engine import resend
from synchro.package import PackageReader

ROWS = 60_000


def test_kept_packages_go_again_as_now_with_memory_bounded_by_a_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "site.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, price DECIMAL(10,2))")
    conn.executemany(
        "INSERT INTO t VALUES (?, ?, ?)", ((i, f"article {i}", i / 100) for i in range(ROWS))
    )
    conn.commit()
    with make_node(tmp_path, "S1", str(db)) as site:
        site.export()  # n° 1, every row: kept, never sent
        conn.execute("UPDATE t SET price = 99.5 WHERE id < 10")
        conn.execute("DELETE FROM t WHERE id >= 59990")
        conn.commit()
        site.export()  # n° 2: the same keys changed again
        conn.execute("UPDATE t SET name = 'renommé' WHERE id = 5")  # after both packages
        conn.commit()
        kept = site.state.outbox()
        assert [e.sequence for e in kept] == [1, 2]
        monkeypatch.setattr(resend, "READ_KEYS", 2_000)
        folder = tmp_path / "again"
        folder.mkdir()
        tracemalloc.start()
        path, rows = resend._as_now(site, kept, folder, 3)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        reader = PackageReader(path, site.keys())
        changes = [(c.op, c.values) for c in reader.changes()]
    conn.close()
    assert rows == ROWS == len(changes)  # every key once, though changed twice
    assert len({v[0] for _, v in changes}) == ROWS
    by_key = {v[0]: (op, v) for op, v in changes}
    assert by_key[5] == ("U", (5, "renommé", Decimal("99.5")))  # as the row is now
    assert by_key[11] == ("U", (11, "article 11", Decimal("0.11")))
    assert all(by_key[i][0] == "D" for i in range(59990, ROWS))
    # Measured: the keys of 60,000 rows in a dict, 9.6 MB at the peak; a spool, 2.2 MB.
    assert peak < 4_000_000, peak
