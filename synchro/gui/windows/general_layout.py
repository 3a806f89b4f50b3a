"""The General window's layout (manual §2.1.1): fields, buttons and their keys.

The manual's words for every label come from ``locales``; ``general.GeneralController``
handles the events. The Mode siège and Mode serveur panels are both built, one shown.
"""

from __future__ import annotations

from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import Config
from synchro.gui.base import bind_keys
from synchro.gui.fields import format_datetime, format_duration, format_time
from synchro.i18n import LANGUAGES, tr

HQ = "-HQ-"
LAST_SYNC = "-LAST-SYNC-"
START_TIME = "-START-TIME-"
SEND_EMAIL = "-SEND-EMAIL-"
AUTOSTART = "-AUTOSTART-"
LANGUAGE = "-LANGUAGE-"
HQ_FRAME = "-HQ-FRAME-"
SERVERS = "-SERVERS-"
MAX_RECEPTION = "-MAX-RECEPTION-"
SITE_FRAME = "-SITE-FRAME-"
ATTEMPTS = "-ATTEMPTS-"
RETRY_DELAY = "-RETRY-DELAY-"
HQ_ADDRESS = "-HQ-ADDRESS-"
TEST = "-TEST-"
TEST_RESULT = "-TEST-RESULT-"
AUTO_SYNC = "-AUTO-SYNC-"
PROGRESS = "-PROGRESS-"
PROGRESS_TEXT = "-PROGRESS-TEXT-"
CLOSE = "-CLOSE-"
REPORT = "-REPORT-"
EMAIL = "-EMAIL-"
STOP = "-STOP-"
MANUAL = "-MANUAL-"
RAZ = "-RAZ-"
APPLY = "-APPLY-"
PASSWORD = "-PASSWORD-"
MESSAGE = "-MESSAGE-"
STATUS = "-STATUS-"
INPUTS = [LAST_SYNC, START_TIME, SERVERS, MAX_RECEPTION, ATTEMPTS, RETRY_DELAY, HQ_ADDRESS]
PROGRESS_MAX = 1000


def language_names(lang: str) -> list[str]:
    return [tr(f"gui.lang.{code}", lang) for code in LANGUAGES]


def language_code(name: str, lang: str) -> str:
    for code in LANGUAGES:
        if tr(f"gui.lang.{code}", lang) == name:
            return code
    return lang


def _label(key: str, lang: str, width: int = 26) -> sg.Text:
    return sg.Text(tr(key, lang), size=(width, 1), key=f"-LABEL{key}-")


def build_general(config: Config, lang: str, autostart: bool, status: list[str]) -> list[list[Any]]:
    """The layout of the General window filled from ``config``."""
    hq = config.is_hq
    hq_panel = sg.Frame(
        tr("gui.hq.frame", lang),
        [
            [
                _label("gui.hq.servers", lang),
                sg.Input(str(config.hq.servers), key=SERVERS, size=(10, 1)),
            ],
            [
                _label("gui.hq.max_reception", lang),
                sg.Input(format_duration(config.hq.max_reception), key=MAX_RECEPTION, size=(10, 1)),
            ],
        ],
        key=HQ_FRAME,
        visible=hq,
    )
    site = config.site_settings
    site_panel = sg.Frame(
        tr("gui.site.frame", lang),
        [
            [
                _label("gui.site.attempts", lang),
                sg.Input(str(site.attempts), key=ATTEMPTS, size=(10, 1)),
            ],
            [
                _label("gui.site.retry_delay", lang),
                sg.Input(
                    str(int(site.retry_delay.total_seconds() // 60)), key=RETRY_DELAY, size=(10, 1)
                ),
            ],
            [
                _label("gui.site.hq_address", lang),
                sg.Input(_address(config), key=HQ_ADDRESS, size=(24, 1)),
                sg.Button(tr("gui.test", lang), key=TEST, size=(6, 1)),
            ],
            [
                # Several lines (the connection, then the schema check): scrollable.
                sg.Multiline(
                    "",
                    key=TEST_RESULT,
                    size=(60, 5),
                    disabled=True,
                    no_scrollbar=False,
                    border_width=1,
                )
            ],
            [sg.Checkbox(tr("gui.site.auto_sync", lang), default=site.auto_sync, key=AUTO_SYNC)],
        ],
        key=SITE_FRAME,
        visible=not hq,
    )
    buttons = [
        sg.Button(tr(f"gui.btn.{name}", lang), key=key, size=(11, 1))
        for name, key in (
            ("close", CLOSE),
            ("report", REPORT),
            ("email", EMAIL),
            ("stop", STOP),
            ("manual", MANUAL),
            ("raz", RAZ),
            ("apply", APPLY),
        )
    ]
    return [
        [
            sg.Checkbox(
                tr("gui.general.hq", lang), default=hq, key=HQ, enable_events=True, size=(22, 1)
            ),
            _label("gui.general.last_sync", lang, 24),
            sg.Input(format_datetime(config.last_sync), key=LAST_SYNC, size=(20, 1)),
        ],
        [
            _label("gui.general.start_time", lang, 16),
            sg.Input(format_time(config.start_time), key=START_TIME, size=(8, 1)),
            sg.Checkbox(
                tr("gui.general.send_email", lang), default=config.send_email, key=SEND_EMAIL
            ),
            sg.Checkbox(tr("gui.general.autostart", lang), default=autostart, key=AUTOSTART),
        ],
        [
            sg.Text(tr("gui.language", lang), key="-LANGUAGE-LABEL-", size=(16, 1)),
            sg.Combo(
                language_names(lang),
                default_value=tr(f"gui.lang.{lang}", lang),
                key=LANGUAGE,
                readonly=True,
                size=(12, 1),
            ),
            sg.Button(tr("gui.general.password", lang), key=PASSWORD, size=(16, 1)),
        ],
        [sg.pin(hq_panel), sg.pin(site_panel)],
        [
            sg.ProgressBar(PROGRESS_MAX, orientation="h", size=(30, 16), key=PROGRESS),
            sg.Text(tr("gui.progress.idle", lang), key=PROGRESS_TEXT, size=(50, 1)),
        ],
        buttons,
        [sg.Text("", key=MESSAGE, size=(96, 2))],
        [
            sg.Multiline(
                "\n".join(status),
                key=STATUS,
                size=(96, 4),
                disabled=True,
                autoscroll=True,
                no_scrollbar=False,
                write_only=True,
            )
        ],
    ]


def _address(config: Config) -> str:
    site = config.site_settings
    if site.hq_address and site.hq_port != 21:
        return f"{site.hq_address}:{site.hq_port}"
    return site.hq_address


def general_title(config: Config, lang: str) -> str:
    mode = tr("gui.mode.hq" if config.is_hq else "gui.mode.site", lang)
    return tr("gui.general.title", lang, mode=mode, site=config.site or "?")


def make_general_window(config: Config, lang: str, autostart: bool, status: list[str]) -> sg.Window:
    window = sg.Window(
        general_title(config, lang),
        build_general(config, lang, autostart, status),
        finalize=True,
    )
    bind_keys(window)
    return window
