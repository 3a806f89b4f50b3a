"""The first-run wizard's layout: its five steps, their fields and keys (see ``wizard``).

``build_wizard`` lays out every step (one shown at a time by ``show_step``);
``wizard.WizardController`` handles the events.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import Config, EmailSettings
from synchro.config.passwords import DEFAULT_PASSWORD
from synchro.gui.base import TITLE_FONT, bind_keys
from synchro.gui.fields import format_datetime
from synchro.gui.ports import GuiBackend
from synchro.gui.windows.general_layout import language_names
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
            [sg.Text(email_state(config.email, lang), key=EMAIL_STATE, size=(70, 1))],
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


def email_state(settings: EmailSettings, lang: str) -> str:
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
