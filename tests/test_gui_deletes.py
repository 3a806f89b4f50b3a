"""MANUELLE after an automatic synchronisation held mass deletes (``capture.mass_deletes``)
or a restored database (``engine.marks``): real windows under Xvfb. The user sees what was
held and decides: Annuler starts nothing, Envoyer starts the run that sends them, and for a
restored database *Reprendre les données du groupe* takes the group's data back instead.
With the real App behind the real ``AppBackend``, the deletes reach the Siège only after
Envoyer, and the rows the restore took away come back after Reprendre."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from gui_fake import FakeBackend, FakeTray, click, kinds, only, settle, text_of, wait_for
from test_mass_deletes import add_articles, automatic_run, in_step, rows
from test_restore import backup
from test_twins import copied_after_a_round
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.config.store import load_config, save_config
from synchro.gui.ports import STATE_OK
from synchro.gui.shell import GuiShell
from synchro.gui.tray import Command
from synchro.gui.windows import confirm
from synchro.gui.windows import general_layout as g
from synchro.gui.windows import rapport as r
from synchro.gui.windows.confirm import ConfirmDeletesController
from synchro.gui.windows.general import GeneralController
from synchro.gui.windows.rapport import RapportController
from synchro.gui_backend import AppBackend
from synchro.log import setup_logging, shutdown_logging
from synchro.platform.autostart import XdgAutostart
from synchro.platform.paths import NodePaths
from synchro.reports import State

pytestmark = pytest.mark.gui
HELD = "Suppressions retenues, rien n'a été envoyé : table articles : 300 lignes sur 600 (50 %)"


@pytest.fixture
def shell(xvfb: str, tmp_path: Path) -> Iterator[GuiShell]:
    backend = FakeBackend(tmp_path)
    shell = GuiShell(backend, tray=FakeTray())
    shell.start()
    yield shell
    shell.quit()


@contextmanager
def real_question(site_paths: NodePaths, tmp_path: Path) -> Iterator[tuple[GuiShell, Any]]:
    """The real windows over the real App (``AppBackend``): MANUELLE clicked in the General
    window, the question it opened; the Rapport window open to follow the run."""
    backend = AppBackend(site_paths, autostart=XdgAutostart(tmp_path / "autostart"))
    shell = GuiShell(backend, tray=FakeTray())
    try:
        shell.start()
        shell.open_rapport()
        shell.open_general()
        click(shell, only(shell, GeneralController).window, g.MANUAL)
        yield shell, only(shell, ConfirmDeletesController).window
    finally:
        shell.quit()
        backend.close()


def ended_ok(shell: GuiShell) -> None:
    table = only(shell, RapportController).window[r.TABLE]
    wait_for(shell, lambda: table.Values[0][3] == "OK", 1200)


def test_manuelle_asks_before_sending_held_changes(shell: GuiShell) -> None:
    backend = shell.backend
    assert isinstance(backend, FakeBackend)
    shell.open_general()
    window = only(shell, GeneralController).window
    click(shell, window, g.MANUAL)  # nothing held: the run starts at once
    assert backend.calls == ["run_now"] and "ConfirmDeletesController" not in kinds(shell)
    backend.finish_run(STATE_OK)
    settle(shell)
    backend.held = HELD
    click(shell, window, g.MANUAL)
    question = only(shell, ConfirmDeletesController).window
    assert question.TKroot.title() == "Envoi retenu"
    assert text_of(question, confirm.HELD) == HELD
    assert backend.calls == ["run_now"]  # nothing started yet
    click(shell, question, confirm.CANCEL)
    assert backend.calls == ["run_now"]
    assert "Changements non envoyés" in text_of(window, g.STATUS)
    shell.handle_command(Command.RUN)  # the tray's « Synchroniser maintenant » asks too
    settle(shell)
    question = only(shell, ConfirmDeletesController).window
    click(shell, question, confirm.SEND)
    assert backend.calls == ["run_now", "run_now:send"]
    assert not [c for c in shell.controllers if isinstance(c, ConfirmDeletesController)]
    assert "Synchronisation manuelle demandée." in text_of(window, g.STATUS)


def test_envoyer_sends_the_held_changes_of_a_real_run(xvfb: str, tmp_path: Path) -> None:
    setup_logging(tmp_path / "logs", console=False)
    try:
        with in_step(tmp_path) as (_hq, site_paths, site_db, hq_db):
            conn = sqlite3.connect(site_db)
            conn.execute("DELETE FROM articles WHERE id >= 1300")
            conn.commit()
            conn.close()
            assert automatic_run(site_paths).state is State.FAILED  # held
            with real_question(site_paths, tmp_path) as (shell, question):
                assert "300 lignes sur 602" in text_of(question, confirm.HELD)
                assert rows(hq_db) == 602  # nothing sent yet
                click(shell, question, confirm.SEND)
                ended_ok(shell)
    finally:
        shutdown_logging()
    assert rows(hq_db) == rows(site_db) == 302


def test_a_restored_database_is_offered_the_group_s_data_back(shell: GuiShell) -> None:
    """A Serveur's restored database (``engine.marks``): the question offers *Reprendre les
    données du groupe* beside Envoyer; mass deletes alone do not."""
    backend = shell.backend
    assert isinstance(backend, FakeBackend)
    shell.open_general()
    window = only(shell, GeneralController).window
    backend.held = HELD
    click(shell, window, g.MANUAL)
    question = only(shell, ConfirmDeletesController).window
    assert confirm.TAKE_BACK not in question.AllKeysDict  # mass deletes: send or not
    click(shell, question, confirm.CANCEL)
    backend.held, backend.take_back_offered = "Base restaurée, rien n'a été envoyé", True
    click(shell, window, g.MANUAL)
    question = only(shell, ConfirmDeletesController).window
    assert question[confirm.TAKE_BACK].ButtonText == "Reprendre les données du groupe"
    click(shell, question, confirm.TAKE_BACK)
    assert backend.calls == ["run_now:take_back"]


def test_reprendre_takes_the_group_s_data_back_in_a_real_run(xvfb: str, tmp_path: Path) -> None:
    """The real App behind the real ``AppBackend``: the backup restored, the automatic run
    held; *Reprendre les données du groupe* brings back the establishment's own rows the
    restore took away, and sends nothing of the restored copy."""
    setup_logging(tmp_path / "logs", console=False)
    try:
        with in_step(tmp_path) as (hq, site_paths, site_db, hq_db):
            backup(site_db, tmp_path / "backup.db")
            add_articles(site_db, 2000, 20)  # sent, then lost by the restore
            hq.run_now()
            assert automatic_run(site_paths).state is State.OK
            backup(tmp_path / "backup.db", site_db)
            assert automatic_run(site_paths).state is State.FAILED  # held
            hq.run_now()
            with real_question(site_paths, tmp_path) as (shell, question):
                assert "Base restaurée" in text_of(question, confirm.HELD)
                click(shell, question, confirm.TAKE_BACK)
                ended_ok(shell)
    finally:
        shutdown_logging()
    assert rows(hq_db) == rows(site_db) == 622


@pytest.mark.parametrize(
    ("lang", "words"),
    [("fr", "Deux machines envoient sous le code 3615"), ("en", "Two machines send under code")],
)
def test_envoyer_sends_what_a_copied_server_kept(
    lang: str, words: str, xvfb: str, tmp_path: Path
) -> None:
    """An establishment's server copied and both left running (``engine.twins``): the copy
    whose package the Siège did not take holds; MANUELLE shows why, in the UI's language,
    offers Envoyer alone (nothing was restored), and Envoyer sends its kept rows and brings
    the group's back."""
    setup_logging(tmp_path / "logs", console=False)
    try:
        with in_step(tmp_path, site_rows=0) as (hq, site_paths, site_db, hq_db):
            copy_paths, copy_db = copied_after_a_round(tmp_path, hq, site_paths, site_db, 3)
            hq.run_now()
            assert automatic_run(copy_paths).state is State.FAILED  # held, its rows kept
            config = load_config(copy_paths.config_file)
            save_config(dataclasses.replace(config, language=lang), copy_paths.config_file)
            hq.run_now()
            with real_question(copy_paths, tmp_path) as (shell, question):
                assert words in text_of(question, confirm.HELD)
                assert confirm.TAKE_BACK not in question.AllKeysDict
                click(shell, question, confirm.SEND)
                ended_ok(shell)
    finally:
        shutdown_logging()
    assert rows(hq_db) == rows(copy_db) == rows(site_db) + 3
