"""The first-run wizard: five steps, then save and go to the tray.

1. admin password (ADMIN offered, change advised) and language;
2. mode (Siège / Serveur), site code, first synchronisation date (today by default);
3. database: the embedded SQLite file or an ODBC source (driver from ``pyodbc.drivers()``,
   DSN or connection string), with Test listing the tables found;
4. Serveur: the connection token given by the Siège (or its address);
   Siège: the FTP port and the number of servers;
5. email, optional (the Email dialog).

Suivant checks the current step; Terminer checks everything, saves through the backend and
hands over to the tray. Nothing is saved before Terminer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import Config, EmailSettings, Role, SiteSettings
from synchro.config.passwords import DEFAULT_PASSWORD, hash_password
from synchro.gui.base import KEY_ENTER, KEY_ESCAPE, Controller, Shell, Values, mark_problems
from synchro.gui.fields import Form, FormError
from synchro.gui.ports import Probe
from synchro.gui.windows.general_layout import language_code
from synchro.gui.windows.wizard_layout import (
    CANCEL,
    CONFIRM,
    DB_RESULT,
    DB_SQLITE,
    DB_TEST,
    DRIVER,
    DSN,
    EMAIL,
    EMAIL_STATE,
    FINISH,
    FIRST_SYNC,
    FTP_PORT,
    HQ_PANEL,
    INPUTS,
    LANGUAGE,
    MODE_HQ,
    MODE_SITE,
    NEXT,
    PASSWORD,
    PREV,
    SEND_EMAIL,
    SERVERS,
    SITE_CODE,
    SITE_PANEL,
    SQLITE_BROWSE,
    SQLITE_PATH,
    STEPS,
    TABLES,
    TOKEN,
    TOKEN_PREFIX,
    email_state,
    make_wizard_window,
    odbc_drivers,
    show_step,
)
from synchro.i18n import tr


def connection_string(values: Values) -> str:
    """The database setting: the SQLite path, or an ODBC DSN / connection string."""
    if values[DB_SQLITE]:
        return str(values[SQLITE_PATH]).strip()
    text = str(values[DSN]).strip()
    driver = str(values[DRIVER]).strip()
    if text and "=" not in text:
        return f"DSN={text}"
    if driver and "driver=" not in text.lower():
        return f"DRIVER={{{driver}}};{text}".rstrip(";")
    return text


class WizardController(Controller):
    def __init__(self, window: sg.Window, shell: Shell, lang: str | None = None) -> None:
        super().__init__(window, shell)
        self.step = 0
        self.email = shell.backend.config().email
        self.wizard_lang = lang or shell.lang

    @property
    def lang(self) -> str:
        return self.wizard_lang

    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CANCEL, KEY_ESCAPE):
            self.close()
            self.shell.quit()  # no configuration: nothing to run
        elif values is None:
            return
        elif event in (MODE_HQ, MODE_SITE):
            self.window[SITE_PANEL].update(visible=bool(values[MODE_SITE]))
            self.window[HQ_PANEL].update(visible=bool(values[MODE_HQ]))
        elif event == LANGUAGE:
            self.relabel(language_code(str(values[LANGUAGE]), self.lang), values)
        elif event == PREV:
            self.go(self.step - 1)
        elif event == NEXT or (event == KEY_ENTER and self.step < STEPS - 1):
            if self.check_step(values, self.step):
                self.go(self.step + 1)
        elif event in (FINISH, KEY_ENTER):
            self.finish(values)
        elif event == DB_TEST:
            self.test_database(values)
        elif event == DB_RESULT:
            result: Probe = values[event]
            self.window[DB_RESULT].update(
                result.text, text_color="#1b5e20" if result.ok else "#b00020"
            )
            self.window[TABLES].update(values=list(result.items))
        elif event == EMAIL:
            self.shell.open_email(self.email, self.keep_email, self.lang)

    def go(self, step: int) -> None:
        self.step = max(0, min(STEPS - 1, step))
        show_step(self.window, self.step, self.lang)
        self.message("")

    def relabel(self, lang: str, values: Values) -> None:
        """Rebuild the window in another language, keeping what was typed."""
        if lang == self.wizard_lang:
            return
        self.wizard_lang = lang
        old = self.window
        location = old.current_location()
        self.window = make_wizard_window(self.backend.config(), odbc_drivers(self.backend), lang)
        for key, value in values.items():
            if key in (LANGUAGE, SQLITE_BROWSE, TABLES) or key not in self.window.AllKeysDict:
                continue
            element = self.window[key]
            if isinstance(element, sg.Input | sg.Checkbox | sg.Radio | sg.Combo):
                element.update(value=value)
        self.window[SITE_PANEL].update(visible=bool(values[MODE_SITE]))
        self.window[HQ_PANEL].update(visible=bool(values[MODE_HQ]))
        step, self.step = self.step, 0
        self.go(step)
        if location and location[0] is not None:
            self.window.move(*location)
        old.close()

    def read(self, values: Values, steps: range) -> Config:
        """The configuration from steps ``steps``; FormError names each bad field."""
        form = Form(self.lang)
        base = self.backend.config()
        password = str(values[PASSWORD])
        site_code, first_sync, connection = base.site, base.last_sync, base.database.connection
        hq = bool(values[MODE_HQ])
        hq_settings, site_settings = base.hq, base.site_settings
        if 0 in steps:
            if len(password) < 4:
                form.bad(PASSWORD, "gui.wizard.password", "gui.expect.password")
            elif password != str(values[CONFIRM]):
                form.bad(CONFIRM, "gui.wizard.confirm", "gui.expect.same_password")
        if 1 in steps:
            site_code = form.site_code(SITE_CODE, "gui.wizard.site_code", values[SITE_CODE])
            first_sync = form.datetime(
                FIRST_SYNC, "gui.wizard.first_sync", values[FIRST_SYNC], required=True
            )
        if 2 in steps:
            connection = connection_string(values)
            if not connection:
                key = SQLITE_PATH if values[DB_SQLITE] else DSN
                form.bad(key, "gui.wizard.database", "gui.expect.not_empty")
        if 3 in steps:
            if hq:
                hq_settings = dataclasses.replace(
                    base.hq,
                    port=form.integer(FTP_PORT, "gui.wizard.ftp_port", values[FTP_PORT], 1, 65535),
                    servers=form.integer(SERVERS, "gui.hq.servers", values[SERVERS], 1, 999),
                )
            else:
                site_settings = self.read_address(form, str(values[TOKEN]).strip(), base)
        if 4 in steps and values[SEND_EMAIL] and not self.email.recipients:
            form.bad(SEND_EMAIL, "gui.general.send_email", "gui.expect.email_needed")
        mark_problems(self.window, [p.key for p in form.problems], INPUTS)
        form.check()
        return dataclasses.replace(
            base,
            role=Role.HQ if hq else Role.SITE,
            site=site_code,
            language=self.lang,
            last_sync=first_sync,
            send_email=bool(values[SEND_EMAIL]),
            database=dataclasses.replace(base.database, connection=connection),
            hq=hq_settings,
            site_settings=site_settings,
            email=self.email,
        )

    def read_address(self, form: Form, text: str, base: Config) -> SiteSettings:
        """Serveur: an address (host or host:port) now; a token is applied at Terminer."""
        if text.upper().startswith(TOKEN_PREFIX):
            return base.site_settings
        if not text:
            form.bad(TOKEN, "gui.wizard.token", "gui.expect.token")
            return base.site_settings
        host, port = form.address(TOKEN, "gui.wizard.token", text, 21)
        return dataclasses.replace(base.site_settings, hq_address=host, hq_port=port)

    def check_step(self, values: Values, step: int) -> bool:
        try:
            self.read(values, range(step, step + 1))
        except FormError as exc:
            self.message(str(exc))
            return False
        return True

    def finish(self, values: Values) -> None:
        try:
            config = self.read(values, range(STEPS))
        except FormError as exc:
            self.message(str(exc))
            return
        password = str(values[PASSWORD])
        config = dataclasses.replace(
            config,
            admin_password_hash="" if password == DEFAULT_PASSWORD else hash_password(password),
        )
        token = str(values[TOKEN]).strip()
        if not config.is_hq and token.upper().startswith(TOKEN_PREFIX):
            config = self.backend.apply_connection_token(config, token)
        self.backend.save_config(config)
        self.close()
        self.shell.after_setup()

    def test_database(self, values: Values) -> None:
        connection = connection_string(values)
        if not connection:
            self.window[DB_RESULT].update(
                tr(
                    "gui.field.problem",
                    self.lang,
                    field=tr("gui.wizard.database", self.lang),
                    expected=tr("gui.expect.not_empty", self.lang),
                ),
                text_color="#b00020",
            )
            return
        self.window[DB_RESULT].update(tr("gui.msg.testing", self.lang), text_color="black")
        backend, lang = self.backend, self.lang

        def work() -> Probe:
            tables = backend.list_tables(connection)
            return Probe(True, tr("gui.wizard.n_tables", lang, n=len(tables)), tuple(tables))

        self.probe(DB_RESULT, work)

    def keep_email(self, settings: EmailSettings) -> str:
        self.email = settings
        self.window[EMAIL_STATE].update(email_state(settings, self.lang))
        if settings.recipients:
            self.window[SEND_EMAIL].update(value=True)
        return email_state(settings, self.lang)
