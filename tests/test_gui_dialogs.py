"""Rapport window, report detail and Email dialog under Xvfb."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require
from gui_fake import (
    FakeBackend,
    click,
    kinds,
    manual_rows,
    only,
    press,
    settle,
    started_shell,
    text_of,
    wait_for,
)
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.config.model import EmailSettings, MailSecurity
from synchro.errors import MailError
from synchro.gui.ports import STATE_OK
from synchro.gui.shell import GuiShell
from synchro.gui.windows import email as e
from synchro.gui.windows import general_layout as g
from synchro.gui.windows import rapport as r
from synchro.gui.windows.email import EmailController
from synchro.gui.windows.general import GeneralController
from synchro.gui.windows.rapport import DetailController, RapportController

pytestmark = pytest.mark.gui


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    backend = FakeBackend(tmp_path)
    backend.rows = manual_rows()
    return backend


@pytest.fixture
def shell(xvfb: str, backend: FakeBackend) -> Iterator[GuiShell]:
    with started_shell(backend) as shell:
        yield shell


def rapport(shell: GuiShell) -> RapportController:
    shell.open_rapport()
    settle(shell)
    return only(shell, RapportController)


# ----- Rapport ------------------------------------------------------------------------------


def test_rapport_lists_the_manual_columns_newest_first(shell: GuiShell) -> None:
    window = rapport(shell).window
    table = window[r.TABLE]
    assert table.ColumnHeadings[:4] == ["Etablissement", "Début", "Fin", "Etat"]
    assert table.ColumnHeadings[4:] == ["Lignes", "Erreurs"]
    assert [row[:4] for row in table.Values] == [
        ["3615", "06/12/2005 15:15:11", "", "En cours..."],
        ["3615", "06/12/2005 09:25:44", "06/12/2005 10:18:27", "OK"],
        ["3615", "06/12/2005 09:20:07", "06/12/2005 09:21:28", "Arrêt"],
        ["3615", "05/12/2005 23:00:00", "06/12/2005 03:02:14", "Echec"],
    ]
    assert table.Values[1][4] == "12345" and table.Values[3][5] == "1"


def test_rapport_updates_live_from_en_cours_to_ok(shell: GuiShell, backend: FakeBackend) -> None:
    backend.rows = []
    window = rapport(shell).window
    assert window[r.TABLE].Values == []
    backend.start_run()
    settle(shell)
    assert [row[3] for row in window[r.TABLE].Values] == ["En cours..."]
    backend.finish_run(STATE_OK)
    settle(shell)
    assert [row[3] for row in window[r.TABLE].Values] == ["OK"]
    assert window[r.TABLE].Values[0][4] == "42"


def test_double_click_opens_the_detail(shell: GuiShell) -> None:
    if shutil.which("xdotool") is None:
        require("xdotool is not installed")
    window = rapport(shell).window
    tree = window[r.TABLE].Widget
    item = tree.get_children()[3]
    x, y, _, _ = tree.bbox(item)
    shell.step(10)
    subprocess.run(
        [
            "xdotool",
            "mousemove",
            str(tree.winfo_rootx() + x + 20),
            str(tree.winfo_rooty() + y + 5),
            "click",
            "--repeat",
            "2",
            "--delay",
            "60",
            "1",
        ],
        check=True,
    )
    wait_for(shell, lambda: "DetailController" in kinds(shell))
    detail = only(shell, DetailController).window
    text = text_of(detail, r.DETAIL_TEXT)
    assert "Etat : Echec" in text and "détail 1" in text and "NOT NULL" in text
    press(shell, detail, "Escape", r.DETAIL_TEXT)
    assert kinds(shell) == ["RapportController"]


def test_detail_button_needs_a_selected_line(shell: GuiShell) -> None:
    window = rapport(shell).window
    click(shell, window, r.DETAIL)
    assert text_of(window, r.MESSAGE) == "Choisissez une ligne du rapport."
    window[r.TABLE].update(select_rows=[1])
    settle(shell)
    click(shell, window, r.DETAIL)
    detail = only(shell, DetailController).window
    assert "Etat : OK" in text_of(detail, r.DETAIL_TEXT)


def test_export_csv_goes_through_the_backend(
    shell: GuiShell, backend: FakeBackend, tmp_path: Path
) -> None:
    window = rapport(shell).window
    target = tmp_path / "rapport.csv"
    window.write_event_value(r.EXPORT_PATH, str(target))  # what the Save As dialog does
    window[r.EXPORT_PATH].update(str(target))
    shell.step(300)
    settle(shell)
    assert backend.exported == [(target, "fr")]
    assert text_of(window, r.MESSAGE) == f"Rapport exporté dans {target}"


def test_rapport_in_english_translates_the_states(shell: GuiShell, backend: FakeBackend) -> None:
    backend._config = dataclasses.replace(backend._config, language="en")
    window = rapport(shell).window
    assert window[r.TABLE].ColumnHeadings[:4] == ["Establishment", "Start", "End", "State"]
    assert [row[3] for row in window[r.TABLE].Values] == ["Running...", "OK", "Stopped", "Failed"]


# ----- Email ----------------------------------------------------------------------------------


def open_email(shell: GuiShell) -> EmailController:
    shell.open_general()
    settle(shell)
    click(shell, only(shell, GeneralController).window, g.EMAIL)
    return only(shell, EmailController)


def fill(window: object, **fields: str) -> None:
    keys = {
        "recipient": e.RECIPIENT,
        "sender": e.SENDER,
        "server": e.SERVER,
        "port": e.PORT,
        "login": e.LOGIN,
        "password": e.PASSWORD,
    }
    for name, value in fields.items():
        window[keys[name]].update(value)  # type: ignore[index]


GOOD = {
    "recipient": "chef@siege.fr, compta@siege.fr",
    "sender": "info@votreserveur.com",
    "server": "smtp.wanadoo.fr",
    "port": "465",
    "login": "info",
    "password": "pw",
}


def test_email_dialog_saves_the_five_fields_port_and_security(
    shell: GuiShell, backend: FakeBackend
) -> None:
    window = open_email(shell).window
    labels = [
        window[f"-LABEL{k}"].get() for k in (e.RECIPIENT, e.SENDER, e.SERVER, e.LOGIN, e.PASSWORD)
    ]
    assert labels == [
        "Adresse email du destinataire",
        "Votre adresse email",
        "Serveur de mail",
        "Nom de connexion",
        "Mot de passe",
    ]
    fill(window, **GOOD)
    window[e.SECURITY].update("SSL")
    press(shell, window, "Return", e.SENDER)  # ENTER = Ok
    assert kinds(shell) == ["GeneralController"]
    assert backend.saved[-1].email == EmailSettings(
        recipients=("chef@siege.fr", "compta@siege.fr"),
        sender="info@votreserveur.com",
        server="smtp.wanadoo.fr",
        port=465,
        security=MailSecurity.SSL,
        login="info",
        password="pw",
    )
    assert "Paramètres email enregistrés." in text_of(
        only(shell, GeneralController).window, g.STATUS
    )


BAD_EMAIL = [
    ("recipient", "", "Adresse email du destinataire"),
    ("recipient", "chef@siege.fr; pas-une-adresse", "Adresse email du destinataire"),
    ("sender", "info", "Votre adresse email"),
    ("server", "smtp wanadoo", "Serveur de mail"),
    ("port", "70000", "Port"),
    ("port", "abc", "Port"),
]


def test_email_bad_input_names_the_field(shell: GuiShell, backend: FakeBackend) -> None:
    window = open_email(shell).window
    for name, value, field in BAD_EMAIL:
        fill(window, **{**GOOD, name: value})
        click(shell, window, e.OK)
        message = text_of(window, e.MESSAGE)
        assert message.startswith(f"{field} :"), (name, value, message)
        assert backend.saved == [] and "EmailController" in kinds(shell)
    fill(window, **GOOD)
    click(shell, window, e.OK)
    assert len(backend.saved) == 1


def test_email_security_proposes_its_port_and_escape_cancels(
    shell: GuiShell, backend: FakeBackend
) -> None:
    window = open_email(shell).window
    window[e.SECURITY].update("Aucune")
    window.write_event_value(e.SECURITY, "Aucune")
    shell.step(300)
    assert window[e.PORT].get() == "25"
    press(shell, window, "Escape", e.SERVER)
    assert kinds(shell) == ["GeneralController"] and backend.saved == []


def test_email_test_button_sends_through_the_backend(shell: GuiShell, backend: FakeBackend) -> None:
    window = open_email(shell).window
    fill(window, **GOOD)
    click(shell, window, e.TEST)
    wait_for(shell, lambda: text_of(window, e.MESSAGE) == "Message de test envoyé.")
    sent = backend.tested[-1]
    assert isinstance(sent, EmailSettings) and sent.server == "smtp.wanadoo.fr"
    backend.mail_result = MailError("authentification refusée par smtp.wanadoo.fr")
    click(shell, window, e.TEST)
    wait_for(shell, lambda: "refusée" in text_of(window, e.MESSAGE))
    assert (
        text_of(window, e.MESSAGE) == "Echec du test : authentification refusée par smtp.wanadoo.fr"
    )
    assert backend.saved == []  # a test saves nothing


def test_email_save_refused_during_a_run_keeps_the_dialog(
    shell: GuiShell, backend: FakeBackend
) -> None:
    window = open_email(shell).window
    fill(window, **GOOD)
    backend.running = True
    click(shell, window, e.OK)
    assert "Refusé" in text_of(window, e.MESSAGE)
    assert "EmailController" in kinds(shell)
