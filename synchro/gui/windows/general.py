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
from synchro.gui.base import KEY_ENTER, KEY_ESCAPE, Controller, Shell, Values, mark_problems
from synchro.gui.fields import Form, FormError, format_count, format_size
from synchro.gui.ports import Probe, Progress, StateChanged, StatusMessage, TrayState
from synchro.gui.windows.general_layout import (
    APPLY,
    ATTEMPTS,
    AUTO_SYNC,
    AUTOSTART,
    CLOSE,
    EMAIL,
    HQ,
    HQ_ADDRESS,
    HQ_FRAME,
    INPUTS,
    LANGUAGE,
    LAST_SYNC,
    MANUAL,
    MAX_RECEPTION,
    PASSWORD,
    PROGRESS,
    PROGRESS_MAX,
    PROGRESS_TEXT,
    RAZ,
    REPORT,
    RETRY_DELAY,
    SEND_EMAIL,
    SERVERS,
    SITE_FRAME,
    START_TIME,
    STATUS,
    STOP,
    TEST,
    TEST_RESULT,
    general_title,
    language_code,
)
from synchro.i18n import tr


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
        self.shell.run_now()
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
