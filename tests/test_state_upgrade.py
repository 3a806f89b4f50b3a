"""A state made before the canonical form kept microseconds: its snapshot keys of a
datetime key with fractional seconds are the text cut at the second. The first capture
after the upgrade sends the row again and a delete of the old key text: nothing is lost,
the delete matches no row of a receiver that holds the key exactly (docs/TYPES.md)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine_helpers import make_node

ROWS = [
    ("2024-01-01 12:00:00.500000", "x"),
    ("2024-01-01 13:00:00", "y"),
    ("2024-01-02 08:30:00.250000", "z"),
]
NEW_KEYS = ["2024-01-01 12:00:00.500000", "2024-01-01 13:00:00", "2024-01-02 08:30:00.250000"]


def rows(path: str) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT at, v FROM t").fetchall())


def snapshot_keys(state: Path) -> list[str]:
    conn = sqlite3.connect(state)
    try:
        return sorted(str(r[0]) for r in conn.execute("SELECT k0 FROM snap_1"))
    finally:
        conn.close()


def as_before_the_upgrade(state: Path) -> None:
    """The snapshot keys as the old canonical form wrote them (no fractional seconds)."""
    conn = sqlite3.connect(state)
    try:
        conn.execute("UPDATE snap_1 SET k0 = substr(k0, 1, 19)")
        conn.commit()
    finally:
        conn.close()


def test_old_snapshot_keys_of_a_datetime_key_lose_nothing(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    for path in (a, b):
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE t (at DATETIME PRIMARY KEY, v TEXT)")
    with sqlite3.connect(a) as conn:
        conn.executemany("INSERT INTO t VALUES (?, ?)", ROWS)
    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        assert hq.import_package(site.export().path).status == "applied"
    expected = rows(a)
    assert rows(b) == expected
    states = [tmp_path / f"node-{n}" / "state.db" for n in ("A", "B")]
    for state in states:
        assert snapshot_keys(state) == NEW_KEYS
        as_before_the_upgrade(state)

    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        exported = site.export()
        # The two rows with fractions, and a delete of each old key text.
        assert exported.manifest.rows == 4
        result = hq.import_package(exported.path)
        assert result.status == "applied"
        assert (result.stats.upserts, result.stats.deletes) == (0, 0)  # all equal, no match
        assert (result.stats.conflicts, result.stats.quarantined) == (0, 0)
        assert rows(b) == expected
        hq.export()
        published, _manifest = hq.publish("A", tmp_path / "out")
        assert site.import_package(published).status == "applied"
        assert rows(a) == expected
        assert site.state.quarantined() == [] and hq.state.quarantined() == []
        assert site.state.conflicts() == [] and hq.state.conflicts() == []
    for state in states:
        assert snapshot_keys(state) == NEW_KEYS  # once: the next capture sends nothing
    with make_node(tmp_path, "A", a) as site:
        assert site.export().manifest.rows == 0
