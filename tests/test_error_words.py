"""Errors that give their words as keys of the locales (``SynchroError(say=...)``) are shown
in the UI language: the Rapport keeps the key beside the French text, and every place that
shows a row's error (detail window, held question, email, CSV) says it in its language.
Before, an English UI showed these — the ones a person must act on — in French."""

from __future__ import annotations

import csv
import datetime as dt
import json
import socket
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import make_node
from rounds_helpers import sql

from synchro.capture.mass_deletes import MassDeletes, Vanished
from synchro.config.model import Role
from synchro.db import open_database
from synchro.engine.events import said
from synchro.engine.hq_acks import NO_ACK
from synchro.engine.hq_verdict import NO_DATA, UNFINISHED
from synchro.engine.marks import Restored, StateBehind
from synchro.engine.node_results import ImportResult
from synchro.engine.twins import SentByAnother
from synchro.errors import (
    ConnectionTestError,
    DatabaseError,
    ErrorKind,
    StateError,
    SynchroError,
    TransportError,
    text_in,
)
from synchro.i18n import render, tr
from synchro.mail.message import build_report_message
from synchro.reports import INTERRUPTED, Outcome, ReportStore, State, error_in
from synchro.state import StateDB
from synchro.transport.ftp_client import login_check
from synchro.transport.ftp_errors import Where, doing, translate
from synchro.transport.ftp_server import HQServer
from synchro.transport.tls import certificate_fingerprint, server_context

NOW = dt.datetime(2026, 12, 6, 9, 0)
ERRORS: list[tuple[SynchroError, str, str]] = [
    (SentByAnother("3615", 7), "Deux machines envoient sous le code 3615 : le siège a intégré "
     "sous le n° 7", "Two machines send under code 3615: under n° 7 the HQ applied"),
    (Restored(3, 5), "son repère de synchronisation (synchro_repere) est 3 au lieu de 5",
     "its synchronisation mark (synchro_repere) is 3 instead of 5"),
    (Restored(None, 5), "elle n'a plus de repère de synchronisation",
     "it no longer has a synchronisation mark"),
    (StateBehind(9, 4), "jusqu'au n° 9, ce poste ne se souvient que du n° 4",
     "up to n° 9, this node remembers only n° 4"),
    (MassDeletes([Vanished("articles", 300, 600), Vanished("clients", 150, 200)]),
     "table articles : 300 lignes sur 600 (50 %) ; table clients : 150 lignes sur 200 (75 %)",
     "table articles: 300 rows of 600 (50 %) ; table clients: 150 rows of 200 (75 %)"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "fr", "en"), ERRORS)
def test_a_held_error_is_said_in_the_ui_language(
    error: SynchroError, fr: str, en: str, tmp_path: Path
) -> None:
    assert error.say is not None and str(error) == render(error.say, "fr")
    assert fr in str(error)
    with ReportStore(tmp_path / "reports.db") as reports:
        rid = reports.start("3615", "run", now=NOW)
        record = reports.finish(rid, State.FAILED, now=NOW, error=error, quarantined=2)
        assert record.error.startswith("2 lignes non")  # the rows first, then the error
        assert error_in(record, "fr") == record.error
        english = error_in(record, "en")
        assert english.startswith("2 rows not applied"), english
        assert en in english and fr not in english and str(error) not in english
        for lang, words in (("fr", fr), ("en", en)):
            mail = build_report_message([record], site="3615", role=Role.SITE, lang=lang, now=NOW)
            assert words in mail.text, mail.text
        reports.export_csv(tmp_path / "rapport.csv", "en")
    with open(tmp_path / "rapport.csv", encoding="utf-8-sig", newline="") as fh:
        cells = [cell for row in csv.reader(fh, delimiter=";") for cell in row]
    assert any(en in cell for cell in cells), cells


def test_a_row_without_the_words_of_its_error_is_shown_as_stored(tmp_path: Path) -> None:
    """Rows written before, or errors that give only a text: as they are; words of a key
    this version does not know: the stored text, never a failure to show the row."""
    with ReportStore(tmp_path / "reports.db") as reports:
        rid = reports.start("3615", "run", now=NOW)
        plain = reports.finish(rid, State.FAILED, now=NOW, error=SynchroError("texte seul"))
        assert "error_say" not in plain.details and error_in(plain, "en") == "texte seul"
        rid = reports.start("3615", "run", now=NOW)
        reports.finish(
            rid,
            State.FAILED,
            now=NOW,
            error="ancien",
            details={"error_say": ["engine.err.twin", {"code": "3615"}]},  # (a value missing)
        )
        assert error_in(reports.get(rid), "en") == "ancien"


def test_a_connection_refused_is_said_in_the_ui_language(tmp_path: Path) -> None:
    """The transport's errors (the ones an establishment meets most) give their words:
    a real refusal on this machine, kept in the Rapport and shown in English."""
    with socket.socket() as s:  # a port of this machine nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionTestError) as refused:
        login_check("127.0.0.1", port, "3615", "secret", "", allow_plain=True, timeout=5)
    error = refused.value
    assert error.code == "refused" and "refuse la connexion" in str(error)
    assert "refuses the connection: nothing listens on that port" in text_in(error, "en")
    with ReportStore(tmp_path / "reports.db") as reports:
        record = reports.finish(reports.start("3615", "run", now=NOW), State.FAILED, now=NOW,
                                error=error)  # fmt: skip
    assert error_in(record, "fr") == str(error)
    assert error_in(record, "en") == text_in(error, "en")


def test_a_status_line_names_an_error_in_the_ui_language() -> None:
    """The status bar's « tentative 1/3 : … » lines carry the error itself: said in the
    window's language, like the Rapport (an establishment that waited in vain)."""
    waited = TransportError(
        say=("engine.wait.gave_up", {"why": [("engine.wait.unpublished", {})], "minutes": "30"})
    )
    line = said("engine.attempt.receive", number=1, attempts=3, error=waited)
    assert "le siège n'a pas encore publié les données consolidées (attente de 30 min" in (
        line.message
    )
    english = line.text("en")
    assert "the HQ has not published the consolidated data yet (waited more than 30 min" in (
        english
    ), english


@pytest.mark.parametrize(
    ("outcome", "french", "english"),
    [
        (Outcome.NO_DATA, NO_DATA, "no data received"),
        (Outcome.NO_ACK, NO_ACK, "acknowledgement not received"),
        (Outcome.UNFINISHED, UNFINISHED, "the round ended before its data were processed"),
        (Outcome.INTERRUPTED, INTERRUPTED, "interrupted: the program stopped"),
    ],
)
def test_a_round_s_rule_is_said_in_the_ui_language(
    outcome: Outcome, french: str, english: str, tmp_path: Path
) -> None:
    """The words the round's rules write (the engine's constants) are the locales' French
    ones, so rows written before are shown in English too."""
    assert tr(f"reports.error.{outcome}", "fr") == french
    with ReportStore(tmp_path / "reports.db") as reports:
        rid = reports.start("3615", "site-in-round", now=NOW)
        kind = {"error_kind": str(outcome)}
        record = reports.finish(rid, State.FAILED, now=NOW, error=french, details=kind)
    assert error_in(record, "fr") == french
    assert error_in(record, "en").startswith(english)


def _both(error: BaseException, fr: str, en: str) -> None:
    assert isinstance(error, SynchroError) and error.say is not None
    assert fr in str(error) and str(error) == render(error.say, "fr")
    english = text_in(error, "en")
    assert en in english and fr not in english, english


def test_the_siege_s_server_errors_are_said_in_the_ui_language(tmp_path: Path) -> None:
    """What stops the Siège's server from starting, met for real: its port taken by
    another program, a certificate file that is not one, both in French and English."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HQServer(tmp_path / "ftp", {}, host="127.0.0.1", port=port, require_tls=False)
        with pytest.raises(TransportError) as busy:
            server.start()
    _both(busy.value, f"ne peut pas écouter sur 127.0.0.1:{port}",
          f"cannot listen on 127.0.0.1:{port}")  # fmt: skip
    bad = tmp_path / "siege.pem"
    bad.write_text("pas un certificat")
    with pytest.raises(TransportError) as unreadable:
        certificate_fingerprint(bad)
    _both(unreadable.value, "Certificat illisible", "Unreadable certificate")
    with pytest.raises(TransportError) as unusable:
        server_context(bad, None)
    _both(unusable.value, "Certificat du siège inutilisable", "certificate cannot be used")
    assert unusable.value.kind is ErrorKind.TLS


def test_the_state_database_s_errors_are_said_in_the_ui_language(tmp_path: Path) -> None:
    """A state database that is not one, and one from a newer version: real files."""
    junk = tmp_path / "state.db"
    junk.write_bytes(b"pas une base SQLite" * 100)
    with pytest.raises(StateError) as unreadable:
        StateDB(junk)
    _both(unreadable.value, "Base d'état illisible", "Unreadable state database")
    newer = tmp_path / "newer.db"
    StateDB(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StateError) as too_new:
        StateDB(newer)
    _both(too_new.value, "version plus récente de Synchro (schéma 999)",
          "newer version of Synchro (schema 999)")  # fmt: skip


def test_the_user_database_s_errors_are_said_in_the_ui_language(tmp_path: Path) -> None:
    """Met for real through the SQLite adapter: a file that is not a database, a row the
    database refuses. What the database itself says stays as it said it."""
    junk = tmp_path / "pas-une-base.db"
    junk.write_bytes(b"pas une base SQLite" * 100)
    with pytest.raises(DatabaseError) as opened:
        adapter = open_database(str(junk))
        adapter.tables()
    _both(opened.value, "impossible : file is not a database (ce fichier n'est pas une base",
          "failed: file is not a database (this file is not a SQLite database)")  # fmt: skip
    db = tmp_path / "data.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, nom TEXT NOT NULL)")
    conn.close()
    adapter = open_database(str(db))
    try:
        (table,) = [t for t in adapter.tables() if t.name == "articles"]
        with pytest.raises(DatabaseError) as refused, adapter.atomic():
            adapter.insert(table, [(1, None)])
    finally:
        adapter.close()
    _both(refused.value, "écriture dans la table articles impossible : NOT NULL",
          "writing to table articles failed: NOT NULL")  # fmt: skip


ITEMS = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"


def received(tmp_path: Path, site_schema: str, hq_rows: str) -> tuple[ImportResult, Any]:
    """An establishment (tables ``site_schema``) applying the Siège's ``hq_rows`` of
    ``items``: the import's result and the one row the quarantine keeps of it."""
    site_db, hq_db = tmp_path / "s1.db", tmp_path / "hq.db"
    sql(hq_db, ITEMS)
    sql(site_db, site_schema)
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"
        sql(hq_db, f"INSERT INTO items VALUES {hq_rows};")
        hq.export()
        result = site.import_package(hq.publish("S1", tmp_path / "out").path)
        (entry,) = site.state.quarantined()
    return result, entry


def test_a_row_the_database_refused_is_said_in_the_ui_language(tmp_path: Path) -> None:
    """A real refusal: the establishment's table has a CHECK the Siège's lacks. The
    quarantine keeps the error's words beside its French text, so the report email lists
    the row in English; the database's own words stay as it said them."""
    site_schema = (
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (name <> 'refusé'));"
    )
    result, entry = received(tmp_path, site_schema, "(1, 'accepté'), (2, 'refusé')")
    assert result.status == "applied" and result.stats.quarantined == 1
    assert "écriture dans la table items impossible : CHECK constraint failed" in entry["error"]
    with ReportStore(tmp_path / "reports.db") as reports:
        rid = reports.start("S1", "run", now=NOW)
        record = reports.finish(rid, State.FAILED, now=NOW, quarantined=1,
                                details={"quarantined": [entry]})  # fmt: skip
    mails = {
        lang: build_report_message([record], site="S1", role=Role.SITE, lang=lang, now=NOW).text
        for lang in ("fr", "en")
    }
    assert "écriture dans la table items impossible : CHECK constraint failed" in mails["fr"]
    assert "writing to table items failed: CHECK constraint failed" in mails["en"], mails["en"]
    assert "impossible" not in mails["en"]


def test_a_value_a_column_cannot_keep_is_refused_in_the_ui_language(tmp_path: Path) -> None:
    """Rule 4's refusal up front, naming the table and the column, met for real: a decimal
    of 20 significant digits bound for a SQLite DECIMAL column."""
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE prix (id INTEGER PRIMARY KEY, montant DECIMAL(30, 10));")
    adapter = open_database(str(db))
    try:
        (table,) = [t for t in adapter.tables() if t.name == "prix"]
        value = Decimal("1234567890.1234567891")
        with pytest.raises(DatabaseError) as refused, adapter.atomic():
            adapter.insert(table, [(1, value)])
    finally:
        adapter.close()
    _both(refused.value, "table prix, colonne montant : valeur refusée, "
          "1234567890.1234567891 a 20 chiffres significatifs",
          "table prix, column montant: value refused, 1234567890.1234567891 has 20 "
          "significant digits")  # fmt: skip


def test_a_row_stored_differently_is_said_in_the_ui_language(tmp_path: Path) -> None:
    """Rule 1, met for real: a trigger at the establishment changes the row just written.
    The read-back names the column with what was sent and what was stored, in French and
    in English."""
    site_schema = (
        ITEMS + "CREATE TRIGGER upper AFTER INSERT ON items BEGIN "
        "UPDATE items SET name = upper(name) WHERE id = new.id; END;"
    )
    result, entry = received(tmp_path, site_schema, "(1, 'crème')")
    assert result.stats.mismatched == 1
    french = 'valeur enregistrée différente de la valeur envoyée — name : envoyé "crème", '
    assert entry["error"].startswith(french + 'enregistré "CRèME"'), entry["error"]
    english = render(json.loads(entry["error_say"]), "en")
    assert (
        english == 'value stored differs from the value sent — name: sent "crème", stored "CRèME"'
    )


def test_what_a_cut_transfer_was_doing_is_said_in_the_ui_language() -> None:
    """The words inside a transport error (« envoi de X ») were French in English."""
    where = Where("127.0.0.1", 2121, "3615", 5.0)
    with pytest.raises(TransportError) as cut, translate(where, doing("send", name="a.pkg")):
        raise ConnectionResetError(104, "Connection reset by peer")
    _both(cut.value, "pendant « envoi de a.pkg » : Connection reset by peer",
          "cut during « sending a.pkg »: Connection reset by peer")  # fmt: skip
