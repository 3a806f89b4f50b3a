"""Foreign keys checked at the commit (``DEFERRABLE INITIALLY DEFERRED``, every foreign key
Django makes, on PostgreSQL and SQLite).

A shop deletes a product it has not sent yet while the Siège's package brings a purchase
of it. With a foreign key checked at each statement the purchase is refused and set aside
alone. Checked at the commit, it went in, and the commit failed: the whole apply undone,
at every run, the package never applied — the shop stuck. Now PostgreSQL is told to check
them at each statement (``SET CONSTRAINTS ALL IMMEDIATE``) and the SQLite adapter checks
them after each write (``db.deferred``). Real databases through their drivers; the rows
read back through the test's own connections.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import siege_and_site

from synchro.engine.node import Node
from synchro.engine.node_results import ImportResult

LATER = "DEFERRABLE INITIALLY DEFERRED"
DDL = [
    "CREATE TABLE categories (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL,"
    f" parent INT REFERENCES categories (id) {LATER})",
    "CREATE TABLE produits (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL,"
    f" categorie INT NOT NULL REFERENCES categories (id) {LATER})",
    "CREATE TABLE achats (id INT PRIMARY KEY, produit INT NOT NULL"
    f" REFERENCES produits (id) {LATER}, qte INT NOT NULL)",
]
KINDS = ["postgresql", "sqlite", "sqlite-odbc"]


def _one_set_aside(
    answer: ImportResult, site: Node, upserts: int, row: tuple[str, str], because: str
) -> None:
    """``answer`` applied ``upserts`` rows and set aside one, ``row`` (table, key), whose
    reason names ``because``."""
    assert answer.status == "applied", answer
    assert (answer.stats.upserts, answer.stats.quarantined) == (upserts, 1), answer
    [aside] = site.state.quarantined()
    assert (aside["tbl"], aside["key_json"]) == row and because in aside["error"], aside


@pytest.mark.parametrize("kind", KINDS)
def test_a_purchase_of_a_product_deleted_here_is_set_aside_and_the_rest_goes_in(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, DDL) as (_hq, site, send):
        hq_db.execute("INSERT INTO categories VALUES (1, 'Thés « 漢字 »', NULL)")
        hq_db.execute("INSERT INTO produits VALUES (5, 'Sencha', 1), (6, 'Matcha 🍵', 1)")
        assert send().stats.upserts == 3
        site_db.execute("DELETE FROM produits WHERE id = 5")  # not sent yet
        hq_db.execute("INSERT INTO achats VALUES (77, 5, 1), (78, 6, 2)")
        hq_db.execute("INSERT INTO produits VALUES (7, 'Genmaicha', 1)")
        _one_set_aside(send(), site, 2, ("achats", "[77]"), "produits")
        assert site_db.query("SELECT id, produit, qte FROM achats") == [(78, 6, 2)]
        assert sorted(r[0] for r in site_db.query("SELECT id FROM produits")) == [6, 7]

        # The next package goes in (before, every one failed at the commit).
        hq_db.execute("INSERT INTO achats VALUES (79, 7, 3)")
        assert send().stats.upserts == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_category_deleted_at_the_siege_keeps_a_subcategory_made_here(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A table that refers to itself, checked at the commit: the shop makes a
    subcategory of category 2 (not sent yet) and the Siège deletes category 2. The
    delete is set aside instead of failing the commit."""
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, DDL) as (_hq, site, send):
        hq_db.execute("INSERT INTO categories VALUES (1, 'Thés', NULL), (2, 'Cafés', 1)")
        assert send().stats.upserts == 2
        site_db.execute("INSERT INTO categories VALUES (3, 'Moka ☕', 2)")  # not sent yet
        hq_db.execute("DELETE FROM categories WHERE id = 2")
        answer = send()
        assert answer.status == "applied" and answer.stats.quarantined == 1, answer
        [aside] = site.state.quarantined()
        assert aside["tbl"] == "categories" and aside["key_json"] == "[2]", aside
        assert sorted(r[0] for r in site_db.query("SELECT id FROM categories")) == [1, 2, 3]


@pytest.mark.parametrize("kind", KINDS)
def test_a_user_deleted_at_the_siege_still_in_a_log_left_out_of_the_synchronisation(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """Django's ``django_admin_log`` refers to its users, checked at the commit, and is
    left out of the synchronisation (each site's own). The Siège deletes a user who has
    a log line here: the engine never probes a table it does not synchronise, the delete
    went in, and the commit failed at every run — the shop stuck for good. Now the
    delete is refused as the database would have refused it at once, set aside alone
    with its reason, and the rest of the package goes in, and the next one."""
    hq_db, site_db = make_backend(kind), make_backend(kind)
    ddl = [
        "CREATE TABLE auth_user (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL)",
        "CREATE TABLE django_admin_log (id INT PRIMARY KEY, quand VARCHAR(30) NOT NULL,"
        f" user_id INT NOT NULL REFERENCES auth_user (id) {LATER})",
    ]
    left_out = ["django_admin_log"]
    with siege_and_site(tmp_path, hq_db, site_db, ddl, left_out) as (_hq, site, send):
        hq_db.execute("INSERT INTO auth_user VALUES (5, 'Zoé « 漢字 »'), (6, 'Ана')")
        assert send().stats.upserts == 2
        site_db.execute("INSERT INTO django_admin_log VALUES (1, '2026-12-08 10:00', 5)")
        hq_db.execute("DELETE FROM auth_user WHERE id = 5")
        hq_db.execute("INSERT INTO auth_user VALUES (7, 'Ωmega')")
        _one_set_aside(send(), site, 1, ("auth_user", "[5]"), "django_admin_log")
        assert sorted(r[0] for r in site_db.query("SELECT id FROM auth_user")) == [5, 6, 7]
        hq_db.execute("INSERT INTO auth_user VALUES (8, 'Jürgen')")
        assert send().stats.upserts == 1
        assert sorted(r[0] for r in site_db.query("SELECT id FROM auth_user")) == [5, 6, 7, 8]
