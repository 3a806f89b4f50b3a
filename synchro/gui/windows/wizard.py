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
import datetime as dt
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import Config, EmailSettings, Role, SiteSettings
from synchro.config.passwords import DEFAULT_PASSWORD, hash_password
from synchro.gui.base import (
    KEY_ENTER,
    KEY_ESCAPE,
    TITLE_FONT,
    Controller,
    Shell,
    Values,
    bind_keys,
    mark_problems,
)
from synchro.gui.fields import Form, FormError, format_datetime
from synchro.gui.ports import GuiBackend, Probe
from synchro.gui.windows.general import language_code, language_names
from synchro.i18n import tr

LANGUAGE = "-LANGUAGE-"
PASSWORD = "-PASSWORD-"
CONFIRM = "-CONFIRM-"
MODE_HQ = "-MODE-HQ-"
MODE_SITE = "-MODE-SITE-"
SITE_CODE = "-SITE-CODE-"
FIRST_SYNC = "-FIRST-SYNC-"
DB_SQLITE = "-DB-SQLITE-"
SQLITE_PATH = "-SQLITE-PATH-"
SQLITE_BROWSE = "-SQLITE-BROWSE-"
DB_ODBC = "-DB-ODBC-"
DRIVER = "-DRIVER-"
DSN = "-DSN-"
DB_TEST = "-DB-TEST-"
DB_RESULT = "-DB-RESULT-"
TABLES = "-TABLES-"
SITE_PANEL = "-SITE-PANEL-"
TOKEN = "-TOKEN-"
HQ_PANEL = "-HQ-PANEL-"
FTP_PORT = "-FTP-PORT-"
SERVERS = "-SERVERS-"
SEND_EMAIL = "-SEND-EMAIL-"
EMAIL = "-EMAIL-"
EMAIL_STATE = "-EMAIL-STATE-"
STEP_TEXT = "-STEP-TEXT-"
PREV = "-PREV-"
NEXT = "-NEXT-"
FINISH = "-FINISH-"
CANCEL = "-CANCEL-"
MESSAGE = "-MESSAGE-"
STEPS = 5
INPUTS = [PASSWORD, CONFIRM, SITE_CODE, FIRST_SYNC, SQLITE_PATH, DSN, TOKEN, FTP_PORT, SERVERS]
TOKEN_PREFIX = "SYNCHRO"  # connection tokens look like SYNCHRO1-...; anything else is an address
W = 38  # label width


def step_key(n: int) -> str:
    return f"-STEP{n}-"


def _label(key: str, lang: str) -> sg.Text:
    return sg.Text(tr(key, lang), size=(W, 1), key=f"-LABEL{key}-")


def _title(key: str, lang: str) -> list[Any]:
    return [sg.Text(tr(key, lang), font=TITLE_FONT, key=f"-TITLE{key}-")]


def build_wizard(config: Config, lang: str, drivers: list[str], today: dt.date) -> list[list[Any]]:
    hq = config.is_hq
    first = dt.datetime.combine(today, dt.time(0, 0))
    steps = [
        [
            _title("gui.wizard.s1", lang),
            [
                _label("gui.language", lang),
                sg.Combo(
                    language_names(lang),
                    default_value=tr(f"gui.lang.{lang}", lang),
                    key=LANGUAGE,
                    readonly=True,
                    enable_events=True,
                    size=(12, 1),
                ),
            ],
            [
                _label("gui.wizard.password", lang),
                sg.Input(DEFAULT_PASSWORD, key=PASSWORD, password_char="*", size=(24, 1)),
            ],
            [
                _label("gui.wizard.confirm", lang),
                sg.Input(DEFAULT_PASSWORD, key=CONFIRM, password_char="*", size=(24, 1)),
            ],
            [sg.Text(tr("gui.wizard.password_hint", lang), key="-PASSWORD-HINT-", size=(70, 1))],
        ],
        [
            _title("gui.wizard.s2", lang),
            [
                sg.Radio(
                    tr("gui.wizard.hq", lang), "MODE", default=hq, key=MODE_HQ, enable_events=True
                )
            ],
            [
                sg.Radio(
                    tr("gui.wizard.site", lang),
                    "MODE",
                    default=not hq,
                    key=MODE_SITE,
                    enable_events=True,
                )
            ],
            [
                _label("gui.wizard.site_code", lang),
                sg.Input(config.site, key=SITE_CODE, size=(16, 1)),
            ],
            [
                _label("gui.wizard.first_sync", lang),
                sg.Input(format_datetime(config.last_sync or first), key=FIRST_SYNC, size=(20, 1)),
            ],
        ],
        [
            _title("gui.wizard.s3", lang),
            [sg.Radio(tr("gui.wizard.sqlite", lang), "DB", default=True, key=DB_SQLITE)],
            [
                sg.Text("", size=(2, 1)),
                sg.Input(config.database.connection, key=SQLITE_PATH, size=(46, 1)),
                sg.FileBrowse(tr("gui.wizard.browse", lang), key=SQLITE_BROWSE, target=SQLITE_PATH),
            ],
            [sg.Radio(tr("gui.wizard.odbc", lang), "DB", default=False, key=DB_ODBC)],
            [
                sg.Text("", size=(2, 1)),
                sg.Text(tr("gui.wizard.driver", lang), size=(W - 3, 1), key="-LABEL-DRIVER-"),
                sg.Combo(
                    drivers,
                    default_value=drivers[0] if drivers else "",
                    key=DRIVER,
                    size=(28, 1),
                    readonly=False,
                ),
            ],
            [
                sg.Text("", size=(2, 1)),
                sg.Text(tr("gui.wizard.dsn", lang), size=(W - 3, 1), key="-LABEL-DSN-"),
                sg.Input("", key=DSN, size=(40, 1)),
            ],
            [
                sg.Button(tr("gui.test", lang), key=DB_TEST, size=(8, 1)),
                sg.Text("", key=DB_RESULT, size=(60, 1)),
            ],
            [sg.Listbox([], key=TABLES, size=(70, 5))],
        ],
        [
            _title("gui.wizard.s4", lang),
            [
                sg.pin(
                    sg.Column(
                        [
                            [
                                _label("gui.wizard.token", lang),
                                sg.Input("", key=TOKEN, size=(40, 1)),
                            ],
                            [
                                sg.Text(
                                    tr("gui.wizard.token_hint", lang),
                                    key="-TOKEN-HINT-",
                                    size=(70, 1),
                                )
                            ],
                        ],
                        key=SITE_PANEL,
                        visible=not hq,
                    )
                )
            ],
            [
                sg.pin(
                    sg.Column(
                        [
                            [
                                _label("gui.wizard.ftp_port", lang),
                                sg.Input(str(config.hq.port), key=FTP_PORT, size=(8, 1)),
                            ],
                            [
                                _label("gui.hq.servers", lang),
                                sg.Input(str(config.hq.servers), key=SERVERS, size=(8, 1)),
                            ],
                        ],
                        key=HQ_PANEL,
                        visible=hq,
                    )
                )
            ],
        ],
        [
            _title("gui.wizard.s5", lang),
            [sg.Text(tr("gui.wizard.email_hint", lang), key="-EMAIL-HINT-", size=(70, 1))],
            [
                sg.Checkbox(
                    tr("gui.general.send_email", lang), default=config.send_email, key=SEND_EMAIL
                ),
                sg.Button(tr("gui.btn.email", lang), key=EMAIL, size=(10, 1)),
            ],
            [sg.Text(_email_state(config.email, lang), key=EMAIL_STATE, size=(70, 1))],
        ],
    ]
    columns = [
        sg.pin(sg.Column(rows, key=step_key(n), visible=n == 0, size=(720, 280)))
        for n, rows in enumerate(steps)
    ]
    return [
        [sg.Text(tr("gui.wizard.step", lang, n=1, total=STEPS), key=STEP_TEXT)],
        *[[c] for c in columns],
        [sg.Text("", key=MESSAGE, size=(90, 3))],
        [
            sg.Button(tr("gui.wizard.prev", lang), key=PREV, size=(12, 1), disabled=True),
            sg.Button(tr("gui.wizard.next", lang), key=NEXT, size=(12, 1)),
            sg.Button(tr("gui.wizard.finish", lang), key=FINISH, size=(12, 1), disabled=True),
            sg.Push(),
            sg.Button(tr("gui.cancel", lang), key=CANCEL, size=(12, 1)),
        ],
    ]


def _email_state(settings: EmailSettings, lang: str) -> str:
    if settings.recipients:
        return tr("gui.wizard.email_set", lang, to=", ".join(settings.recipients))
    return tr("gui.wizard.email_unset", lang)


def make_wizard_window(
    config: Config, drivers: list[str], lang: str, today: dt.date | None = None
) -> sg.Window:
    layout = build_wizard(config, lang, drivers, today or dt.date.today())
    window = sg.Window(tr("gui.wizard.title", lang), layout, finalize=True)
    bind_keys(window)
    return window


def odbc_drivers(backend: GuiBackend) -> list[str]:
    """The backend's ODBC drivers; none (SQLite only) when ODBC itself is missing."""
    try:
        return list(backend.odbc_drivers())
    except Exception:
        return []


def show_step(window: sg.Window, step: int, lang: str) -> None:
    """Show step ``step`` (0-based) only, with the buttons that make sense there."""
    for n in range(STEPS):
        window[step_key(n)].update(visible=n == step)
    window[STEP_TEXT].update(tr("gui.wizard.step", lang, n=step + 1, total=STEPS))
    window[PREV].update(disabled=step == 0)
    window[NEXT].update(disabled=step == STEPS - 1)
    window[FINISH].update(disabled=step != STEPS - 1)


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
        self.window[EMAIL_STATE].update(_email_state(settings, self.lang))
        if settings.recipients:
            self.window[SEND_EMAIL].update(value=True)
        return _email_state(settings, self.lang)
