"""The General window (manual §2.1.1), with the Mode siège or Mode serveur panel.

Fields and buttons keep the manual's words. Only the panel of the current mode shows
(ticking Siège swaps them at once). VALIDER reads every field, names every bad one and
saves nothing until all are right; during a run it refuses with a message. ENTER = VALIDER,
ESC = cancel (back to the tray, nothing saved). The window's cross quits the program, as
the manual says; FERMER only puts it back in the tray.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import Config, EmailSettings, Role
from synchro.gui.base import (
    KEY_ENTER,
    KEY_ESCAPE,
    Controller,
    Shell,
    Values,
    bind_keys,
    mark_problems,
)
from synchro.gui.fields import (
    Form,
    FormError,
    format_count,
    format_datetime,
    format_duration,
    format_size,
    format_time,
)
from synchro.gui.ports import Probe, Progress, StateChanged, StatusMessage, TrayState
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


class GeneralController(Controller):
    """Events of the General window."""

    def __init__(self, window: sg.Window, shell: Shell) -> None:
        super().__init__(window, shell)
        self.running = False
        self.refresh_buttons()

    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, sg.WINDOW_CLOSE_ATTEMPTED_EVENT):
            self.shell.quit()  # the manual: the cross quits the program
        elif event in (CLOSE, KEY_ESCAPE):
            self.close()
        elif values is None:
            return
        elif event == HQ:
            self.show_mode(bool(values[HQ]))
        elif event in (APPLY, KEY_ENTER):
            self.apply(values)
        elif event == REPORT:
            self.shell.open_rapport()
        elif event == EMAIL:
            self.shell.open_email(self.backend.config().email, self.save_email)
        elif event == STOP:
            self.stop()
        elif event == MANUAL:
            self.run_now()
        elif event == PASSWORD:
            self.shell.open_password()
        elif event == RAZ:
            self.backend.raz()
            self.shell.status(tr("gui.status.raz_done", self.lang))
        elif event == TEST:
            self.test(values)
        elif event == f"{TEST}-RESULT":
            result: Probe = values[event]
            self.window[TEST_RESULT].update(
                result.text, text_color="#1b5e20" if result.ok else "#b00020"
            )

    def show_mode(self, hq: bool) -> None:
        self.window[HQ_FRAME].update(visible=hq)
        self.window[SITE_FRAME].update(visible=not hq)

    def refresh_buttons(self, running: bool | None = None) -> None:
        """ARRETER and RAZ only while a run is in progress; MANUELLE only when none is.

        ``running`` comes from the state event when there is one (the event is the truth at
        that moment); otherwise the backend is asked."""
        self.running = self.backend.is_running() if running is None else running
        self.window[STOP].update(disabled=not self.running)
        self.window[RAZ].update(disabled=not self.running)
        self.window[MANUAL].update(disabled=self.running)

    def read_config(self, values: Values) -> Config:
        """The settings as typed, on top of the current ones; FormError names bad fields."""
        current = self.backend.config()
        form = Form(self.lang)
        hq = bool(values[HQ])
        last_sync = form.datetime(
            LAST_SYNC, "gui.general.last_sync", values[LAST_SYNC], required=False
        )
        start_time = form.time(START_TIME, "gui.general.start_time", values[START_TIME])
        hq_settings = current.hq
        site_settings = current.site_settings
        if hq:
            hq_settings = dataclasses.replace(
                current.hq,
                servers=form.integer(SERVERS, "gui.hq.servers", values[SERVERS], 1, 999),
                max_reception=form.duration(
                    MAX_RECEPTION, "gui.hq.max_reception", values[MAX_RECEPTION]
                ),
            )
        else:
            host, port = form.address(
                HQ_ADDRESS, "gui.site.hq_address", values[HQ_ADDRESS], current.site_settings.hq_port
            )
            site_settings = dataclasses.replace(
                current.site_settings,
                attempts=form.integer(ATTEMPTS, "gui.site.attempts", values[ATTEMPTS], 1, 1000),
                retry_delay=dt.timedelta(
                    minutes=form.integer(
                        RETRY_DELAY, "gui.site.retry_delay", values[RETRY_DELAY], 0, 1440
                    )
                ),
                hq_address=host,
                hq_port=port,
                auto_sync=bool(values[AUTO_SYNC]),
            )
        mark_problems(self.window, [p.key for p in form.problems], INPUTS)
        form.check()
        return dataclasses.replace(
            current,
            role=Role.HQ if hq else Role.SITE,
            last_sync=last_sync,
            start_time=start_time,
            send_email=bool(values[SEND_EMAIL]),
            start_with_windows=bool(values[AUTOSTART]),
            language=language_code(str(values[LANGUAGE]), self.lang),
            hq=hq_settings,
            site_settings=site_settings,
        )

    def apply(self, values: Values) -> None:
        """VALIDER: refused during a run; otherwise check everything, then save."""
        if self.backend.is_running():
            self.message(tr("gui.msg.refused_running", self.lang))
            return
        try:
            config = self.read_config(values)
        except FormError as exc:
            self.message(str(exc))
            return
        if config.send_email and not (config.email.recipients and config.email.server):
            self.message(
                tr(
                    "gui.field.problem",
                    self.lang,
                    field=tr("gui.general.send_email", self.lang),
                    expected=tr("gui.expect.email_needed", self.lang),
                )
            )
            return
        old_lang = self.lang
        self.backend.save_config(config)
        self.message(tr("gui.status.saved", config.language), error=False)
        self.shell.status(tr("gui.status.saved", config.language))
        if config.language != old_lang:
            self.shell.reopen_general()  # rebuilt in the new language
        else:
            self.window.set_title(general_title(config, self.lang))
            self.shell.update_tray()

    def save_email(self, settings: EmailSettings) -> str:
        config = dataclasses.replace(self.backend.config(), email=settings)
        self.backend.save_config(config)
        text = tr("gui.status.email_saved", self.lang)
        self.shell.status(text)
        return text

    def stop(self) -> None:
        if not self.backend.is_running():
            self.message(tr("gui.msg.nothing_running", self.lang))
            return
        self.backend.stop()
        self.shell.status(tr("gui.status.stop_asked", self.lang))

    def run_now(self) -> None:
        if self.backend.is_running():
            self.message(tr("gui.msg.already_running", self.lang))
            return
        self.backend.run_now()
        self.shell.status(tr("gui.status.run_asked", self.lang))
        self.refresh_buttons()

    def test(self, values: Values) -> None:
        address = str(values[HQ_ADDRESS]).strip()
        form = Form(self.lang)
        form.address(HQ_ADDRESS, "gui.site.hq_address", address, 21)
        if form.problems:
            self.window[TEST_RESULT].update(form.problems[0].text, text_color="#b00020")
            return
        self.window[TEST_RESULT].update(tr("gui.msg.testing", self.lang), text_color="black")
        backend = self.backend
        self.probe(f"{TEST}-RESULT", lambda: backend.test_connection(address))

    def on_event(self, event: object) -> None:
        if isinstance(event, StateChanged):
            self.refresh_buttons(event.state is TrayState.RUNNING)
            if event.state is not TrayState.RUNNING:
                self.window[PROGRESS].update(current_count=0)
                self.window[PROGRESS_TEXT].update(tr("gui.progress.idle", self.lang))
        elif isinstance(event, Progress):
            self.show_progress(event)
        elif isinstance(event, StatusMessage):
            pass  # the shell already added it to the status lines; see show_status

    def show_progress(self, event: Progress) -> None:
        if event.fraction is not None:
            count = int(max(0.0, min(1.0, event.fraction)) * PROGRESS_MAX)
        else:  # unknown total: keep the bar moving
            count = (event.rows // 100) % PROGRESS_MAX
        self.window[PROGRESS].update(current_count=count)
        text = tr(
            "gui.progress.text",
            self.lang,
            rows=format_count(event.rows, self.lang),
            size=format_size(event.bytes, self.lang),
            phase=event.phase,
        )
        self.window[PROGRESS_TEXT].update(text)

    def show_status(self, lines: list[str]) -> None:
        self.window[STATUS].update("\n".join(lines[-200:]))
