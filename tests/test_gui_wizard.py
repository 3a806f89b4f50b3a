"""The first-run wizard under Xvfb: every step, bad input, then saved and on to the tray."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_fake import (
    FakeBackend,
    FakeTray,
    click,
    kinds,
    only,
    settle,
    started_shell,
    text_of,
    wait_for,
)
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.config.model import Config, Role
from synchro.config.passwords import verify_password
from synchro.errors import DatabaseError
from synchro.gui.shell import GuiShell
from synchro.gui.windows import email as e
from synchro.gui.windows import wizard_layout as w
from synchro.gui.windows.email import EmailController
from synchro.gui.windows.wizard import WizardController

pytestmark = pytest.mark.gui


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path, Config(language="fr"), setup=True)


@pytest.fixture
def shell(
    xvfb: str,
    backend: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[GuiShell]:
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")  # the wizard opens in the system's language
    with started_shell(backend) as shell:
        yield shell


def wizard(shell: GuiShell) -> WizardController:
    return only(shell, WizardController)


def next_step(shell: GuiShell) -> None:
    click(shell, wizard(shell).window, w.NEXT)


def fill(shell: GuiShell, **values: Any) -> None:
    window = wizard(shell).window
    for key, value in values.items():
        window[key].update(value)


def test_wizard_opens_on_first_run_with_admin_offered_and_today(shell: GuiShell) -> None:
    assert kinds(shell) == ["WizardController"]
    assert not shell.tray.started  # type: ignore[attr-defined]
    window = wizard(shell).window
    assert window[w.PASSWORD].get() == "ADMIN" and window[w.CONFIRM].get() == "ADMIN"
    assert "conseillé de le changer" in text_of(window, "-PASSWORD-HINT-")
    today = dt.date.today().strftime("%d/%m/%Y")
    assert window[w.FIRST_SYNC].get() == f"{today} 00:00:00"
    assert window[w.PREV].Widget["state"] == "disabled"
    assert window[w.FINISH].Widget["state"] == "disabled"


def test_wizard_serveur_with_address_saves_and_goes_to_the_tray(
    shell: GuiShell, backend: FakeBackend
) -> None:
    fill(shell, **{w.PASSWORD: "nouveau1", w.CONFIRM: "nouveau1"})
    next_step(shell)
    fill(shell, **{w.SITE_CODE: "3615", w.FIRST_SYNC: "06/12/2005 00:00:00"})
    next_step(shell)
    fill(shell, **{w.SQLITE_PATH: "/data/magasin.db"})
    click(shell, wizard(shell).window, w.DB_TEST)
    window = wizard(shell).window
    wait_for(shell, lambda: text_of(window, w.DB_RESULT) == "3 tables trouvées.")
    assert window[w.TABLES].get_list_values() == ["articles", "clients", "ventes"]
    next_step(shell)
    fill(shell, **{w.TOKEN: "192.168.0.24"})
    next_step(shell)
    click(shell, wizard(shell).window, w.FINISH)
    assert kinds(shell) == [] and shell.tray.started  # type: ignore[attr-defined]
    saved = backend.saved[-1]
    assert saved.role is Role.SITE and saved.site == "3615"
    assert saved.last_sync == dt.datetime(2005, 12, 6)
    assert saved.database.connection == "/data/magasin.db"
    assert saved.site_settings.hq_address == "192.168.0.24" and saved.site_settings.hq_port == 21
    assert verify_password("nouveau1", saved.admin_password_hash)
    assert backend.tested == ["/data/magasin.db"]


def test_wizard_siege_with_odbc_and_email(shell: GuiShell, backend: FakeBackend) -> None:
    next_step(shell)  # ADMIN kept
    window = wizard(shell).window
    click(shell, window, w.MODE_HQ)
    fill(shell, **{w.SITE_CODE: "0001"})
    next_step(shell)
    click(shell, window, w.DB_ODBC)
    fill(shell, **{w.DRIVER: "PostgreSQL Unicode", w.DSN: "SERVER=127.0.0.1;DATABASE=compta"})
    next_step(shell)
    assert window[w.HQ_PANEL].visible and not window[w.SITE_PANEL].visible
    fill(shell, **{w.FTP_PORT: "2121", w.SERVERS: "4"})
    next_step(shell)
    click(shell, window, w.EMAIL)
    dialog = only(shell, EmailController).window
    dialog[e.RECIPIENT].update("chef@siege.fr")
    dialog[e.SENDER].update("synchro@siege.fr")
    dialog[e.SERVER].update("smtp.siege.fr")
    click(shell, dialog, e.OK)
    assert window[w.SEND_EMAIL].get() is True
    assert "chef@siege.fr" in text_of(window, w.EMAIL_STATE)
    click(shell, window, w.FINISH)
    saved = backend.saved[-1]
    assert saved.role is Role.HQ and saved.site == "0001"
    assert (
        saved.database.connection == "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;DATABASE=compta"
    )
    assert (saved.hq.port, saved.hq.servers) == (2121, 4)
    assert saved.send_email and saved.email.recipients == ("chef@siege.fr",)
    assert saved.admin_password_hash == ""  # ADMIN kept: the default


def test_wizard_connection_token_is_applied_by_the_backend(
    shell: GuiShell, backend: FakeBackend
) -> None:
    next_step(shell)
    fill(shell, **{w.SITE_CODE: "3615"})
    next_step(shell)
    next_step(shell)
    fill(shell, **{w.TOKEN: "SYNCHRO1-BAD-TOKEN"})
    next_step(shell)
    click(shell, wizard(shell).window, w.FINISH)
    assert "jeton de connexion invalide" in text_of(wizard(shell).window, w.MESSAGE)
    assert backend.saved == []
    fill(shell, **{w.TOKEN: "SYNCHRO1-GOOD-TOKEN"})
    click(shell, wizard(shell).window, w.FINISH)
    assert backend.saved[-1].site_settings.secret == "s3cret"


BAD_STEPS = [
    (0, {w.PASSWORD: "abc", w.CONFIRM: "abc"}, "Mot de passe : au moins 4 caractères"),
    (0, {w.PASSWORD: "abcdef", w.CONFIRM: "abcdeg"}, "Confirmation : les deux mots de passe"),
    (1, {w.SITE_CODE: ""}, "Code établissement :"),
    (1, {w.SITE_CODE: "36 15"}, "Code établissement :"),
    (1, {w.SITE_CODE: "3615", w.FIRST_SYNC: "31/02/2005"}, "Date de première synchronisation :"),
    (1, {w.SITE_CODE: "3615", w.FIRST_SYNC: ""}, "Date de première synchronisation :"),
    (2, {w.SQLITE_PATH: ""}, "Base de données : obligatoire"),
    (3, {w.TOKEN: ""}, "Jeton de connexion ou adresse du siège :"),
    (3, {w.TOKEN: "siège principal"}, "Jeton de connexion ou adresse du siège :"),
    (3, {w.TOKEN: "siege.fr:0"}, "Jeton de connexion ou adresse du siège :"),
]


def test_wizard_bad_input_names_the_field_and_stays(shell: GuiShell, backend: FakeBackend) -> None:
    good = {
        w.PASSWORD: "ADMIN",
        w.CONFIRM: "ADMIN",
        w.SITE_CODE: "3615",
        w.FIRST_SYNC: "06/12/2005 00:00:00",
        w.SQLITE_PATH: "synchro.db",
        w.TOKEN: "siege.fr",
    }
    fill(shell, **good)
    controller = wizard(shell)
    for step, values, message in BAD_STEPS:
        controller.go(step)
        fill(shell, **values)
        next_step(shell)
        shown = text_of(controller.window, w.MESSAGE)
        assert shown.startswith(message), (step, values, shown)
        assert controller.step == step and backend.saved == []
        fill(shell, **good)
    controller.go(4)
    click(shell, controller.window, w.FINISH)
    assert backend.saved[-1].site_settings.hq_address == "siege.fr"


def test_wizard_siege_bad_port_and_email_without_account(
    shell: GuiShell, backend: FakeBackend
) -> None:
    click(shell, wizard(shell).window, w.MODE_HQ)
    fill(shell, **{w.SITE_CODE: "0001", w.FTP_PORT: "port", w.SERVERS: "0"})
    for _ in range(4):
        next_step(shell)
    message = text_of(wizard(shell).window, w.MESSAGE)
    assert "Port FTP : un nombre entier de 1 à 65535" in message
    assert "Nombre de serveurs : un nombre entier de 1 à 999" in message
    fill(shell, **{w.FTP_PORT: "21", w.SERVERS: "2"})
    next_step(shell)
    fill(shell, **{w.SEND_EMAIL: True})
    click(shell, wizard(shell).window, w.FINISH)
    assert text_of(wizard(shell).window, w.MESSAGE).startswith("Envoi d'un email :")
    assert backend.saved == []


def test_wizard_database_test_failure_shows_the_reason(
    shell: GuiShell, backend: FakeBackend
) -> None:
    backend.tables = DatabaseError("fichier introuvable : /nulle/part.db")
    window = wizard(shell).window
    fill(shell, **{w.SQLITE_PATH: "/nulle/part.db"})
    click(shell, window, w.DB_TEST)
    wait_for(shell, lambda: "introuvable" in text_of(window, w.DB_RESULT))
    assert text_of(window, w.DB_RESULT) == "Echec du test : fichier introuvable : /nulle/part.db"


def test_wizard_switches_to_english_keeping_what_was_typed(
    shell: GuiShell, backend: FakeBackend
) -> None:
    window = wizard(shell).window
    fill(shell, **{w.SITE_CODE: "3615"})
    window[w.LANGUAGE].update("English")
    window.write_event_value(w.LANGUAGE, "English")
    shell.step(300)
    settle(shell)
    window = wizard(shell).window
    assert window.TKroot.title() == "Synchronisation — first setup"
    assert window[w.SITE_CODE].get() == "3615"
    assert window[w.NEXT].ButtonText == "Next >"
    for _ in range(4):
        next_step(shell)
    fill(shell, **{w.TOKEN: "hq.example.com"})
    for _ in range(2):
        next_step(shell)
    click(shell, wizard(shell).window, w.FINISH)
    assert backend.saved[-1].language == "en"


def test_wizard_cancel_quits(shell: GuiShell, backend: FakeBackend) -> None:
    click(shell, wizard(shell).window, w.CANCEL)
    assert shell.quitting and backend.saved == []


def test_wizard_opens_in_english_on_an_english_system(
    xvfb: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LC_ALL", "en_GB.UTF-8")
    backend = FakeBackend(tmp_path, Config(), setup=True)
    shell = GuiShell(backend, tray=FakeTray(), opener=lambda p: None)
    shell.start()
    try:
        window = wizard(shell).window
        assert window.TKroot.title() == "Synchronisation — first setup"
        assert window[w.LANGUAGE].get() == "English"
    finally:
        shell.quit()
