"""Table and column names written by hand in ``synchro.toml``, against the database's own.

``include``, ``exclude`` and ``[[database.tables]]`` name tables and columns as a person
wrote them, often from the DDL script (``Salaires``), while PostgreSQL folds unquoted names
to lower case (``salaires``). Each stands for the database's name of that spelling, else the
only one it equals ignoring case (``names.same_names``, the rule the packages follow), and a
name that stands for none is a settings error naming it: before, an exclusion or a rule
spelt otherwise was silently ignored, so an excluded table travelled and a key given by
hand was not used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node
from pair_helpers import cli_nodes, cli_round, synchro

from synchro.config.model import ConflictPolicy, DatabaseSettings, TableRule
from synchro.db.base import Column, Table
from synchro.engine.tables import select_tables
from synchro.errors import ApplyError, ConfigError


def _table(name: str, *columns: str, key: tuple[str, ...] = ()) -> Table:
    return Table(name, tuple(Column(c, "int", "INTEGER") for c in columns), key, "primary")


FOUND = [
    _table("clients", "id", "modifie", "site", key=("id",)),
    _table("salaires", "id", key=("id",)),
    _table("journal", "ref", "texte"),
]


def test_the_settings_name_tables_and_columns_as_written_in_the_ddl() -> None:
    rule = TableRule("Clients", ConflictPolicy.LATEST_WINS, modified_column="Modifie")
    settings = DatabaseSettings(
        exclude=("Salaires",), tables=(rule, TableRule("JOURNAL", key=("Ref",)))
    )
    chosen = select_tables(FOUND, settings)
    assert [t.name for t in chosen.synced] == ["clients", "journal"]
    assert chosen.synced[1].key == ("ref",) and chosen.synced[1].key_source == "config"
    assert chosen.rule("clients") == TableRule(
        "clients", ConflictPolicy.LATEST_WINS, modified_column="modifie"
    )
    assert chosen.rule("journal").key == ("ref",)
    only = select_tables(FOUND, DatabaseSettings(include=("CLIENTS",)))
    assert [t.name for t in only.synced] == ["clients"]


@pytest.mark.parametrize(
    ("settings", "where", "words"),
    [
        # A typo in an exclusion: nothing excluded would send the table; it is an error.
        (DatabaseSettings(exclude=("Salaire",)), "database.exclude", "inconnue : Salaire"),
        (DatabaseSettings(include=("Clent",)), "database.include", "inconnue : Clent"),
        (
            DatabaseSettings(tables=(TableRule("Client", ConflictPolicy.LATEST_WINS),)),
            "database.tables[0].name",
            "inconnue : Client",
        ),
        (
            DatabaseSettings(tables=(TableRule("Clients", owner_column="Siteid"),)),
            "database.tables.clients.owner_column",
            "une colonne de la table clients",
        ),
        (
            DatabaseSettings(include=("Clients",), exclude=("CLIENTS",)),
            "database.exclude",
            "à la fois incluse et exclue",
        ),
        (
            DatabaseSettings(tables=(TableRule("clients"), TableRule("Clients"))),
            "database.tables[1].name",
            "déjà utilisée",
        ),
    ],
)
def test_a_name_of_the_settings_that_stands_for_no_table_or_column_is_an_error(
    settings: DatabaseSettings, where: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        select_tables(FOUND, settings)
    text = str(caught.value)
    assert where in text and words in text, text


def test_a_name_two_tables_equal_ignoring_case_is_not_guessed() -> None:
    """A server that keeps case holds ``clients`` and ``Clients`` apart: ``CLIENTS`` is
    neither, and the message says why."""
    found = [*FOUND, _table("Clients", "id", key=("id",))]
    with pytest.raises(ConfigError) as caught:
        select_tables(found, DatabaseSettings(exclude=("CLIENTS",)))
    assert "plusieurs : Clients, clients" in str(caught.value), str(caught.value)
    # The exact spelling is still the one it names.
    chosen = select_tables(found, DatabaseSettings(exclude=("Clients",)))
    assert "Clients" not in [t.name for t in chosen.synced]
    assert "clients" in [t.name for t in chosen.synced]


DDL = [
    "CREATE TABLE Clients (Id INTEGER NOT NULL PRIMARY KEY, Nom TEXT NOT NULL)",
    "CREATE TABLE Salaires (Id INTEGER NOT NULL PRIMARY KEY, Montant INTEGER NOT NULL)",
    "CREATE TABLE Journal (Ref INTEGER NOT NULL, Texte TEXT NOT NULL)",  # no key
]
SETTINGS = '\n[[database.tables]]\nname = "Journal"\nkey = ["Ref"]\n'


def _by_hand(path: Path) -> None:
    """``Salaires`` excluded and ``Journal`` keyed by ``Ref``, as the DDL spells them."""
    text = path.read_text(encoding="utf-8")
    assert "\nexclude = []\n" in text, text
    text = text.replace("\nexclude = []\n", '\nexclude = ["Salaires"]\n', 1)
    path.write_text(text + SETTINGS, encoding="utf-8")


def _rows(db: Backend, table: str) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in db.query(f"SELECT * FROM {table}")}


def test_a_site_on_postgresql_keeps_out_the_table_its_settings_exclude_by_the_ddl_name(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """The Siège on SQLite and a site on PostgreSQL, both excluding ``Salaires`` and keying
    ``Journal`` by ``Ref`` as the DDL spells them. Before, the site's settings matched
    nothing of ``salaires`` / ``journal``: it sent its salaries, which the Siège refused
    (« absente … ou exclue »), and left the journal out as keyless."""
    dbs = {"SIEGE": make_backend("sqlite"), "A": make_backend("postgresql")}
    for code, db in dbs.items():
        first = 1 if code == "SIEGE" else 100
        for statement in DDL:
            db.execute(statement)
        db.execute("INSERT INTO Clients VALUES (?, ?)", (first, f"Zoé 😀 {code}"))
        db.execute("INSERT INTO Salaires VALUES (?, ?)", (first, 3000 + first))
        db.execute("INSERT INTO Journal VALUES (?, ?)", (first, f"漢字 {code}"))
    folders = cli_nodes(tmp_path, {c: db.connection for c, db in dbs.items()}, _by_hand)
    outs = cli_round(folders)
    for code, folder in folders.items():
        done = synchro("--config", "synchro.toml", "report", "--json", cwd=folder)
        reports = json.loads(done.stdout)
        assert reports and all(r["state"] == "OK" for r in reports), (code, reports, outs)
    # Each side's salaries stayed at home; clients and the journal travelled both ways.
    assert _rows(dbs["SIEGE"], "Salaires") == {(1, 3001)}
    assert _rows(dbs["A"], "Salaires") == {(100, 3100)}
    for table in ("Clients", "Journal"):
        assert _rows(dbs["A"], table) == _rows(dbs["SIEGE"], table)
        assert len(_rows(dbs["A"], table)) == 2, table


def test_a_package_table_two_local_tables_equal_ignoring_case_is_refused_saying_so(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """A site's ``CLIENTS`` at a Siège on PostgreSQL holding ``clients`` and ``"Clients"``
    apart: nothing is guessed, and the words say why (before: « absente »)."""
    site_db, hq_db = make_backend("sqlite"), make_backend("postgresql")
    site_db.execute("CREATE TABLE CLIENTS (Id INTEGER NOT NULL PRIMARY KEY, Nom TEXT)")
    site_db.execute("INSERT INTO CLIENTS VALUES (?, ?)", (1, "Ana"))
    hq_db.execute("CREATE TABLE clients (Id INTEGER NOT NULL PRIMARY KEY, Nom TEXT)")
    hq_db.execute('CREATE TABLE "Clients" (Id INTEGER NOT NULL PRIMARY KEY, Nom TEXT)')
    site = make_node(tmp_path, "A", site_db.connection)
    hq = make_node(tmp_path, "SIEGE", hq_db.connection, hq=True)
    try:
        with pytest.raises(ApplyError) as caught:
            hq.import_package(site.export().path)
        assert caught.value.say == (
            "engine.apply.tables_alike",
            {"table": "CLIENTS", "tables": "Clients, clients"},
        )
        assert "ne diffèrent d'elle que par la casse (Clients, clients)" in str(caught.value)
        assert hq_db.query("SELECT count(*) FROM clients") == [(0,)]
    finally:
        site.close()
        hq.close()
