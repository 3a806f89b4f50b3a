"""A parent deleted elsewhere while rows here still refer to it, under ON DELETE CASCADE.

A shop sells to customer 5 and, before its sale is sent, the Siège's package deletes
customer 5. With ``ON DELETE RESTRICT`` the database refuses the delete; with ``ON DELETE
CASCADE`` it deleted the sale with the customer, silently: the run said OK, and the next
capture, finding the sale in neither the database nor the snapshot, never sent it — a
sale lost (before, on every back end). At the Siège the same took with the customer a
sale another shop had sent, and the Siège's next capture sent its delete to that shop.
Now a delete that rows of another table still refer to is handled as the database's
refusal would be (``engine.referred``): set aside at a Serveur, kept while referred to at
the Siège (``engine.revive``), so the group ends with the customer and the sale
everywhere. Real databases through their drivers; rows read by the test's connections.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import make_node, siege_and_site

DDL = [
    "CREATE TABLE clients (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL)",
    "CREATE TABLE ventes (id INT PRIMARY KEY, client INT NOT NULL"
    " REFERENCES clients (id) ON DELETE CASCADE, montant INT NOT NULL)",
]
# SQLite keeps a foreign key as written and finds the parent whatever the case of its
# letters: before, the engine did not see such a key, and the sale went again.
OTHER_LETTERS = [
    DDL[0],
    "CREATE TABLE ventes (id INT PRIMARY KEY, client INT NOT NULL, montant INT NOT NULL,"
    " FOREIGN KEY (CLIENT) REFERENCES Clients (ID) ON DELETE CASCADE)",
]
KINDS = ["postgresql", "mariadb", "sqlite"]
CASES = [(kind, DDL) for kind in KINDS] + [(k, OTHER_LETTERS) for k in ("sqlite", "sqlite-odbc")]


def _databases(
    make_backend: Callable[[str], Backend], kind: str, n: int, ddl: list[str] = DDL
) -> list[Backend]:
    made = [make_backend(kind) for _ in range(n)]
    for db in made:
        for statement in ddl:
            db.execute(statement)
    return made


def _held(db: Backend) -> tuple[list[tuple[int, str]], list[tuple[int, int, int]]]:
    return (
        sorted((int(i), str(n)) for i, n in db.query("SELECT id, nom FROM clients")),
        sorted(tuple(int(v) for v in r) for r in db.query("SELECT * FROM ventes")),  # type: ignore[misc]
    )


@pytest.mark.parametrize(
    ("kind", "ddl"), CASES, ids=[f"{k}-{'declared' if d is DDL else 'letters'}" for k, d in CASES]
)
def test_a_sale_not_yet_sent_survives_its_customer_deleted_at_the_siege(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str, ddl: list[str]
) -> None:
    hq_db, site_db = _databases(make_backend, kind, 2, ddl)
    hq_db.execute("INSERT INTO clients VALUES (5, 'Zoé « 漢字 »'), (6, 'Ana')")
    out = tmp_path / "out"
    with (
        make_node(tmp_path, "SIEGE", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "A", site_db.connection) as site,
    ):
        hq.export()
        assert site.import_package(hq.publish("A", out).path).stats.upserts == 2
        site_db.execute("INSERT INTO ventes VALUES (77, 5, 100)")  # not sent yet
        hq_db.execute("DELETE FROM clients WHERE id = 5")
        hq.export()
        answer = site.import_package(hq.publish("A", out).path)
        # The delete is set aside here, naming why; the sale and its customer stay.
        assert answer.stats.deletes == 0 and answer.stats.quarantined == 1
        [aside] = site.state.quarantined()
        assert "ventes" in aside["error"] and "s'y rapportent" in aside["error"], aside
        assert _held(site_db) == ([(5, "Zoé « 漢字 »"), (6, "Ana")], [(77, 5, 100)])
        # The sale reaches the Siège, which takes its customer back (kept while referred
        # to) and sends it again: both everywhere.
        sent = hq.import_package(site.export().path)
        assert sent.stats.upserts == 1 and sent.stats.quarantined == 0, sent
        hq.export()
        site.import_package(hq.publish("A", out).path)
        site.export()
        assert site.state.quarantined() == [] and hq.state.quarantined() == []  # settled
    assert _held(hq_db) == _held(site_db) == ([(5, "Zoé « 漢字 »"), (6, "Ana")], [(77, 5, 100)])


@pytest.mark.parametrize("kind", KINDS)
def test_a_customer_deleted_by_one_shop_keeps_another_shop_s_sale_at_the_siege(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    hq_db, a_db, b_db = _databases(make_backend, kind, 3)
    hq_db.execute("INSERT INTO clients VALUES (5, 'Zoé'), (6, 'Ana')")
    out = tmp_path / "out"
    with (
        make_node(tmp_path, "SIEGE", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "A", a_db.connection) as a,
        make_node(tmp_path, "B", b_db.connection) as b,
    ):
        hq.export()
        for code, node in (("A", a), ("B", b)):
            assert node.import_package(hq.publish(code, out).path).stats.upserts == 2
        b_db.execute("INSERT INTO ventes VALUES (88, 5, 250)")
        assert hq.import_package(b.export().path).stats.upserts == 1
        a_db.execute("DELETE FROM clients WHERE id = 5")  # A knew no sale of 5
        kept = hq.import_package(a.export().path)
        assert kept.stats.deletes == 0 and kept.stats.conflicts == 1, kept
        assert _held(hq_db) == ([(5, "Zoé"), (6, "Ana")], [(88, 5, 250)])
        hq.export()  # the customer again, as the Siège's own change, to A
        for code, node in (("A", a), ("B", b)):
            node.import_package(hq.publish(code, out).path)
    expected = ([(5, "Zoé"), (6, "Ana")], [(88, 5, 250)])
    assert _held(hq_db) == _held(a_db) == _held(b_db) == expected


BY_CODE = [  # a purchase refers to its product by code (unique, not the key)
    "CREATE TABLE produits (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE,"
    " nom VARCHAR(40) NOT NULL)",
    "CREATE TABLE achats (id INT PRIMARY KEY, produit VARCHAR(10) NOT NULL"
    " REFERENCES produits (code) ON DELETE CASCADE, qte INT NOT NULL)",
]


@pytest.mark.parametrize("kind", [*KINDS, "sqlite-odbc"])
def test_a_foreign_key_to_a_product_code_keeps_a_purchase_not_yet_sent(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A purchase refers to its product by code (a unique column, not the key), under
    ON DELETE CASCADE. Before, on every back end, the Siège's delete of the product took
    with it a purchase the shop had not sent yet, the run OK. On MariaDB the foreign key
    was not seen at all (its driver lists only those to a primary key): the purchases,
    whose table comes first by name, went before their products and were set aside.
    Now such a key is read from ``information_schema``, the cascade check looks for the
    product's code in the row here, and the Siège takes the product back from its log by
    its code when the purchase arrives."""
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, BY_CODE) as (hq, site, send):
        hq_db.execute("INSERT INTO produits VALUES (5, 'P5', 'Thé « 漢字 »'), (6, 'P6', 'Café')")
        hq_db.execute("INSERT INTO achats VALUES (77, 'P5', 1)")
        first = send()
        assert first.stats.upserts == 3 and first.stats.quarantined == 0, first
        site_db.execute("INSERT INTO achats VALUES (78, 'P5', 2)")  # not sent yet
        hq_db.execute("DELETE FROM achats WHERE id = 77")
        hq_db.execute("DELETE FROM produits WHERE id = 5")
        answer = send()
        assert answer.stats.deletes == 1 and answer.stats.quarantined == 1, answer
        [aside] = site.state.quarantined()
        assert aside["tbl"] == "produits" and "achats" in aside["error"], aside
        assert sorted(site_db.query("SELECT id, produit, qte FROM achats")) == [(78, "P5", 2)]
        assert [r[0] for r in site_db.query("SELECT id FROM produits ORDER BY id")] == [5, 6]
        # The purchase reaches the Siège, which takes its product back from its log by
        # the code (kept while referred to) and sends it again: both everywhere.
        sent = hq.import_package(site.export().path)
        assert sent.stats.upserts == 1 and sent.stats.quarantined == 0, sent
        assert sent.stats.conflicts == 1  # the delete lost, in the conflict log
        send()
        site.export()
        assert site.state.quarantined() == [] and hq.state.quarantined() == []  # settled
    for db in (hq_db, site_db):
        assert sorted(db.query("SELECT id, code, nom FROM produits")) == [
            (5, "P5", "Thé « 漢字 »"),
            (6, "P6", "Café"),
        ]
        assert db.query("SELECT id, produit, qte FROM achats") == [(78, "P5", 2)]


def test_a_purchase_whose_code_the_database_finds_equal_in_other_letters_is_kept(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """MariaDB's collation finds « p5 » equal to « P5 »: a purchase of « p5 » refers to
    product « P5 », and the cascade would take it. The check asks the database, not
    Python's equality (``referred.still_referred``)."""
    hq_db, site_db = make_backend("mariadb"), make_backend("mariadb")
    with siege_and_site(tmp_path, hq_db, site_db, BY_CODE) as (_hq, _site, send):
        hq_db.execute("INSERT INTO produits VALUES (5, 'P5', 'Thé'), (6, 'P6', 'Café')")
        assert send().stats.upserts == 2
        site_db.execute("INSERT INTO achats VALUES (78, 'p5', 2)")  # not sent yet
        hq_db.execute("DELETE FROM produits WHERE id = 5")
        answer = send()
        assert answer.stats.deletes == 0 and answer.stats.quarantined == 1, answer
        assert site_db.query("SELECT id, produit FROM achats") == [(78, "p5")]
