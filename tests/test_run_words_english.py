"""The messages a run emits (not errors raised) are said in the UI language too: a
``schemas.json`` that cannot be read, a delivery kept at the Siège, a round's verdict,
status lines and progress, a quarantined row that cannot be retried, a table left out for
want of a key, a Contrôle that found tables different. Each is made by the real code on
real SQLite files and stores; its French stays as the manual and the other tests know it.
The keys are checked with the others in ``test_errors_english``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from engine_helpers import make_node
from rounds_helpers import sql
from test_errors_english import ITEMS, site_and_hq

from synchro.config.model import DatabaseSettings
from synchro.db import open_database
from synchro.engine import schema_exchange as exchange
from synchro.engine.ack import controle, controle_words, make_ack
from synchro.engine.events import progress, said, state_changed
from synchro.engine.hq_acks import AckBook
from synchro.engine.hq_deliveries import KEPT, kept_words
from synchro.engine.hq_verdict import record_missing, round_verdict
from synchro.engine.serveur_node import ServeurNode
from synchro.engine.siege_node import SiegeNode
from synchro.engine.tables import select_tables
from synchro.errors import STOPPED_SAY, SchemaError, error_text, text_in
from synchro.i18n import render
from synchro.names import ack_name
from synchro.reports import ReportStore, State, error_in
from synchro.reports.records import entry_error_in
from synchro.transport.ftp_policy import HQ_DISK_FULL

# -- messages a run emits ----------------------------------------------------------------------


def test_schemas_that_cannot_be_read_are_said_in_english(tmp_path: Path) -> None:
    for raw, french, english in (
        (b"pas du json", "schemas.json illisible (", "schemas.json unreadable ("),
        (b'{"format": 0}', "schemas.json d'un format inconnu", "schemas.json in an unknown format"),
    ):
        with pytest.raises(exchange.Unreadable) as unreadable:
            exchange.decode(raw)
        assert isinstance(unreadable.value, ValueError)  # its callers' catch still holds
        assert str(unreadable.value).startswith(french)
        assert render(unreadable.value.say or ("", {}), "en").startswith(english)
    garbage = tmp_path / "0001.pkg"
    garbage.write_bytes(b"rien d'un paquet" * 8)
    with pytest.raises(exchange.Unreadable) as package:
        exchange.package_tables(garbage)
    assert str(package.value) == "0001.pkg illisible (ce n'est pas un paquet Synchro)"
    said = package.value.say or ("", {})
    assert render(said, "en") == "0001.pkg unreadable (this is not a Synchro package)"


def test_a_delivery_kept_at_the_siege_is_said_in_english(tmp_path: Path) -> None:
    db = tmp_path / "base.db"
    sql(db, "CREATE TABLE journal (a INTEGER, b TEXT);")
    with open_database(str(db)) as adapter:
        journal = adapter.tables()[0]
        with pytest.raises(SchemaError) as keyless, adapter.atomic():
            adapter.upsert(journal, [(1, "x")])
    say = kept_words(keyless.value)
    assert render(say, "fr") == f"{error_text(keyless.value)} ({KEPT})"
    shown = render(say, "en")
    assert shown.startswith(text_in(keyless.value, "en"))
    assert shown.endswith("(the package stays at the HQ and will be applied again)")


def test_a_round_s_verdict_is_said_in_english(tmp_path: Path) -> None:
    """The round's row (the real store): establishments without data or failed, an upload
    refused for want of room at the Siège, a round stopped; ``records.error_in`` reads them."""
    now = dt.datetime(2026, 12, 6, 12, 0)
    refused = SimpleNamespace(user="3617", reason=f"{HQ_DISK_FULL} (552)", when=now.timestamp())
    with ReportStore(tmp_path / "rapport.db") as store:
        rid = store.start("HQ", "round", now=now)
        failed = store.start("3615", "site-in-round", round_id=rid, now=now)
        store.finish(failed, State.FAILED, now=now, error="refusé")
        record_missing(store, lambda: [refused], ["3616", "3617"], rid, now, now)
        state, error, details = round_verdict(store, rid, ["3616"], "HQ", State.OK, "", now)
        assert error == "Etablissements sans données : 3616 ; en échec : 3615, 3617"
        row = store.finish(rid, state, now=now, error=error, details=details)
        assert error_in(row, "en") == "Establishments without data: 3616 ; failed: 3615, 3617"
        [upload] = [r for r in store.for_round(rid) if r.site == "3617"]
        assert upload.error == f"envoi refusé : {HQ_DISK_FULL} (552)"
        assert error_in(upload, "en") == f"upload refused: {HQ_DISK_FULL} (552)"
        stopped = store.start("HQ", "round", now=now)
        stop = render(STOPPED_SAY, "fr")
        state, error, details = round_verdict(store, stopped, [], "HQ", State.STOPPED, stop, now)
        row = store.finish(stopped, state, now=now, error=error, details=details)
    assert row.error == "Synchronisation arrêtée par l'utilisateur."
    assert error_in(row, "en") == "Synchronisation stopped by the user."


def test_status_lines_and_progress_are_said_in_english() -> None:
    theirs = {"items": (1, "00")}
    since = controle(theirs, {"items": (2, "11")}, theirs, theirs)  # changed since, no more
    assert "identical but for recent changes (sent at the next round): items" in said(
        "engine.ack.received", site="3615", sequence=4, controle=[controle_words(*since[:2])]
    ).text("en")
    for text, tables, _pending in (controle(theirs, None), controle(theirs, {"items": (2, "11")})):
        line = said(
            "engine.ack.received", site="3615", sequence=4, controle=[controle_words(text, tables)]
        )
        assert (
            line.message == f"3615 a intégré les données du siège (paquet 4) ; contrôle : {text}."
        )
        assert "check: " in line.text("en") and "vérifiable" not in line.text("en")
    assert "tables differ: items" in line.text("en")
    step = progress("publish", "HQ", "engine.progress.sites", count=3)
    assert (step.detail, step.detail_in("en")) == ("3 établissement(s)", "3 establishment(s)")
    sent = progress("send", "3615", "engine.progress.package", done=(12, 3400), n=5)
    assert (sent.rows, sent.bytes, sent.detail, sent.detail_in("en")) == (
        12,
        3400,
        "paquet 5",
        "package 5",
    )
    running = state_changed("running", 7, None, "engine.run.running", site="3615")
    assert running.message == "Synchronisation de 3615"
    assert render(running.say or ("", {}), "en") == "Synchronisation of 3615"
    done = state_changed("ok", 7, None, "engine.round.done")
    assert (
        done.message == "Tour terminé." and render(done.say or ("", {}), "en") == "Round finished."
    )


def test_a_quarantined_row_that_cannot_be_retried_is_said_in_english(tmp_path: Path) -> None:
    """A row the Siège sent, rewritten by a trigger here (quarantined), then a column added:
    the kept row no longer fits the table, its retry cannot even read it."""
    site_db, hq_db = tmp_path / "s1.db", tmp_path / "hq.db"
    for db in (site_db, hq_db):
        sql(db, ITEMS)
    sql(hq_db, "INSERT INTO items VALUES (1, 'beta');")
    sql(
        site_db,
        "CREATE TRIGGER upper AFTER INSERT ON items BEGIN "
        "UPDATE items SET name = upper(new.name) WHERE id = new.id; END;",
    )
    with (
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
        make_node(tmp_path, "S1", str(site_db)) as site,
    ):
        assert isinstance(hq, SiegeNode)
        hq.export()
        path, _manifest = hq.publish("S1", tmp_path / "out")
        assert site.import_package(path).stats.mismatched == 1
    sql(site_db, "ALTER TABLE items ADD COLUMN extra TEXT;")
    with make_node(tmp_path, "S1", str(site_db)) as site:
        [entry] = site.export().capture.unapplied
    assert " (nouvel essai impossible : " in entry["error"]
    shown = entry_error_in(entry, "en")
    assert " (cannot try again: " in shown and "nouvel essai" not in shown


def test_a_table_left_out_for_want_of_a_key_says_why_in_english(tmp_path: Path) -> None:
    db = tmp_path / "base.db"
    sql(db, "CREATE TABLE journal (a INTEGER, b TEXT);" + ITEMS)
    with open_database(str(db)) as adapter:
        chosen = select_tables(adapter.tables(), DatabaseSettings(connection=str(db)))
    [journal] = chosen.skipped
    assert journal.reason.startswith("pas de clé primaire ni d'index unique : elle n'est pas")
    assert render(journal.say, "en").startswith("no primary key or unique index: it is not")


def test_a_controle_that_found_tables_different_is_said_in_english(tmp_path: Path) -> None:
    """The establishment applied the Siège's package, then captured a change the Siège
    never received: its ack's checksums differ from the published ones, and so do the sums
    of what it exchanged; its Rapport row says so."""
    site_db, hq_db = site_and_hq(tmp_path)
    now = dt.datetime(2026, 12, 6, 12, 0)
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
        ReportStore(tmp_path / "rapport.db") as store,
    ):
        assert isinstance(hq, SiegeNode) and isinstance(site, ServeurNode)
        assert hq.import_package(site.export().path).status == "applied"
        published = hq.publish("S1", tmp_path / "out")
        assert site.import_package(published.path).status == "applied"
        sql(site_db, "INSERT INTO items VALUES (9, 'changé depuis');")
        site.export()  # (its package kept in the outbox: the Siège never gets it)
        owed = make_ack(site)
        assert owed is not None
        inbox = tmp_path / "ftp" / "S1" / "in"
        inbox.mkdir(parents=True)
        (inbox / ack_name("S1", owed.ack.sequence)).write_bytes(owed.ack.to_bytes())
        rid = store.start("S1", "site-in-round", now=now)
        book = AckBook(hq, store, tmp_path / "ftp")
        book.expect("S1", rid, owed.ack.sequence, now + dt.timedelta(hours=1))
        [got] = book.take(["S1"], now)
        row = store.get(rid)
    assert got.tables == ["items"]
    assert row.error == "Contrôle : tables différentes : items"
    assert error_in(row, "en") == "Check: tables differ: items"
