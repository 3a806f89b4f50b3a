"""The real GuiBackend over the App, without a display."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import queue
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synchro.config.model import Config, Role
from synchro.config.store import load_config
from synchro.engine import events as engine
from synchro.errors import ConnectionTestError, StateError
from synchro.gui.ports import Progress, ReportsChanged, StateChanged, StatusMessage, TrayState
from synchro.gui_backend import AppBackend, gui_event, quarantine_line
from synchro.i18n import render, tr
from synchro.log import setup_logging, shutdown_logging
from synchro.platform.autostart import XdgAutostart
from synchro.platform.paths import paths_beside
from synchro.report_summary import detail_lines
from synchro.reports import State
from synchro.state import StateDB
from synchro.transport.token import make_token


@pytest.fixture()
def backend(tmp_path: Path) -> Iterator[AppBackend]:
    setup_logging(tmp_path / "logs", console=False)
    db = tmp_path / "node" / "base.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE articles(id INTEGER PRIMARY KEY, nom TEXT);CREATE TABLE journal(ligne TEXT);"
    )
    conn.close()
    paths = paths_beside(tmp_path / "node" / "synchro.toml")
    b = AppBackend(paths, autostart=XdgAutostart(tmp_path / "autostart"))
    yield b
    b.close()
    shutdown_logging()


def test_engine_events_become_gui_events() -> None:
    assert gui_event(engine.Progress("send", "3615", 12, 3400)) == [
        Progress(rows=12, bytes=3400, phase="3615 : envoi")
    ]
    assert gui_event(engine.StateChanged("failed", "refus")) == [
        StateChanged(TrayState.FAILED, "refus"),
        ReportsChanged(),
    ]
    english = gui_event(engine.Progress("apply", "3615", 5, 0, "ventes"), "en")
    assert english == [Progress(rows=5, bytes=0, phase="3615 : applying (ventes)")]
    at = dt.datetime(2026, 11, 18, 17, 39, 2)
    assert gui_event(engine.Status("Démarrage en mode siège.", at)) == [
        StatusMessage("Démarrage en mode siège.", at)
    ]


def test_the_engine_s_running_states_and_progress_words_follow_the_ui_language() -> None:
    """What a run or a round says while it runs (the state and a phase's detail) carries its
    words: the tray's and the status bar's text in the UI language, French by default."""
    from synchro.engine.events import progress, state_changed

    running = state_changed("running", 7, None, "engine.run.running", site="3615")
    assert gui_event(running)[0] == StateChanged(TrayState.RUNNING, "Synchronisation de 3615")
    assert gui_event(running, "en")[0] == StateChanged(TrayState.RUNNING, "Synchronisation of 3615")
    sites = progress("publish", "0000", "engine.progress.sites", count=3)
    french = gui_event(sites)[0]
    english = gui_event(sites, "en")[0]
    assert isinstance(french, Progress) and isinstance(english, Progress)
    assert french.phase.startswith("0000 : ") and "3" in french.phase
    assert (
        english.phase
        == "0000 : "
        + tr("app.phase.publish", "en")
        + " ("
        + tr("engine.progress.sites", "en", count=3)
        + ")"
    )
    assert english.phase != french.phase


def test_status_lines_follow_the_ui_language() -> None:
    """The engine's status lines carry their key: French (the manual's words) by default,
    English when the UI is in English, report states included."""
    start = engine.said("engine.start.hq")
    assert start.message == "Démarrage en mode siège."
    assert gui_event(start) == [StatusMessage("Démarrage en mode siège.", start.at)]
    english = [StatusMessage("Starting in headquarters mode.", start.at)]
    assert gui_event(start, "en") == english
    end = engine.said("engine.round.end", state=State.FAILED, detail=" (sans données : 3616)")
    assert end.message == "Fin du tour : Echec (sans données : 3616)"
    assert end.text("en") == "Round finished: Failed (sans données : 3616)"
    applied = engine.said("engine.applied", rows=12)
    assert applied.text("en") == "Headquarters data applied: 12 row(s)."


def test_wizard_save_starts_the_app_and_sets_autostart(backend: AppBackend, tmp_path: Path) -> None:
    assert backend.needs_setup()
    assert backend.reports() == []
    config = dataclasses.replace(Config(role=Role.SITE, site="3615"), start_with_windows=True)
    config = dataclasses.replace(
        config, database=dataclasses.replace(config.database, connection="base.db")
    )
    backend.save_config(config)
    assert not backend.needs_setup()
    assert load_config(backend.paths.config_file).site == "3615"
    assert backend.autostart()
    desktop = (tmp_path / "autostart" / "synchro.desktop").read_text(encoding="utf-8")
    assert "--minimized" in desktop and str(backend.paths.config_file) in desktop
    assert sys.executable in desktop
    backend.save_config(dataclasses.replace(backend.config(), start_with_windows=False))
    assert not backend.autostart()
    status = backend.events.get(timeout=5)
    assert isinstance(status, StatusMessage) and status.text == "Démarrage en mode serveur."


def test_probes_tables_token_and_connection_failure(backend: AppBackend, tmp_path: Path) -> None:
    assert backend.list_tables(str(tmp_path / "node" / "base.db")) == [
        "articles",
        "journal (sans clé)",
    ]
    token = make_token("siege.example.com", 2121, "3615", "s3cret-0123456789abcdef", "ab" * 32)
    config = backend.apply_connection_token(Config(), token)
    s = config.site_settings
    assert (config.site, s.hq_address, s.hq_port, s.certificate_fingerprint) == (
        "3615",
        "siege.example.com",
        2121,
        "ab" * 32,
    )
    with pytest.raises(ConnectionTestError) as caught:  # no certificate pinned yet
        backend.test_connection("127.0.0.1:1")
    assert caught.value.code == "certificate"
    config = dataclasses.replace(
        config, database=dataclasses.replace(config.database, connection="base.db")
    )
    backend.save_config(config)
    with pytest.raises(ConnectionTestError) as caught:
        backend.test_connection("127.0.0.1:1")
    assert caught.value.code == "refused"


def test_reports_and_detail_after_a_failed_run(backend: AppBackend) -> None:
    config = Config(role=Role.SITE, site="3615")
    config = dataclasses.replace(
        config,
        database=dataclasses.replace(config.database, connection="base.db"),
        site_settings=dataclasses.replace(
            config.site_settings, hq_address="127.0.0.1", hq_port=1, attempts=1, auto_sync=False
        ),
    )
    backend.save_config(config)
    backend.run_now()
    deadline = dt.datetime.now() + dt.timedelta(seconds=20)
    while dt.datetime.now() < deadline:
        rows = backend.reports()
        if rows and rows[0].state != State.RUNNING.value:
            break
    rows = backend.reports()
    assert rows[0].site == "3615" and rows[0].state == "Echec" and rows[0].errors == 1
    detail = backend.report_detail(rows[0].id)
    assert "127.0.0.1:1" in detail.message
    # no certificate pinned: the words come from the row's kind (tls), in the UI language
    assert "Cause : La connexion chiffrée a échoué" in detail.message
    assert "À faire : " in detail.message
    states: list[str] = []  # the row is final just before the run says so: wait for it
    deadline = dt.datetime.now() + dt.timedelta(seconds=20)
    while not states and dt.datetime.now() < deadline:
        try:
            event = backend.events.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(event, StateChanged) and event.state is TrayState.FAILED:
            states.append(event.message)
    assert states and states[-1].startswith("Echec (connexion chiffrée ou certificat) : ")
    out = backend.paths.data_dir / "rapport.csv"
    backend.export_report_csv(out, "fr")
    assert "Echec" in out.read_text(encoding="utf-8-sig")


def test_report_detail_lists_quarantined_rows_with_labels_of_the_ui_language(
    backend: AppBackend, tmp_path: Path
) -> None:
    """The state's quarantine fields (table, key, column, sent, stored) with English labels
    in English; the recorded error text of a refusal stays as it was given."""
    state = StateDB(tmp_path / "state.db")
    mismatch = [{"column": "nom", "sent": "Último Pau-De-Arara", "stored": "Último Pau-De-Arar"}]
    state.log_quarantine(
        "SIEGE#4",
        "tracks",
        "[1077]",
        '[1077,"Último Pau-De-Arara"]',
        "valeur enregistrée différente de la valeur envoyée — nom : ...",
        kind="mismatch",
        op="U",
        columns=json.dumps(mismatch, ensure_ascii=False),
        stored='[1077,"Último Pau-De-Arar"]',
    )
    refusal = "MariaDB : table t, colonne v : valeur refusée, 8 caractères, la colonne en garde 5"
    state.log_quarantine("SIEGE#4", "t", "[1]", '[1,"abcdefgh"]', refusal, op="U")
    rows = state.quarantined()
    state.close()
    config = dataclasses.replace(
        Config(role=Role.SITE, site="3615", language="en"),
        database=dataclasses.replace(Config().database, connection="base.db"),
        site_settings=dataclasses.replace(Config().site_settings, auto_sync=False),
    )
    backend.save_config(config)
    reports = backend._synchro().app.reports
    now = dt.datetime(2026, 12, 4, 15, 0)
    run = reports.start("3615", "run", now=now)
    reports.finish(run, State.OK, now=now, quarantined=2, details={"quarantined": rows})
    detail = backend.report_detail(str(run))
    assert detail.message.splitlines() == [
        "2 rows not applied — see the report",
        "Cause: Some rows were not stored exactly as sent (refused or changed by the database) "
        "or could not be sent; every other row is applied.",
        "What to do: Open the Rapport: each row is listed there with its table, key, column, "
        "sent value and stored value. Fix the cause (column too short, the database's type or "
        "range, a trigger): they are tried again at the next synchronisation.",
    ]
    assert detail.quarantined == (
        "tracks [1077]: stored differently than sent — column nom: sent Último Pau-De-Arara, "
        "stored Último Pau-De-Arar",
        f't [1]: refused by the database — {refusal}; sent [1,"abcdefgh"]',
    )
    assert quarantine_line(rows[0], "fr") == (
        "tracks [1077] : enregistrée autrement qu'envoyée — colonne nom : envoyé Último "
        "Pau-De-Arara, enregistré Último Pau-De-Arar"
    )


def test_report_detail_says_the_controle_and_the_ack_in_plain_lines(backend: AppBackend) -> None:
    """An OK row's details are sentences, not JSON: « Contrôle : identiques »; in English
    the engine's French Contrôle phrases are translated, table and site names kept."""
    config = dataclasses.replace(
        Config(role=Role.SITE, site="3615", language="en"),
        database=dataclasses.replace(Config().database, connection="base.db"),
        site_settings=dataclasses.replace(Config().site_settings, auto_sync=False),
    )
    backend.save_config(config)
    reports = backend._synchro().app.reports
    now = dt.datetime(2026, 12, 4, 15, 0)
    ok = reports.start("3615", "run", now=now)
    reports.finish(ok, State.OK, now=now, details={"controle": "identiques", "accuse": 7})
    detail = backend.report_detail(str(ok))
    assert detail.message == "Check: identical\nAcknowledged: package 7"
    assert "{" not in detail.message
    round_id = reports.start("SIEGE", "round", now=now)
    summary = "3615 : tables différentes : clients, factures"
    details = {"missing": [], "failed": [], "controle": summary, "security": []}
    reports.finish(round_id, State.OK, now=now, details=details)
    assert backend.report_detail(str(round_id)).message == (
        "Check: 3615: tables differ: clients, factures"
    )


def test_detail_lines_in_french_leave_out_what_the_error_says() -> None:
    ok = {"controle": "identiques", "accuse": 12, "not_applied": {"applied": 1, "sent": 1}}
    assert detail_lines(ok, "", "fr") == [
        "Contrôle : identiques",
        "Accusé de réception : paquet 12",
    ]
    differs = {"controle": "tables différentes : clients", "accuse": 3}
    error = "Contrôle : tables différentes : clients"
    assert detail_lines(differs, error, "fr") == ["Accusé de réception : paquet 3"]
    round_details = {"missing": ["3616"], "failed": [], "controle": "identiques"}
    assert detail_lines(round_details, "Etablissements sans données : 3616", "fr") == [
        "Contrôle : identiques"
    ]
    assert detail_lines(round_details, "", "fr") == [
        "Etablissements sans données : 3616",
        "Contrôle : identiques",
    ]
    retried = [{"tbl": "t", "key_json": "[1]", "outcome": "applied"}]
    assert detail_lines({"retried": retried, "other": {"a": 1}}, "", "fr") == [
        "t [1] : nouvel essai réussi, ligne appliquée",
        'other : {"a": 1}',
    ]


def test_detail_lines_say_a_delivery_kept_and_an_import_made_again() -> None:
    details = {"kept": "3615-00000004.pkg", "attempts": 2, "error_kind": "disk"}
    assert detail_lines(details, "", "fr") == [
        "Paquet gardé au siège, il sera intégré de nouveau : 3615-00000004.pkg",
        "Intégré au 2e essai : la base avait annulé la transaction elle-même "
        "(interblocage, connexion perdue)",
    ]
    assert detail_lines(details, "", "en") == [
        "Package kept at the Siège, it will be applied again: 3615-00000004.pkg",
        "Applied at attempt 2: the database had cancelled the transaction itself "
        "(deadlock, connection lost)",
    ]


def test_a_failure_the_rapport_could_not_take_is_noted_in_the_ui_language(
    backend: AppBackend,
) -> None:
    """A failure with no Rapport row to read (its file locked, its disk full): the tray's
    note says the error's own words in the UI's language (it was the French text)."""
    config = Config(role=Role.SITE, site="3615", language="en")
    config = dataclasses.replace(
        config, database=dataclasses.replace(config.database, connection="base.db")
    )
    backend.save_config(config)
    error = StateError(say=("engine.report.locked", {"path": "rapport.db", "detail": "locked"}))
    backend._forward(engine.StateChanged("failed", str(error), None, say=error.say))
    notes: list[str] = []
    with contextlib.suppress(queue.Empty):
        while True:
            event = backend.events.get(timeout=0.5)
            if isinstance(event, StateChanged) and event.state is TrayState.FAILED:
                notes.append(event.message)
    assert notes == ["The report rapport.db is unreadable or locked (locked): check the disk, "
                     "and that no other Synchro is running."]  # fmt: skip


def test_a_refused_row_s_detail_line_is_in_the_ui_language() -> None:
    """A quarantined row that kept its error's words is listed in the UI's language; one
    that did not (an older state) as stored."""
    said = ["engine.db.failed", {"where": "SQLite (a.db)", "doing": [["engine.db.doing.write",
            {"table": "ventes"}]], "detail": "NOT NULL constraint failed"}]  # fmt: skip
    entry = {"tbl": "ventes", "key_json": "[7]", "kind": "refused", "row_json": "[7, null]",
             "error": render(said, "fr"), "error_say": json.dumps(said)}  # fmt: skip
    line = quarantine_line(entry, "en")
    assert "SQLite (a.db): writing to table ventes failed: NOT NULL constraint failed" in line
    assert "impossible" not in line
    older = {**entry, "error_say": None}
    assert "écriture dans la table ventes impossible" in quarantine_line(older, "en")
