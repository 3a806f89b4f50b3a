"""Per-table checksums (the round's « Contrôle »): order-independent, sensitive to every
row, streamed (the table is read once, in any order)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from synchro.db import open_database
from synchro.engine.ack import IDENTICAL, controle
from synchro.engine.checksum import checksums, differing, sums_from_json, to_json

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, nom TEXT, prix DECIMAL(10,2));"


def table_sums(path: Path, rows: list[tuple[int, str, str]]) -> dict[str, tuple[int, str]]:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA + "CREATE TABLE u(k TEXT PRIMARY KEY, v INTEGER);")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    adapter = open_database(str(path))
    try:
        return checksums(adapter, [t for t in adapter.tables() if t.name in ("t", "u")])
    finally:
        adapter.close()


@pytest.mark.parametrize("columnar", ["", "1"], ids=["rows", "columnar"])
def test_same_rows_in_any_order_agree_and_any_change_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columnar: str
) -> None:
    """Row by row, and column by column (``SYNCHRO_COLUMNAR_FROM=1``: ADBC and
    ``values.vector``): the same sums."""
    monkeypatch.setenv("SYNCHRO_COLUMNAR_FROM", columnar)
    rows = [(i, f"nom {i} é", f"{i}.50") for i in range(1, 500)]
    a = table_sums(tmp_path / "a.db", rows)
    b = table_sums(tmp_path / "b.db", list(reversed(rows)))
    assert a == b and a["t"][0] == 499 and a["u"][0] == 0
    changed = table_sums(tmp_path / "c.db", [*rows[:-1], (499, "nom 499 e", "499.50")])
    assert differing(a, changed) == ["t"]
    assert controle(a, b) == (IDENTICAL, [], [])
    assert controle(changed, a) == ("tables différentes : t", ["t"], [])
    assert sums_from_json(to_json(a)) == a


def test_checksums_the_siege_no_longer_knows_are_not_a_difference() -> None:
    text, tables, _pending = controle({"t": (1, "0" * 32)}, None)
    assert tables == [] and text.startswith("non vérifiable")
    assert differing({"t": (1, "a"), "x": (2, "b")}, {"t": (1, "a")}) == []  # shared tables
