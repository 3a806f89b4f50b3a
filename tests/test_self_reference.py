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

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import make_node
from pair_helpers import cli_export, cli_site_and_siege, set_aside, synchro

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
        # Two new ones, each the other's manager: they go in two steps (``two_steps``).
        site_db.execute("INSERT INTO emp VALUES (7000, 'binôme Ωa', NULL)")
        site_db.execute("INSERT INTO emp VALUES (7001, 'binôme Ωb', 7000)")
        site_db.execute("UPDATE emp SET chef = 7001 WHERE id = 7000")
        site_db.execute("DELETE FROM emp WHERE id IN (1, 2)")
        second = hq.import_package(site.export().path)
        for ident in (6002, 6001, 6000):  # (MariaDB checks each row of a statement)
            site_db.execute("DELETE FROM emp WHERE id = ?", (ident,))
        third = hq.import_package(site.export().path)
        assert hq.state.quarantined() == []
        assert [(r.stats.quarantined, r.stats.conflicts) for r in (second, third)] == [(0, 0)] * 2
        assert (second.stats.upserts, second.stats.deletes, third.stats.deletes) == (8, 2, 3)
        held = set(hq_db.query("SELECT id, nom, chef FROM emp"))
        assert held == set(site_db.query("SELECT id, nom, chef FROM emp"))
        assert (3000, "stagiaire", 4000) in held and not {r for r in held if r[0] < 3}
        assert not {r for r in held if 6000 <= r[0] < 7000}
        assert {(7000, "binôme Ωa", 7001), (7001, "binôme Ωb", 7000)} <= held
    finally:
        site.close()
        hq.close()


def test_an_import_killed_while_the_waiting_rows_go_in_applies_them_once(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """``synchro import`` at a Siège on MariaDB, SIGKILLed (``SYNCHRO_KILL_AT``) as the
    rows that waited for their parents go in: nothing of it stays; run again, every row
    once, nothing set aside; a third time, nothing applied twice."""
    maria = make_backend("mariadb")
    maria.execute(
        "CREATE TABLE emp (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL,"
        " chef INT REFERENCES emp (id))"
    )
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    rows = [(i, f"employé {i} 漢字", i + 1) for i in range(1, 700)] + [(700, "directeur", None)]
    with sqlite3.connect(site.with_suffix(".db")) as db:
        db.execute("CREATE TABLE emp (id INTEGER PRIMARY KEY, nom TEXT NOT NULL, chef INTEGER)")
        db.executemany("INSERT INTO emp VALUES (?, ?, ?)", rows)
    db.close()
    package = _site_and_siege(tmp_path, site, hq, maria)
    killed = synchro("--config", str(hq), "import", str(package), cwd=tmp_path,
                     env={"SYNCHRO_KILL_AT": "apply.deferred"})  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert maria.query("SELECT count(*) FROM emp") == [(0,)]
    again = synchro("--config", str(hq), "import", str(package), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(maria.query("SELECT id, nom, chef FROM emp")) == set(rows)
    once_more = synchro("--config", str(hq), "import", str(package), cwd=tmp_path)
    assert once_more.returncode == 0, once_more.stderr
    assert maria.query("SELECT count(*) FROM emp") == [(700,)]
    assert set_aside(hq) == []


@pytest.mark.parametrize("kind", ["mariadb", "postgresql", "sqlite"])
def test_tables_that_refer_to_each_other_reach_another_site_whole(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A customer's default address, the address's customer. A's capture holds back a new
    address whose new customer it reads after it (both go, a round apart); the Siège's
    package to B then holds both, in an order that breaks the cycle by name (addresses
    first), and B set the addresses aside (the run not OK, a day late). Now such tables'
    refused rows wait for the end of the package. (Both new, each referring to the other:
    the next test.)"""
    hq_db, a_db, b_db = (make_backend(kind) for _ in range(3))
    for db in (hq_db, a_db, b_db):
        _customers_and_addresses(db, kind)
    a_db.execute("INSERT INTO clients VALUES (1, 'Zoé « 漢字 »', NULL)")
    a_db.execute("INSERT INTO adresses VALUES (10, 1, '1 rue de la Paix')")
    a_db.execute("INSERT INTO clients VALUES (2, 'Ana', NULL)")
    a_db.execute("INSERT INTO adresses VALUES (11, 2, '2 quai Ouest')")
    with (
        make_node(tmp_path, "SIEGE", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "A", a_db.connection) as a,
        make_node(tmp_path, "B", b_db.connection) as b,
    ):
        for _round in range(2):
            assert hq.import_package(a.export().path).stats.quarantined == 0
        hq.export()
        result = b.import_package(hq.publish("B", tmp_path / "out").path)
        assert b.state.quarantined() == [] and result.stats.upserts == 4, result
    for table in ("clients", "adresses"):
        held = set(b_db.query(f"SELECT * FROM {table}"))
        assert held == set(a_db.query(f"SELECT * FROM {table}")) and len(held) == 2


def _site_and_siege(folder: Path, site: Path, hq: Path, maria: Backend) -> Path:
    """A Serveur on the SQLite file beside ``site`` and a Siège on ``maria``; the Serveur's
    first package, exported by ``synchro export``."""
    cli_site_and_siege(folder, site, hq, maria.connection)
    return cli_export(site, folder / "envoi.pkg")


def _customers_and_addresses(db: Backend, kind: str) -> None:
    address = "adresse INT REFERENCES adresses (id)" if kind == "sqlite" else "adresse INT"
    db.execute(f"CREATE TABLE clients (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL, {address})")
    db.execute(
        "CREATE TABLE adresses (id INT PRIMARY KEY, client INT NOT NULL"
        " REFERENCES clients (id), rue VARCHAR(60) NOT NULL)"
    )
    if kind != "sqlite":  # (SQLite adds no foreign key to a table: declared above)
        db.execute("ALTER TABLE clients ADD FOREIGN KEY (adresse) REFERENCES adresses (id)")


@pytest.mark.parametrize("kind", ["mariadb", "postgresql", "sqlite"])
def test_a_new_customer_and_its_new_address_go_in_together(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A new customer and its new default address, each referring to the other. Before,
    the capture held both back at every capture (each waited for the other: the run OK,
    the rows never sent); sent, every receiver refused both (whichever goes first, its
    parent is not there). Now they go in two steps, as the shop's program made them
    (``engine.two_steps``), and so do a second address and the end of both."""
    hq_db, a_db, b_db = (make_backend(kind) for _ in range(3))
    for db in (hq_db, a_db, b_db):
        _customers_and_addresses(db, kind)
    steps = [
        [
            "INSERT INTO clients VALUES (1, 'Zoé « 漢字 » 👩🏽‍💻', NULL)",
            "INSERT INTO adresses VALUES (10, 1, '1 rue de la Paix')",
            "UPDATE clients SET adresse = 10 WHERE id = 1",
            "INSERT INTO clients VALUES (2, 'Ana', NULL)",  # (one without: goes as before)
        ],
        [
            "INSERT INTO adresses VALUES (11, 1, 'Ελληνικά 2')",
            "UPDATE clients SET adresse = 11 WHERE id = 1",
            "DELETE FROM adresses WHERE id = 10",
            "INSERT INTO clients VALUES (3, 'Ωmega', NULL)",
            "INSERT INTO adresses VALUES (12, 3, 'עברית 3')",
            "UPDATE clients SET adresse = 12 WHERE id = 3",
        ],
        [
            "UPDATE clients SET adresse = NULL WHERE id = 1",
            "DELETE FROM adresses WHERE id = 11",
            "DELETE FROM clients WHERE id = 1",
        ],
    ]
    with (
        make_node(tmp_path, "SIEGE", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "A", a_db.connection) as a,
        make_node(tmp_path, "B", b_db.connection) as b,
    ):
        applied = []
        for statements in steps:
            for statement in statements:
                a_db.execute(statement)
            at_hq = hq.import_package(a.export().path)
            hq.export()
            at_b = b.import_package(hq.publish("B", tmp_path / "out").path)
            for node, result in ((hq, at_hq), (b, at_b)):
                assert node.state.quarantined() == [], node.state.quarantined()
                assert result.stats.quarantined == result.stats.conflicts == 0, result
            applied.append((at_hq.stats.rows, at_b.stats.rows))
            for table in ("clients", "adresses"):
                held = set(a_db.query(f"SELECT * FROM {table}"))
                for db in (hq_db, b_db):
                    assert set(db.query(f"SELECT * FROM {table}")) == held, table
        assert applied == [(3, 3), (5, 5), (2, 2)]
        assert set(b_db.query("SELECT * FROM clients")) == {
            (2, "Ana", None),
            (3, "Ωmega", 12),
        }
        for node in (a, hq, b):  # no node takes what it applied for a change of its own
            assert node.export().capture.rows == 0


def test_an_import_killed_between_the_two_steps_applies_both_rows_once(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """``synchro import`` at a Siège on MariaDB, SIGKILLed when the new customer is in
    without its new address (``two_steps``, step 1): nothing of it stays; run again,
    both rows whole, nothing set aside; a third time, nothing applied twice."""
    maria = make_backend("mariadb")
    _customers_and_addresses(maria, "mariadb")
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    with sqlite3.connect(site.with_suffix(".db")) as db:
        db.execute(
            "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom TEXT NOT NULL,"
            " adresse INTEGER REFERENCES adresses (id))"
        )
        db.execute(
            "CREATE TABLE adresses (id INTEGER PRIMARY KEY, client INTEGER NOT NULL"
            " REFERENCES clients (id), rue TEXT NOT NULL)"
        )
        db.execute("INSERT INTO clients VALUES (7, 'Zoé 漢字 🏨', NULL)")
        db.execute("INSERT INTO adresses VALUES (70, 7, 'Straße 1')")
        db.execute("UPDATE clients SET adresse = 70 WHERE id = 7")
    db.close()
    package = _site_and_siege(tmp_path, site, hq, maria)
    killed = synchro("--config", str(hq), "import", str(package), cwd=tmp_path,
                     env={"SYNCHRO_KILL_AT": "apply.two_steps"})  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert maria.query("SELECT count(*) FROM clients") == [(0,)]
    for _time in range(2):
        again = synchro("--config", str(hq), "import", str(package), cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert maria.query("SELECT * FROM clients") == [(7, "Zoé 漢字 🏨", 70)]
        assert maria.query("SELECT * FROM adresses") == [(70, 7, "Straße 1")]
    assert set_aside(hq) == []


_REFUSE = {  # a rule of the receiver's that refuses a name, then is lifted
    "sqlite": (
        "CREATE TRIGGER non_{t} BEFORE INSERT ON {t} WHEN NEW.nom LIKE 'refus%'"
        " BEGIN SELECT RAISE(ABORT, 'refusé'); END",
        "DROP TRIGGER non_{t}",
    ),
    "other": (
        "ALTER TABLE {t} ADD CONSTRAINT non_{t} CHECK (nom NOT LIKE 'refus%')",
        "ALTER TABLE {t} DROP CONSTRAINT non_{t}",
    ),
}


@pytest.mark.parametrize("kind", ["mariadb", "postgresql", "sqlite"])
def test_rows_set_aside_that_refer_to_each_other_go_in_at_the_next_retry(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A receiver refused a new customer (a rule of its own), so its new address, and a
    manager, so the chain below: all set aside. Once the rule is lifted, the retry at
    the start of its next run put them back one at a time in the quarantine's order:
    the customer and its address never (each waited for the other), the chain a row a
    run. Now the retry writes them as the apply does: parents first, again while any
    goes in, then in two steps."""
    hq_db, a_db, b_db = (make_backend(kind) for _ in range(3))
    emp = "CREATE TABLE emp (id INT PRIMARY KEY, nom VARCHAR(40), chef INT REFERENCES emp (id))"
    for db in (hq_db, a_db, b_db):
        _customers_and_addresses(db, kind)
        db.execute(emp)
    refuse, lift = _REFUSE["sqlite" if kind == "sqlite" else "other"]
    for table in ("clients", "emp"):
        b_db.execute(refuse.format(t=table))
    for statement in (
        "INSERT INTO clients VALUES (1, 'refusé « Zoé » 漢字', NULL)",
        "INSERT INTO adresses VALUES (10, 1, '1 rue de la Paix')",
        "UPDATE clients SET adresse = 10 WHERE id = 1",
        "INSERT INTO emp VALUES (30, 'refusée, la directrice', NULL)",
        "INSERT INTO emp VALUES (20, 'chef 🏨', 30)",
        "INSERT INTO emp VALUES (10, 'employé', 20)",
    ):
        a_db.execute(statement)
    with (
        make_node(tmp_path, "SIEGE", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "A", a_db.connection) as a,
        make_node(tmp_path, "B", b_db.connection) as b,
    ):
        assert hq.import_package(a.export().path).stats.quarantined == 0
        hq.export()
        at_b = b.import_package(hq.publish("B", tmp_path / "out").path)
        assert at_b.stats.quarantined == 5 and len(b.state.quarantined()) == 5
        for table in ("clients", "emp"):
            b_db.execute(lift.format(t=table))
        sent = b.export()  # the retry first
        assert b.state.quarantined() == [], b.state.quarantined()
        assert len(sent.capture.retried) == 5 and sent.capture.rows == 0
        for table in ("clients", "adresses", "emp"):
            assert set(b_db.query(f"SELECT * FROM {table}")) == set(
                a_db.query(f"SELECT * FROM {table}")
            )
        assert b.export().capture.rows == 0
