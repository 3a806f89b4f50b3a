"""The errors of the engine, the database adapters, the capture, the Rapport, the log, the
folders and the package writer are said in the UI language: each is produced for real (a
real SQLite file, a real package, a real MariaDB database, the real function raising it)
and its words are read in English (``errors.text_in``), while ``str()`` stays the French
the manual and the other tests know. Every key added for them and for the messages a run
emits (``test_run_words_english``) has both languages with the same placeholders.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import string
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend, need_pyodbc
from engine_helpers import make_node
from rounds_helpers import sql

from synchro.config.model import DatabaseSettings
from synchro.db import open_database
from synchro.db.base import Column, Table
from synchro.db.mysql_catalog import unsafe_names
from synchro.db.odbc_connect import PROBE_TEXT, load_pyodbc, text_fault_say
from synchro.engine import marks
from synchro.engine.tables import select_tables
from synchro.engine.watermark import advance_watermark, current_watermark
from synchro.errors import (
    CaptureError,
    DatabaseError,
    PackageError,
    PlatformError,
    SchemaError,
    StateError,
    TransactionLost,
    text_in,
)
from synchro.i18n import render
from synchro.log import setup_logging
from synchro.package import PackageWriter
from synchro.platform.paths import asset_path, paths_beside
from synchro.reports import ReportStore
from synchro.state import StateDB
from synchro.values import Kind

ITEMS = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
ENGINE_JSON = Path(__file__).parents[1] / "synchro" / "locales" / "engine.json"
# the keys this conversion added (their words are checked below)
ADDED = (
    *(f"engine.pkg.{k}" for k in ("own", "not_site", "gap", "unwritable")),
    *(f"engine.import.{k}" for k in ("duplicate", "missing", "not_sent_back")),
    *(f"engine.err.unusable{k}" for k in ("", ".table", ".names", ".column", ".table_name")),
    *(f"engine.err.{k}" for k in ("text_altered", "probe", "utf16_fault", "database_name")),
    *(f"engine.err.{k}" for k in ("no_pyodbc", "no_key", "no_column", "transaction_lost")),
    "engine.err.commit_in_doubt",
    "engine.controle.pending",
    *(f"engine.err.{k}" for k in ("capture", "no_round", "nothing_to_take_back")),
    *(f"engine.err.{k}" for k in ("log_unwritable", "folder", "asset")),
    "engine.report.unreadable",
    "engine.state.watermark_unreadable",
    "engine.state.watermark_unsaved",
    *(f"engine.schemas.{k}" for k in ("unreadable", "format", "no_tables")),
    "engine.package.kept_reason",
    *(f"engine.progress.{k}" for k in ("hq_changes", "sites", "take_back", "changes")),
    "engine.run.done",
    *(f"engine.round.{k}" for k in ("done", "stopped", "upload_refused", "sites")),
    "engine.round.sites.missing",
    "engine.round.sites.failed",
    *(f"engine.controle.{k}" for k in ("identical", "no_sums", "earlier", "differ")),
    "engine.retry.unreadable",
    "engine.controle.failed",
    "engine.err.key_order",
    "engine.table.no_key",
    "engine.round.opened",
    "engine.run.running",
    "engine.progress.package",
    *(f"engine.db.where{k}" for k in ("", ".base", ".base_on", ".sqlite")),
)


def _both(exc: BaseException, french: str, english: str) -> str:
    """``exc`` says ``french`` in French (``str``) and ``english`` in English; its English."""
    shown = text_in(exc, "en")
    assert french in str(exc), str(exc)
    assert english in shown, shown
    assert text_in(exc, "fr") == str(exc)
    assert french not in shown
    return shown


def site_and_hq(tmp_path: Path) -> tuple[Path, Path]:
    site_db, hq_db = tmp_path / "s1.db", tmp_path / "hq.db"
    for db in (site_db, hq_db):
        sql(db, ITEMS)
    sql(site_db, "INSERT INTO items VALUES (1, 'article — ü');")
    return site_db, hq_db


# -- engine: packages a node refuses or holds -------------------------------------------------


def test_a_node_refuses_its_own_package(tmp_path: Path) -> None:
    site_db, _hq_db = site_and_hq(tmp_path)
    with make_node(tmp_path, "S1", str(site_db)) as site:
        made = site.export()
        with pytest.raises(PackageError) as refused:
            site.import_package(made.path)
    _both(
        refused.value,
        "ce paquet vient de ce poste même (S1)",
        "this package comes from this very node (S1)",
    )
    assert refused.value.reason == "ce paquet vient de ce poste même (S1)"


def test_the_siege_holds_a_package_sent_twice_or_out_of_order(tmp_path: Path) -> None:
    site_db, hq_db = site_and_hq(tmp_path)
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        first = site.export()
        sql(site_db, "INSERT INTO items VALUES (2, 'deux');")
        second = site.export()
        waiting = hq.import_package(second.path)
        assert waiting.status == "waiting" and waiting.say is not None
        assert waiting.message == "le paquet 1 de S1 manque encore"
        assert render(waiting.say, "en") == "package 1 of S1 is still missing"
        assert hq.import_package(first.path).status == "applied"
        again = hq.import_package(first.path)
    assert again.status == "duplicate" and again.say is not None
    assert again.message == "déjà appliqué"
    assert render(again.say, "en") == "already applied"


def test_the_siege_refuses_a_package_that_is_not_an_establishment_s(tmp_path: Path) -> None:
    _site_db, hq_db = site_and_hq(tmp_path)
    with make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq:
        other = tmp_path / "autre-siege.pkg"
        with PackageWriter(other, origin="H2", sequence=1, kind="hq", tables=[]):
            pass
        with pytest.raises(PackageError) as refused:
            hq.import_package(other)
    _both(
        refused.value,
        "paquet de type hq inattendu au siège",
        "package of type hq not expected at the HQ",
    )


def test_an_establishment_refuses_a_package_missing_changes_of_the_siege(
    tmp_path: Path,
) -> None:
    site_db, _hq_db = site_and_hq(tmp_path)
    with make_node(tmp_path, "S1", str(site_db)) as site:
        ahead = tmp_path / "siege-en-avance.pkg"
        meta = {"from_pos": 7, "to_pos": 9}
        with PackageWriter(ahead, origin="HQ", sequence=1, kind="hq", tables=[], meta=meta):
            pass
        with pytest.raises(PackageError) as refused:
            site.import_package(ahead)
    shown = _both(
        refused.value,
        "il manque des changements du siège (position 0, le paquet commence à 7)",
        "changes of the HQ are missing (position 0, the package starts at 7)",
    )
    assert shown.startswith("Package refused ")


def test_nothing_to_take_back_is_said_in_english() -> None:
    error = marks.nothing_to_take_back()
    _both(
        error,
        "Reprendre les données du groupe : la base de ce poste n'a pas été restaurée",
        "Take back the group's data: this node's database was not restored",
    )
    assert "MANUAL" in text_in(error, "en")


# -- engine: tables, watermark -----------------------------------------------------------------


def test_a_table_whose_names_the_driver_cannot_carry_stops_the_run() -> None:
    """``unsafe_names`` (the MariaDB driver's fault) names the column; ``select_tables``
    refuses the table (the real adapter's path is the MariaDB test below)."""
    columns = (Column("id", Kind.INT, "INTEGER"), Column("prixÚ", Kind.TEXT, "TEXT"))
    where = unsafe_names("ventes", ["id", "prixÚ"], altered=False, miscounts=True)
    assert where is not None
    reason = ("engine.err.unusable.names", {"name": [where], "fault": [text_fault_say("C3")]})
    table = Table("ventes", columns, ("id",), "primary", unusable=reason)
    with pytest.raises(DatabaseError) as refused:
        select_tables([table], DatabaseSettings(connection="x.db"))
    _both(
        refused.value,
        "Synchronisation impossible : table ventes, colonne prixÚ : « É€Ú » arrive au serveur",
        "Cannot synchronise: table ventes, column prixÚ: « É€Ú » reaches the server",
    )
    assert "rename it, or exclude the table" in text_in(refused.value, "en")


def test_the_probe_of_statement_text_keeps_its_french_words() -> None:
    expected = PROBE_TEXT.encode("utf-8").hex().upper()
    said = text_fault_say("C383C289")
    assert (
        render(said, "fr")
        == f"« {PROBE_TEXT} » arrive au serveur comme C383C289 au lieu de {expected}"
    )
    assert (
        render(said, "en")
        == f"« {PROBE_TEXT} » reaches the server as C383C289 instead of {expected}"
    )


def test_a_mariadb_database_and_table_the_driver_cuts_are_said_in_english(
    make_backend: Callable[[str], Backend],
) -> None:
    admin = make_backend("mariadb")
    admin.execute("CREATE TABLE ventes (id INTEGER NOT NULL PRIMARY KEY, `prixÚ` INTEGER)")
    with open_database(admin.connection) as adapter:
        found = adapter.tables()
    ventes = next(t for t in found if t.name == "ventes")
    assert ventes.unusable is not None
    with pytest.raises(DatabaseError) as refused:
        select_tables(found, DatabaseSettings(connection=admin.connection))
    shown = _both(
        refused.value,
        "Synchronisation impossible : table ventes, colonne prixÚ : le pilote MariaDB",
        "Cannot synchronise: table ventes, column prixÚ: the MariaDB Connector/ODBC driver",
    )
    assert "(database.exclude)" in shown
    name = f"{admin.database}_ventesÚ"
    admin.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        connection = admin.connection.replace(f"DATABASE={admin.database};", f"DATABASE={name};")
        with pytest.raises(DatabaseError) as cut:
            open_database(connection)
    finally:
        admin.execute(f"DROP DATABASE `{name}`")
    shown = _both(
        cut.value,
        f"le nom de la base {name} contient un caractère",
        f"the name of the database {name} holds a character",
    )
    assert "rename the database" in shown


def test_the_watermark_unreadable_or_unsaved_names_the_state_database(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    state.close()
    with pytest.raises(StateError) as unreadable:
        current_watermark(state, None)
    _both(
        unreadable.value,
        f"Base d'état {state.path} : date de synchronisation illisible (",
        f"State database {state.path}: unreadable synchronisation date (",
    )
    with pytest.raises(StateError) as unsaved:
        advance_watermark(state, dt.datetime(2026, 12, 6, 12, 0))
    _both(
        unsaved.value,
        f"Base d'état {state.path} : date de synchronisation non enregistrée (",
        f"State database {state.path}: synchronisation date not saved (",
    )


# -- database adapters, capture ---------------------------------------------------------------


def test_a_table_without_key_or_column_is_said_in_english(tmp_path: Path) -> None:
    db = tmp_path / "base.db"
    sql(db, "CREATE TABLE journal (a INTEGER, b TEXT);" + ITEMS)
    with open_database(str(db)) as adapter:
        tables = {t.name: t for t in adapter.tables()}
        with pytest.raises(SchemaError) as keyless, adapter.atomic():
            adapter.upsert(tables["journal"], [(1, "x")])
        with pytest.raises(SchemaError) as unknown:
            list(adapter.scan(tables["items"], columns=["id", "prix"]))
        where = adapter.description
    assert where == f"SQLite {sqlite3.sqlite_version} (fichier {db})"
    there = f"SQLite {sqlite3.sqlite_version} (file {db})"  # the database, said in English
    _both(
        keyless.value,
        f"{where} : la table journal n'a pas de clé ; indiquez une clé",
        f"{there}: table journal has no key; name a key for this table",
    )
    _both(
        unknown.value,
        f"{where} : la table items n'a pas de colonne prix ; vérifiez la configuration.",
        f"{there}: table items has no column prix; check the configuration.",
    )


def test_a_transaction_the_database_ended_is_said_in_english(tmp_path: Path) -> None:
    """A trigger's ``RAISE(ROLLBACK)`` ends SQLite's whole transaction from inside a row."""
    db = tmp_path / "base.db"
    sql(
        db,
        ITEMS + "CREATE TRIGGER stop BEFORE INSERT ON items BEGIN "
        "SELECT RAISE(ROLLBACK, 'arrêt'); END;",
    )
    with open_database(str(db)) as adapter:
        items = next(t for t in adapter.tables() if t.name == "items")
        with pytest.raises(TransactionLost) as lost, adapter.atomic(), adapter.savepoint():
            adapter.upsert(items, [(1, "un")])
        where = adapter.description
    shown = _both(
        lost.value,
        f"{where} : la base a annulé toute la transaction en cours (",
        f"SQLite {sqlite3.sqlite_version} (file {db}): the database rolled back the whole",
    )
    assert "none of it is kept, it will be done again" in shown


def test_a_table_that_cannot_be_read_at_capture_is_said_in_english(
    make_backend: Callable[[str], Backend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program (the shop's) holds the table locked on PostgreSQL: the read gives
    up after ``odbc.LOCK_WAIT_S`` and the capture says which table it could not read."""
    from synchro.db import odbc

    monkeypatch.setattr(odbc, "LOCK_WAIT_S", 1)
    backend = make_backend("postgresql")
    backend.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50))")
    backend.execute("INSERT INTO items VALUES (1, 'article')")
    shop = need_pyodbc("postgresql").connect(backend.connection, autocommit=False)
    try:
        with make_node(tmp_path, "S1", backend.connection) as site:
            site.tables()
            shop.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(CaptureError) as unreadable:
                site.export()
            shop.rollback()
    finally:
        shop.close()
    shown = _both(
        unreadable.value,
        "Lecture de la table items impossible : ",
        "Cannot read table items: ",
    )
    assert "reading table items" in shown  # the adapter's own words, in English too
    assert f"(database {backend.database} on " in shown and "(base " not in shown


def test_load_pyodbc_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyodbc", None)  # import pyodbc now fails
    with pytest.raises(DatabaseError) as missing:
        load_pyodbc()
    _both(
        missing.value,
        "Le module ODBC (pyodbc) ne peut pas être chargé : installez unixODBC",
        "The ODBC module (pyodbc) cannot be loaded: install unixODBC",
    )


# -- Rapport, log, folders, package writer ------------------------------------------------------


def test_an_unreadable_report_is_said_in_english(tmp_path: Path) -> None:
    path = tmp_path / "rapport.db"
    with ReportStore(path) as store:
        store.latest()
        conn = sqlite3.connect(path)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in tables:
            conn.execute(f'DROP TABLE "{name}"')
        conn.commit()
        conn.close()
        with pytest.raises(StateError) as unreadable:
            store.latest()
    _both(
        unreadable.value,
        f"Lecture impossible du rapport {path} : ",
        f"Cannot read the report {path}: ",
    )


def test_a_log_folder_that_cannot_be_made_is_said_in_english(tmp_path: Path) -> None:
    blocker = tmp_path / "fichier"
    blocker.write_text("pas un dossier")
    with pytest.raises(PlatformError) as refused:
        setup_logging(blocker / "journaux", console=False)
    _both(
        refused.value,
        f"Impossible d'écrire le journal {blocker / 'journaux' / 'synchro.log'} : ",
        f"Cannot write the log {blocker / 'journaux' / 'synchro.log'}: ",
    )


def test_folders_and_assets_missing_are_said_in_english(tmp_path: Path) -> None:
    blocker = tmp_path / "fichier"
    blocker.write_text("pas un dossier")
    with pytest.raises(PlatformError) as refused:
        paths_beside(blocker / "synchro.toml").ensure()
    _both(
        refused.value,
        f"Impossible de créer le dossier {blocker}",
        f"Cannot create the folder {blocker}",
    )
    assert "choose another folder with --config" in text_in(refused.value, "en")
    with pytest.raises(PlatformError) as missing:
        asset_path("absent.png")
    _both(
        missing.value,
        "Fichier 'absent.png' introuvable dans ",
        "File 'absent.png' not found in ",
    )


def test_a_package_that_cannot_be_written_is_said_in_english(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "envoi.pkg"
    with pytest.raises(PackageError) as refused:
        PackageWriter(path, origin="S1", sequence=1, kind="site", tables=[])
    shown = _both(
        refused.value,
        f"Paquet refusé {path} : écriture impossible : ",
        f"Package refused {path}: cannot write: ",
    )
    assert "No such file or directory" in shown  # the system's own words, kept


# -- the words ---------------------------------------------------------------------------------


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_added_key_has_both_languages_with_the_same_placeholders() -> None:
    words = json.loads(ENGINE_JSON.read_text(encoding="utf-8"))
    for key in ADDED:
        assert key in words, key
        fr, en = words[key].get("fr", ""), words[key].get("en", "")
        assert fr.strip() and en.strip(), key
        assert _fields(fr) == _fields(en), key
