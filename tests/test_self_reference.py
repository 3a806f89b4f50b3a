"""A table that refers to itself: every row applied, whatever the order of its keys.

An employee's manager, a category's parent: a package holds the rows in key order, so a
parent made after its child (a greater key) comes after it, and a parent deleted with its
children comes before them. MariaDB checks each row as it is written: before, the
children were set aside at the receiver (the run not OK, the rows a day late), and at the
Siège a parent deleted before its children was « kept while referred to » — the Siège
held a row every site had deleted. A chain longer than a batch (500 rows) did the same on
PostgreSQL. Now the refused rows of such a table wait for the table's others, then go
parents first (deletes children first). Real databases through their drivers; the rows
read back through the test's own connections.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import make_node

CHAIN = 1200  # rows 1..CHAIN, each managed by the next: longer than a batch


@pytest.mark.parametrize("kind", ["mariadb", "postgresql", "sqlite"])
def test_a_hierarchy_whose_parents_have_greater_keys_is_applied_whole(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    site_db, hq_db = make_backend(kind), make_backend(kind)
    for db in (site_db, hq_db):
        db.execute(
            "CREATE TABLE emp (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL,"
            " chef INT REFERENCES emp (id))"
        )
    rows = [(i, f"employé {i} « Zoé » 漢字", i + 1) for i in range(1, CHAIN)]
    rows.append((CHAIN, "directrice", None))
    # Inserted parents first, as the shop's program did.
    for row in reversed(rows):
        site_db.execute("INSERT INTO emp VALUES (?, ?, ?)", row)
    site = make_node(tmp_path, "A", site_db.connection)
    hq = make_node(tmp_path, "SIEGE", hq_db.connection, hq=True)
    try:
        first = hq.import_package(site.export().path)
        assert hq.state.quarantined() == [] and first.stats.quarantined == 0
        assert first.stats.upserts == CHAIN and first.stats.conflicts == 0
        assert set(hq_db.query("SELECT id, nom, chef FROM emp")) == set(rows)

        # A new manager (a greater key) for two new employees; another (a smaller key)
        # with two employees, then gone with them.
        new = [(5000, "nouveau chef", None), (4000, "nouvelle", 5000), (3000, "stagiaire", 4000)]
        new += [(6000, "cheffe", None), (6001, "adjoint", 6000), (6002, "apprenti", 6001)]
        for row in new:
            site_db.execute("INSERT INTO emp VALUES (?, ?, ?)", row)
        site_db.execute("DELETE FROM emp WHERE id IN (1, 2)")
        second = hq.import_package(site.export().path)
        for ident in (6002, 6001, 6000):  # (MariaDB checks each row of a statement)
            site_db.execute("DELETE FROM emp WHERE id = ?", (ident,))
        third = hq.import_package(site.export().path)
        assert hq.state.quarantined() == []
        assert [(r.stats.quarantined, r.stats.conflicts) for r in (second, third)] == [(0, 0)] * 2
        assert (second.stats.upserts, second.stats.deletes, third.stats.deletes) == (6, 2, 3)
        held = set(hq_db.query("SELECT id, nom, chef FROM emp"))
        assert held == set(site_db.query("SELECT id, nom, chef FROM emp"))
        assert (3000, "stagiaire", 4000) in held and not {r for r in held if r[0] < 3}
        assert not {r for r in held if r[0] >= 6000}
    finally:
        site.close()
        hq.close()
