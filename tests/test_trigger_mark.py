"""A trigger that leaves alone what Synchro writes, by the mark on Synchro's sessions.

A shop's stock trigger decrements an article's stock for each sale. The sale and the new
stock both travel; where the Siège applied the sale, its own trigger decremented the stock
again (8 became 6). Synchro marks its sessions (PostgreSQL ``synchro.session``, MariaDB
``@synchro_session``), so such a trigger can skip its writes; without the mark it could not
tell them from the shop's (before: the Siège's stock 6 where the shop's was 8). Real
triggers on real servers through their drivers; the rows read by the test's connections.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import make_node

TABLES = [
    "CREATE TABLE articles (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL, stock INT NOT NULL)",
    "CREATE TABLE ventes (id INT PRIMARY KEY, article INT NOT NULL REFERENCES articles (id),"
    " qte INT NOT NULL)",
]
TRIGGERS = {
    "postgresql": [
        "CREATE FUNCTION vendre() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF current_setting('synchro.session', true) IS DISTINCT FROM 'on' THEN"
        " UPDATE articles SET stock = stock - NEW.qte WHERE id = NEW.article; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER vente AFTER INSERT ON ventes FOR EACH ROW EXECUTE FUNCTION vendre()",
    ],
    "mariadb": [
        "CREATE TRIGGER vente AFTER INSERT ON ventes FOR EACH ROW BEGIN"
        " IF @synchro_session IS NULL THEN"
        " UPDATE articles SET stock = stock - NEW.qte WHERE id = NEW.article; END IF; END",
    ],
}


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_stock_trigger_skips_the_sales_synchro_writes(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    site_db, hq_db = make_backend(kind), make_backend(kind)
    for db in (site_db, hq_db):
        for statement in (*TABLES, *TRIGGERS[kind]):
            db.execute(statement)
    hq_db.execute("INSERT INTO articles VALUES (1, 'Café « 漢字 »', 10)")
    with (
        make_node(tmp_path, "SIEGE", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "A", site_db.connection) as site,
    ):
        hq.export()
        site.import_package(hq.publish("A", tmp_path / "out").path)
        site_db.execute("INSERT INTO ventes VALUES (1, 1, 2)")  # the shop's sale: 10 → 8
        assert site_db.query("SELECT stock FROM articles") == [(8,)]
        result = hq.import_package(site.export().path)
        assert result.stats.upserts == 2 and result.stats.quarantined == 0, result
    assert hq_db.query("SELECT stock FROM articles") == [(8,)]
    assert hq_db.query("SELECT id, article, qte FROM ventes") == [(1, 1, 2)]
    # The shop's own sales at the Siège still count.
    hq_db.execute("INSERT INTO ventes VALUES (2, 1, 3)")
    assert hq_db.query("SELECT stock FROM articles") == [(5,)]
