"""A group made from one DDL script on back ends that spell its names differently.

PostgreSQL folds unquoted names to lower case (``CREATE TABLE Clients (Id …)`` is
``clients (id)`` there), MariaDB on Windows does so for table names
(``lower_case_table_names=1``), SQLite, SQL Server, Access and MariaDB on Linux keep them as
written. The nodes of such a group must still exchange every row, both ways, and the round's
« Contrôle » and the schema check must compare the same tables and columns
(``names.same_names``): a name stands for the local one it equals ignoring case when no
other local name does. Real processes (``python -m synchro``) over FTPS on loopback, the
databases reached through their real drivers; the rows read back through a plain connection
of the test's, never through synchro's adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from pair_helpers import cli_nodes, cli_round, synchro

from synchro.db.base import Column, Table
from synchro.engine.ack import IDENTICAL, controle
from synchro.engine.checksum import differing
from synchro.engine.preflight import compare
from synchro.names import same_names

NAMES = ("Zoé « Ø Ú » 😀", "漢字かな ヘ 한국어", "עברית Әә", "Ana")


def test_a_name_stands_for_the_local_one_it_equals_ignoring_case_when_only_one_does() -> None:
    assert same_names(["Clients", "Id"], ["clients", "id"]) == {"Clients": "clients", "Id": "id"}
    assert same_names(["ÉLÈVES"], ["ÉlÈves"]) == {"ÉLÈVES": "ÉlÈves"}  # PostgreSQL, UTF-8
    assert same_names(["t"], ["t", "T"]) == {"t": "t"}  # the same name first
    assert same_names(["T"], ["t", "x"]) == {"T": "t"}
    # Two local names, or two of theirs, equal ignoring case: neither is guessed.
    assert same_names(["Clients"], ["clients", "CLIENTS"]) == {}
    assert same_names(["Clients", "CLIENTS"], ["clients"]) == {}
    # A local name spelt exactly by one of theirs is not also given to another.
    assert same_names(["clients", "Clients"], ["clients"]) == {"clients": "clients"}
    assert same_names(["Autre"], ["clients"]) == {}


def test_the_controle_compares_tables_spelt_otherwise_at_the_siege() -> None:
    """Sums by table from both sides: a table is the same whatever its spelling, so a
    difference shows and agreement is real (before: no table in common, « identiques »)."""
    site = {"Clients": (3, "a" * 32), "Commandes": (2, "b" * 32)}
    assert differing(site, {"clients": (3, "a" * 32), "commandes": (2, "c" * 32)}) == ["Commandes"]
    assert controle(site, {"clients": (3, "a" * 32), "commandes": (2, "b" * 32)}).text == IDENTICAL
    text, tables, pending = controle(site, {"clients": (4, "f" * 32), "commandes": (2, "b" * 32)})
    assert tables == ["Clients"] and pending == [] and "Clients" in text
    # Differing only by the changes made since (the sums of the rows as exchanged agree).
    agreed = {"Clients": (3, "d" * 32)}
    later = controle(site, {"clients": (4, "f" * 32), "commandes": (2, "b" * 32)}, agreed,
                     {"clients": (3, "d" * 32)})  # fmt: skip
    assert later.tables == [] and later.pending == ["Clients"]


def test_the_schema_check_compares_columns_spelt_otherwise() -> None:
    def table(name: str, key: str, text: str, size: int) -> Table:
        columns = (Column(key, "int", "INTEGER"), Column(text, "text", "VARCHAR", length=size))
        return Table(name, columns, (key,), "primary")

    here = [table("clients", "id", "nomclient", 40)]
    there = [table("Clients", "Id", "NomClient", 80)]
    found = compare(here, there, "A")
    assert [(f.table, f.column, f.code) for f in found] == [("clients", "nomclient", "short_chars")]


def _ddl(dialect: str) -> list[str]:
    """Unquoted mixed-case names, as an administrator's script writes them."""
    text = "TEXT" if dialect != "mysql" else "VARCHAR(200)"
    return [
        f"CREATE TABLE Clients (Id INTEGER NOT NULL PRIMARY KEY, NomClient {text} NOT NULL,"
        " Ville VARCHAR(40))",
        "CREATE TABLE Commandes (Num INTEGER NOT NULL PRIMARY KEY, ClientId INTEGER NOT NULL,"
        " Montant DECIMAL(10,2), FOREIGN KEY (ClientId) REFERENCES Clients (Id))",
    ]


def _rows(db: Backend) -> dict[str, set[tuple[Any, ...]]]:
    """Both tables through the test's own connection, whatever each back end named them."""
    names = {
        name.lower(): name
        for (name,) in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if db.dialect == "sqlite"
            else "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = " + ("'public'" if db.dialect == "postgresql" else "DATABASE()")
        )
    }
    assert set(names) >= {"clients", "commandes"}, names
    clients = {(int(i), n, v) for i, n, v in db.query(f"SELECT * FROM {names['clients']}")}
    orders = {
        (int(n), int(c), Decimal(str(m)).quantize(Decimal("0.01")))
        for n, c, m in db.query(f"SELECT * FROM {names['commandes']}")
    }
    return {"clients": clients, "commandes": orders}


def _reports(folder: Path) -> list[dict[str, Any]]:
    done = synchro("--config", "synchro.toml", "report", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


LAYOUTS = {
    "siege-postgresql": {"SIEGE": "postgresql", "A": "sqlite", "B": "mariadb"},
    "siege-sqlite": {"SIEGE": "sqlite", "A": "postgresql", "B": "mariadb"},
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_group_whose_back_ends_spell_names_differently_converges_both_ways(
    tmp_path: Path, make_backend: Callable[[str], Backend], layout: str
) -> None:
    dbs = {code: make_backend(kind) for code, kind in LAYOUTS[layout].items()}
    for db in dbs.values():
        for statement in _ddl(db.dialect):
            db.execute(statement)
    base = {"SIEGE": 1, "A": 100, "B": 200}
    for code, db in dbs.items():
        first = base[code]
        for i, name in enumerate(NAMES):
            db.execute("INSERT INTO Clients VALUES (?, ?, ?)", (first + i, name, code))
        db.execute("INSERT INTO Commandes VALUES (?, ?, ?)", (first, first, "12.50"))
        db.execute("INSERT INTO Commandes VALUES (?, ?, ?)", (first + 1, first, "-0.01"))
    folders = cli_nodes(tmp_path, {code: db.connection for code, db in dbs.items()})
    cli_round(folders)
    held = {code: _rows(db) for code, db in dbs.items()}
    assert held["SIEGE"]["clients"] and len(held["SIEGE"]["clients"]) == 3 * len(NAMES)
    assert held["SIEGE"]["commandes"] and len(held["SIEGE"]["commandes"]) == 6
    assert held["A"] == held["SIEGE"] and held["B"] == held["SIEGE"]

    # Round 2: each side changes the others' rows, under its own spelling of the names.
    dbs["A"].execute("UPDATE Clients SET Ville = ? WHERE Id = ?", ("Brest ヘ", 200))
    dbs["B"].execute("DELETE FROM Commandes WHERE Num = ?", (101,))
    dbs["SIEGE"].execute("UPDATE Commandes SET Montant = ? WHERE Num = ?", ("99999999.99", 201))
    cli_round(folders)
    held = {code: _rows(db) for code, db in dbs.items()}
    assert (200, NAMES[0], "Brest ヘ") in held["SIEGE"]["clients"]
    assert 101 not in {n for n, _c, _m in held["SIEGE"]["commandes"]}
    assert (201, 200, Decimal("99999999.99")) in held["SIEGE"]["commandes"]
    assert held["A"] == held["SIEGE"] and held["B"] == held["SIEGE"]

    for code, folder in folders.items():
        rows = _reports(folder)
        assert rows and all(r["state"] == "OK" for r in rows), (code, rows)
    # The « Contrôle » compared the tables and found them identical at every site.
    siege_rows = [r for r in _reports(folders["SIEGE"]) if r["site"] in ("A", "B")]
    controles = [str(r["details"].get("controle", "")) for r in siege_rows]
    assert controles and all(c == IDENTICAL for c in controles), controles
    # And the schema check finds the same tables and columns on each side: nothing absent,
    # and B's VARCHAR(200) compared with the Siège's text without limit, both ways.
    for code, folder in folders.items():
        done = synchro("--config", "synchro.toml", "check", cwd=folder)
        assert "absente" not in done.stdout + done.stderr, (code, done.stdout)
        if code in ("SIEGE", "B"):
            assert "NomClient : trop courte : VARCHAR(200)" in done.stdout, (code, done.stdout)
