"""Login and General window, driven through real Tk widgets under Xvfb.

Assertions are on what the backend saved or was asked, and on what the windows show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from gui_fake import (
    FakeBackend,
    FakeTray,
    click,
    kinds,
    only,
    press,
    settle,
    text_of,
    wait_for,
)
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.config.model import Config, EmailSettings, Role, SiteSettings
from synchro.config.passwords import LoginGuard, hash_password, verify_password
from synchro.errors import ConnectionTestError, PlatformError
from synchro.gui.ports import STATE_OK
from synchro.gui.shell import GuiShell
from synchro.gui.tray import Command
from synchro.gui.windows import general_layout as g
from synchro.gui.windows import login
from synchro.gui.windows import password as pw
from synchro.gui.windows.general import GeneralController
from synchro.gui.windows.login import LoginController
from synchro.gui.windows.password import PasswordController
from synchro.platform.autostart import XdgAutostart
from synchro.transport.ftp_client import login_check

NOW = dt.datetime(2026, 11, 18, 17, 39, 2)
pytestmark = pytest.mark.gui


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shell(xvfb: str, backend: FakeBackend, clock: Clock) -> Iterator[GuiShell]:
    opened: list[Path] = []
    shell = GuiShell(
        backend,
        tray=FakeTray(),
        opener=opened.append,
        guard=LoginGuard(now=clock),
        clock=lambda: NOW,
    )
    shell.start()
    yield shell
    shell.quit()


def log_in(shell: GuiShell, password: str = "ADMIN") -> None:
    shell.commands.put(Command.SETTINGS)
    settle(shell)
    window = only(shell, LoginController).window
    window[login.PASSWORD].update(password)
    click(shell, window, login.OK)


def general(shell: GuiShell) -> GeneralController:
    return only(shell, GeneralController)


# ----- login ------------------------------------------------------------------------------


def test_tray_default_action_asks_the_password_then_opens_general(shell: GuiShell) -> None:
    assert kinds(shell) == []  # starts minimised in the tray
    assert shell.tray.started  # type: ignore[attr-defined]
    log_in(shell, "wrong")
    window = only(shell, LoginController).window
    assert text_of(window, login.MESSAGE) == "Mot de passe incorrect."
    assert kinds(shell) == ["LoginController"]  # nothing else opened
    assert window[login.PASSWORD].get() == ""
    window[login.PASSWORD].update("ADMIN")
    click(shell, window, login.OK)
    assert kinds(shell) == ["GeneralController"]
    status = text_of(general(shell).window, g.STATUS)
    assert "11/18 17:39:02 : Démarrage en mode siège." in status
    assert "ADMIN" in status  # default password: change advised


def test_enter_validates_and_escape_cancels_the_login(shell: GuiShell) -> None:
    shell.commands.put(Command.SETTINGS)
    settle(shell)
    window = only(shell, LoginController).window
    press(shell, window, "Escape", login.PASSWORD)
    assert kinds(shell) == []
    shell.commands.put(Command.SETTINGS)
    settle(shell)
    window = only(shell, LoginController).window
    window[login.PASSWORD].update("ADMIN")
    press(shell, window, "Return", login.PASSWORD)
    assert kinds(shell) == ["GeneralController"]


def test_repeated_failures_slow_down_further_attempts(shell: GuiShell, clock: Clock) -> None:
    log_in(shell, "x1")
    window = only(shell, LoginController).window
    for attempt in ("x2", "ADMIN"):  # after two failures the right password must wait too
        window[login.PASSWORD].update(attempt)
        click(shell, window, login.OK)
    assert "réessayez dans 1 s" in text_of(window, login.MESSAGE)
    assert kinds(shell) == ["LoginController"]
    clock.t += 1.5
    click(shell, window, login.OK)
    assert kinds(shell) == ["GeneralController"]


def test_a_changed_password_replaces_admin(shell: GuiShell, backend: FakeBackend) -> None:
    backend._config = dataclasses.replace(
        backend._config, admin_password_hash=hash_password("s3cr3t!")
    )
    log_in(shell, "ADMIN")
    assert kinds(shell) == ["LoginController"]
    window = only(shell, LoginController).window
    window[login.PASSWORD].update("s3cr3t!")
    click(shell, window, login.OK)
    assert kinds(shell) == ["GeneralController"]


# ----- general window -----------------------------------------------------------------------


def test_general_shows_the_manual_fields_and_only_the_current_mode_panel(shell: GuiShell) -> None:
    shell.open_general()
    window = general(shell).window
    assert window.TKroot.title() == "Synchronisation — Siège (3615)"
    assert window[g.HQ].get() is True
    assert window[g.LAST_SYNC].get() == "06/12/2005 23:00:00"
    assert window[g.START_TIME].get() == "23:00"
    assert window[g.SERVERS].get() == "1"
    assert window[g.MAX_RECEPTION].get() == "04:00:00"
    labels = {
        window[k].ButtonText for k in (g.CLOSE, g.REPORT, g.EMAIL, g.STOP, g.MANUAL, g.RAZ, g.APPLY)
    }
    assert labels == {"Fermer", "Rapport", "Email", "Arrêter", "Manuelle", "RAZ", "Valider"}
    assert window[g.HQ_FRAME].visible and not window[g.SITE_FRAME].visible
    click(shell, window, g.HQ)  # untick Siège: the Mode serveur panel replaces Mode siège
    assert not window[g.HQ_FRAME].visible and window[g.SITE_FRAME].visible
    assert window[g.ATTEMPTS].get() == "10" and window[g.RETRY_DELAY].get() == "10"


def test_valider_saves_every_field(shell: GuiShell, backend: FakeBackend) -> None:
    backend._config = dataclasses.replace(
        backend._config, email=EmailSettings(recipients=("a@b.fr",), server="smtp.b.fr")
    )
    shell.open_general()
    window = general(shell).window
    window[g.LAST_SYNC].update("07/12/2005 23:00:00")
    window[g.START_TIME].update("22:30")
    window[g.SERVERS].update("3")
    window[g.MAX_RECEPTION].update("05:30:00")
    window[g.SEND_EMAIL].update(True)
    window[g.AUTOSTART].update(True)
    click(shell, window, g.APPLY)
    saved = backend.saved[-1]
    assert saved.role is Role.HQ
    assert saved.last_sync == dt.datetime(2005, 12, 7, 23, 0, 0)
    assert saved.start_time == dt.time(22, 30)
    assert saved.hq.servers == 3
    assert saved.hq.max_reception == dt.timedelta(hours=5, minutes=30)
    assert saved.send_email and saved.start_with_windows
    assert text_of(window, g.MESSAGE) == "Paramètres enregistrés."


def test_valider_in_mode_serveur_saves_the_serveur_panel(
    shell: GuiShell, backend: FakeBackend
) -> None:
    shell.open_general()
    window = general(shell).window
    click(shell, window, g.HQ)
    window[g.ATTEMPTS].update("5")
    window[g.RETRY_DELAY].update("15")
    window[g.HQ_ADDRESS].update("www.heizsystem.com:2121")
    window[g.AUTO_SYNC].update(False)
    press(shell, window, "Return", g.ATTEMPTS)  # ENTER validates
    saved = backend.saved[-1]
    assert saved.role is Role.SITE
    site = saved.site_settings
    assert (site.attempts, site.retry_delay, site.hq_address, site.hq_port, site.auto_sync) == (
        5,
        dt.timedelta(minutes=15),
        "www.heizsystem.com",
        2121,
        False,
    )


BAD_FIELDS = [
    (g.LAST_SYNC, "31/02/2005 10:00:00", "Dernière synchronisation", "JJ/MM/AAAA"),
    (g.LAST_SYNC, "demain", "Dernière synchronisation", "JJ/MM/AAAA"),
    (g.START_TIME, "25:00", "Heure de départ", "HH:MM"),
    (g.START_TIME, "", "Heure de départ", "HH:MM"),
    (g.SERVERS, "abc", "Nombre de serveurs", "nombre entier de 1 à 999"),
    (g.SERVERS, "0", "Nombre de serveurs", "nombre entier de 1 à 999"),
    (g.MAX_RECEPTION, "4h", "Temps maximum de réception", "HH:MM:SS"),
    (g.MAX_RECEPTION, "00:00:00", "Temps maximum de réception", "HH:MM:SS"),
    (g.ATTEMPTS, "dix", "Nombre de tentatives", "nombre entier de 1 à 1000"),
    (g.RETRY_DELAY, "-1", "Temps entre tentatives (min)", "nombre entier de 0 à 1440"),
    (g.HQ_ADDRESS, "", "Adresse du siège", "adresse IP ou un nom de serveur"),
    (g.HQ_ADDRESS, "mauvais nom!", "Adresse du siège", "adresse IP ou un nom de serveur"),
    (g.HQ_ADDRESS, "siege.fr:99999", "Adresse du siège", "nombre entier de 1 à 65535"),
]


@pytest.mark.parametrize("role", [Role.HQ, Role.SITE])
def test_bad_input_names_the_field_and_saves_nothing(
    shell: GuiShell, backend: FakeBackend, role: Role
) -> None:
    backend._config = dataclasses.replace(
        backend._config, role=role, site_settings=SiteSettings(hq_address="192.168.0.24")
    )
    shell.open_general()
    window = general(shell).window
    panel = {
        Role.HQ: (g.SERVERS, g.MAX_RECEPTION),
        Role.SITE: (g.ATTEMPTS, g.RETRY_DELAY, g.HQ_ADDRESS),
    }
    cases = [c for c in BAD_FIELDS if c[0] in (g.LAST_SYNC, g.START_TIME, *panel[role])]
    for key, value, field, expected in cases:
        good = window[key].get()
        window[key].update(value)
        click(shell, window, g.APPLY)
        message = text_of(window, g.MESSAGE)
        assert message.startswith(f"{field} :") and expected in message, (key, value, message)
        assert "Traceback" not in message
        assert backend.saved == [], (key, value)
        window[key].update(good)
    click(shell, window, g.APPLY)  # all good again: saved
    assert len(backend.saved) == 1


def test_email_on_without_an_email_account_is_refused(
    shell: GuiShell, backend: FakeBackend
) -> None:
    shell.open_general()
    window = general(shell).window
    window[g.SEND_EMAIL].update(True)
    click(shell, window, g.APPLY)
    assert text_of(window, g.MESSAGE).startswith("Envoi d'un email :")
    assert backend.saved == []


def test_escape_closes_without_saving(shell: GuiShell, backend: FakeBackend) -> None:
    shell.open_general()
    window = general(shell).window
    window[g.START_TIME].update("01:00")
    press(shell, window, "Escape", g.START_TIME)
    assert kinds(shell) == [] and backend.saved == []


def test_fermer_goes_back_to_the_tray_and_the_cross_quits(shell: GuiShell) -> None:
    shell.open_general()
    click(shell, general(shell).window, g.CLOSE)
    assert kinds(shell) == [] and not shell.quitting
    shell.open_general()
    window = general(shell).window
    window.TKroot.after(0, window._OnClosingCallback)  # what Tk runs for the title bar's cross
    shell.step(400)
    assert shell.quitting
    assert shell.tray.stopped  # type: ignore[attr-defined]


def test_run_stop_raz_follow_the_run_state(shell: GuiShell, backend: FakeBackend) -> None:
    shell.open_general()
    window = general(shell).window
    assert window[g.STOP].Widget["state"] == "disabled"
    click(shell, window, g.STOP)  # disabled: nothing asked
    assert "stop" not in backend.calls
    click(shell, window, g.MANUAL)
    assert backend.calls == ["run_now"]
    assert "Synchronisation manuelle demandée." in text_of(window, g.STATUS)
    assert window[g.STOP].Widget["state"] == "normal"
    assert window[g.MANUAL].Widget["state"] == "disabled"
    window[g.START_TIME].update("21:00")
    click(shell, window, g.APPLY)  # VALIDER during a run: refused with the reason
    assert "Une synchronisation est en cours" in text_of(window, g.MESSAGE)
    assert backend.saved == []
    click(shell, window, g.RAZ)
    click(shell, window, g.STOP)
    assert backend.calls == ["run_now", "raz", "stop"]
    backend.finish_run(STATE_OK)
    settle(shell)
    assert window[g.STOP].Widget["state"] == "disabled"
    assert window[g.MANUAL].Widget["state"] == "normal"


def test_progress_and_status_messages_show_live(shell: GuiShell, backend: FakeBackend) -> None:
    shell.open_general()
    window = general(shell).window
    backend.start_run()
    backend.progress(12345, 1_250_000, "3615 : envoi", 0.5)
    backend.say("Réception de 3615.")
    settle(shell)
    assert text_of(window, g.PROGRESS_TEXT) == "12\u202f345 lignes · 1,2 Mo · 3615 : envoi"
    assert "12/06 15:15:11 : Réception de 3615." in text_of(window, g.STATUS)
    assert shell.tray.shown[-1][0].value == "running"  # type: ignore[attr-defined]


def test_test_button_shows_the_exact_reason(shell: GuiShell, backend: FakeBackend) -> None:
    backend._config = dataclasses.replace(
        backend._config, role=Role.SITE, site_settings=SiteSettings(hq_address="192.168.0.24")
    )
    shell.open_general()
    window = general(shell).window
    click(shell, window, g.TEST)
    wait_for(shell, lambda: text_of(window, g.TEST_RESULT) == "Connexion réussie.")
    backend.connection_result = ConnectionTestError(
        "refused", "connexion refusée par 192.168.0.24:21"
    )
    click(shell, window, g.TEST)
    wait_for(shell, lambda: "refusée" in text_of(window, g.TEST_RESULT))
    assert text_of(window, g.TEST_RESULT) == "Echec du test : connexion refusée par 192.168.0.24:21"
    assert window[g.TEST_RESULT].Widget.cget("foreground") == "#b00020"
    backend.connection_result = "Connexion réussie.\nclients.nom : trop courte"
    backend.connection_ok = False  # logged in, but the schema check found a problem: red
    click(shell, window, g.TEST)
    wait_for(shell, lambda: "trop courte" in text_of(window, g.TEST_RESULT))
    assert window[g.TEST_RESULT].Widget.cget("foreground") == "#b00020"
    backend.connection_ok = True
    backend.connection_result = "Connexion réussie."
    click(shell, window, g.TEST)
    wait_for(shell, lambda: text_of(window, g.TEST_RESULT) == "Connexion réussie.")
    assert window[g.TEST_RESULT].Widget.cget("foreground") == "#1b5e20"
    assert backend.tested == ["192.168.0.24"] * 4


def test_language_switch_rebuilds_the_window_in_english(
    shell: GuiShell, backend: FakeBackend
) -> None:
    shell.open_general()
    window = general(shell).window
    window[g.LANGUAGE].update("English")
    click(shell, window, g.APPLY)
    assert backend.saved[-1].language == "en"
    window = general(shell).window
    assert window.TKroot.title() == "Synchronisation — Headquarters (3615)"
    assert window[g.APPLY].ButtonText == "Apply"
    assert shell.tray.langs == ["en"]  # type: ignore[attr-defined]
    assert "Establishment" not in shell.tray.shown[-1][1]  # type: ignore[attr-defined]
    assert shell.tray.shown[-1][1].startswith("Synchronisation Headquarters 3615")  # type: ignore[attr-defined]


def test_unexpected_errors_are_logged_and_shown_short(
    shell: GuiShell, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    backend.running = True  # RAZ enabled
    backend.raz = broken  # type: ignore[method-assign]
    shell.open_general()
    window = general(shell).window
    with caplog.at_level(logging.ERROR, logger="synchro.gui"):
        click(shell, window, g.RAZ)
    message = text_of(window, g.MESSAGE)
    assert message.startswith("Erreur inattendue (RuntimeError)") and "Traceback" not in message
    assert "boom" in caplog.text


def test_failure_notifies_and_sets_the_tray_icon(shell: GuiShell, backend: FakeBackend) -> None:
    backend.start_run()
    backend.finish_run("Echec", "3615 : siège injoignable")
    settle(shell)
    state, text = shell.tray.shown[-1]  # type: ignore[attr-defined]
    assert state.value == "failed" and len(text) <= 128
    assert shell.tray.notes == ["3615 : siège injoignable"]  # type: ignore[attr-defined]


def test_tray_menu_commands(shell: GuiShell, backend: FakeBackend) -> None:
    shell.commands.put(Command.RUN)
    settle(shell)
    assert backend.calls == ["run_now"]
    shell.commands.put(Command.STOP)
    shell.commands.put(Command.REPORT)
    shell.commands.put(Command.LOG)
    settle(shell)
    assert backend.calls == ["run_now", "stop"]
    assert kinds(shell) == ["RapportController"]  # the Rapport needs no password
    assert shell.opener.__self__ == [backend.log]  # type: ignore[attr-defined]
    shell.commands.put(Command.QUIT)
    assert not shell.step(10)


def test_config_is_unchanged_by_a_config_object_from_another_mode(backend: FakeBackend) -> None:
    # guard for the fake itself: saving keeps what the GUI does not show
    config = Config(role=Role.SITE, site="3615", group_key="k")
    backend.save_config(config)
    assert backend.config().group_key == "k"


def test_password_dialog_changes_the_admin_password(shell: GuiShell, backend: FakeBackend) -> None:
    shell.open_general()
    settle(shell)
    click(shell, general(shell).window, g.PASSWORD)
    dialog = only(shell, PasswordController).window
    for new, confirm, expected in (
        ("abc", "abc", "Nouveau mot de passe : au moins 4 caractères"),
        ("secret1", "secret2", "Confirmation : les deux mots de passe doivent être identiques"),
    ):
        dialog[pw.NEW].update(new)
        dialog[pw.CONFIRM].update(confirm)
        click(shell, dialog, pw.OK)
        assert text_of(dialog, pw.MESSAGE) == expected
        assert backend.saved == []
    dialog[pw.CONFIRM].update("secret1")
    dialog[pw.NEW].update("secret1")
    press(shell, dialog, "Return", pw.CONFIRM)
    assert kinds(shell) == ["GeneralController"]
    assert verify_password("secret1", backend.saved[-1].admin_password_hash)
    assert "Mot de passe de l'administrateur enregistré." in text_of(
        general(shell).window, g.STATUS
    )


def test_run_returns_when_quitter_is_chosen(xvfb: str, backend: FakeBackend) -> None:
    tray = FakeTray()
    shell = GuiShell(backend, tray=tray, opener=lambda p: None)
    shell.commands.put(Command.QUIT)
    shell.run(timeout_ms=10)
    assert tray.started and tray.stopped


def test_general_opened_during_a_run_shows_its_progress(
    shell: GuiShell, backend: FakeBackend
) -> None:
    backend.start_run()
    backend.progress(500, 2048, "3615 : réception")
    settle(shell)
    shell.open_general()
    window = general(shell).window
    assert text_of(window, g.PROGRESS_TEXT) == "500 lignes · 2,0 Ko · 3615 : réception"
    assert window[g.STOP].Widget["state"] == "normal"


def test_test_result_of_several_lines_is_shown_whole(shell: GuiShell, backend: FakeBackend) -> None:
    """Test gives the connection then the schema check, one finding a line: the field
    shows several lines and scrolls to the rest, nothing cut."""
    backend._config = dataclasses.replace(
        backend._config, role=Role.SITE, site_settings=SiteSettings(hq_address="192.168.0.24")
    )
    lines = ["Connexion réussie."] + [
        f"table clients{n}, colonne nom_de_famille_du_client : trop courte ici, "
        f"VARCHAR(20) ici, VARCHAR(120) au siège"
        for n in range(8)
    ]
    backend.connection_result = "\n".join(lines)
    shell.open_general()
    window = general(shell).window
    click(shell, window, g.TEST)
    wait_for(shell, lambda: text_of(window, g.TEST_RESULT).startswith("Connexion"))
    assert text_of(window, g.TEST_RESULT) == "\n".join(lines)
    widget = window[g.TEST_RESULT].Widget
    assert int(widget.cget("height")) >= 5
    assert str(widget.cget("wrap")) != "none"  # long lines wrap, not cut at the edge
    assert window[g.TEST_RESULT].vsb is not None  # the rest is reachable by scrolling


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("fr", "Echec du test : Le siège 127.0.0.1:{port} refuse la connexion"),
        ("en", "The HQ 127.0.0.1:{port} refuses the connection: nothing listens on that port"),
    ],
)
def test_test_button_says_a_refusal_in_the_ui_language(
    lang: str, words: str, shell: GuiShell, backend: FakeBackend
) -> None:
    """A real refusal (nothing listens on the port) as the client says it, shown in the
    language of the window (its words were French in the English UI)."""
    with socket.socket() as s:  # a port of this machine nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionTestError) as refused:
        login_check("127.0.0.1", port, "3615", "secret", "", allow_plain=True, timeout=5)
    backend._config = dataclasses.replace(
        backend._config,
        role=Role.SITE,
        language=lang,
        site_settings=SiteSettings(hq_address="127.0.0.1"),
    )
    backend.connection_result = refused.value
    shell.open_general()
    window = general(shell).window
    click(shell, window, g.TEST)
    wait_for(shell, lambda: str(port) in text_of(window, g.TEST_RESULT))
    assert words.format(port=port) in text_of(window, g.TEST_RESULT)


@pytest.mark.parametrize(
    ("lang", "words"),
    [("fr", "Impossible d'écrire {path} : "), ("en", "Cannot write {path}: ")],
)
def test_validate_says_a_failure_in_the_ui_language(
    lang: str, words: str, shell: GuiShell, backend: FakeBackend, tmp_path: Path
) -> None:
    """VALIDER meets a real failure (the autostart folder is a file): the window's message
    line says it in the window's language (it was always French)."""
    blocked = tmp_path / "autostart"
    blocked.write_text("un fichier")
    with pytest.raises(PlatformError) as failed:
        XdgAutostart(blocked).enable(["/usr/bin/synchro"])
    backend._config = dataclasses.replace(backend._config, language=lang)
    backend.save_error = failed.value
    shell.open_general()
    window = general(shell).window
    click(shell, window, g.APPLY)
    shown = text_of(window, g.MESSAGE)
    assert shown.startswith(words.format(path=blocked / "synchro.desktop")), shown
