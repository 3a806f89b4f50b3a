"""The GUI's main loop: the tray, every open window, and the two queues that feed them.

Runs on the main thread (Tk must). Each ``step`` reads every open window with
``read_all_windows(timeout=...)`` (or waits on the tray's command queue when none is open),
routes the event to that window's controller, then drains the tray commands and the
backend's events. The tray thread and the engine threads only ever put things on queues.

    shell = GuiShell(backend)      # backend: synchro.app's GuiBackend
    shell.run()                    # returns when the user chose Quitter
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.model import EmailSettings
from synchro.config.passwords import LoginGuard
from synchro.errors import SynchroError, text_in
from synchro.gui.base import Controller, setup_theme, unexpected
from synchro.gui.ports import (
    STATE_FAILED,
    STATE_OK,
    STATE_RUNNING,
    STATE_STOPPED,
    GuiBackend,
    GuiEvent,
    Progress,
    ShowRequested,
    StateChanged,
    StatusMessage,
    TrayState,
)
from synchro.gui.tray import Command, Tray, TrayPort, tooltip
from synchro.gui.windows import (
    confirm,
    email,
    general,
    general_layout,
    login,
    password,
    rapport,
    wizard,
    wizard_layout,
)
from synchro.i18n import system_language, tr

log = logging.getLogger("synchro.gui")
MAX_LOOP_FAILURES = 20
STATUS_FORMAT = "%m/%d %H:%M:%S"  # the manual's status bar: "11/18 17:39:02 : ..."
_LAST_STATE = {
    STATE_RUNNING: TrayState.RUNNING,
    STATE_OK: TrayState.OK,
    STATE_FAILED: TrayState.FAILED,
    STATE_STOPPED: TrayState.STOPPED,
}


def open_path(path: Path) -> None:
    """Show a file with the system's viewer (the tray's "open log")."""
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined,unused-ignore]
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class GuiShell:
    """Owns the tray and the windows; everything happens on the thread calling ``run``."""

    def __init__(
        self,
        backend: GuiBackend,
        *,
        tray: TrayPort | None = None,
        opener: Callable[[Path], None] = open_path,
        guard: LoginGuard | None = None,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.backend = backend
        self.commands: queue.Queue[Command] = queue.Queue()
        self.tray: TrayPort = tray if tray is not None else Tray(self.commands, self.lang)
        self.opener = opener
        self.guard = guard or LoginGuard()
        self.clock = clock
        self.controllers: list[Controller] = []
        self.lines: list[str] = []
        self.state = TrayState.IDLE
        self.progress: Progress | None = None  # the current run's last progress, if any
        self.quitting = False

    @property
    def lang(self) -> str:
        return self.backend.config().language

    # ----- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Theme, then the wizard on a first run, else straight to the tray (minimised)."""
        setup_theme()
        if self.backend.needs_setup():
            self.open_wizard()
            return
        self.after_setup()

    def after_setup(self) -> None:
        config = self.backend.config()
        self.status(
            tr("gui.status.start_hq" if config.is_hq else "gui.status.start_site", self.lang)
        )
        try:
            rows = self.backend.reports()
        except SynchroError as exc:  # a Rapport a full disk keeps closed: the tray all the same
            rows = []
            self.status(text_in(exc, self.lang))
        if rows:
            self.state = _LAST_STATE.get(rows[0].state, TrayState.IDLE)
        if self.backend.is_running():
            self.state = TrayState.RUNNING
        self.tray.start()
        self.update_tray()

    def run(self, timeout_ms: int = 100) -> None:
        """The loop until Quitter. An unexpected error in one turn is logged and the loop
        goes on; only a run of them in a row (a broken display) ends it."""
        self.start()
        failures = 0
        while True:
            try:
                if not self.step(timeout_ms):
                    return
                failures = 0
            except Exception:
                failures += 1
                log.exception("error in the GUI loop (%d in a row)", failures)
                if failures >= MAX_LOOP_FAILURES:
                    raise

    def step(self, timeout_ms: int = 100) -> bool:
        """One turn of the loop; False once the user chose Quitter."""
        self.prune()
        if self.controllers:
            window, event, values = sg.read_all_windows(timeout=timeout_ms)
            if window is not None:
                self.route(window, event, values)
        else:
            with contextlib.suppress(queue.Empty):
                self.handle_command(self.commands.get(timeout=timeout_ms / 1000))
        self.drain()
        for controller in list(self.controllers):
            if not controller.closed:
                controller.dispatch_tick()
        self.prune()
        return not self.quitting

    def drain(self) -> None:
        while not self.quitting:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            self.handle_command(command)
        while not self.quitting:
            try:
                event = self.backend.events.get_nowait()
            except queue.Empty:
                break
            self.handle_event(event)

    def route(self, window: sg.Window, event: Any, values: Any) -> None:
        for controller in self.controllers:
            if controller.window is window and not controller.closed:
                controller.dispatch(event, values)
                if event is sg.WIN_CLOSED:  # the window's cross: make sure it is gone
                    controller.close()
                return
        if event not in (sg.WIN_CLOSED, None):  # a window nobody owns: close it
            window.close()

    def prune(self) -> None:
        self.controllers = [c for c in self.controllers if not c.closed]

    def quit(self) -> None:
        self.quitting = True
        for controller in self.controllers:
            controller.close()
        self.controllers = []
        try:
            self.tray.stop()
        except Exception:
            log.exception("stopping the tray icon failed")

    # ----- tray commands and backend events ---------------------------------------------
    def handle_command(self, command: Command) -> None:
        try:
            if command is Command.SETTINGS:
                self.open_settings()
            elif command is Command.RUN:
                if not self.backend.is_running():
                    self.run_now()
            elif command is Command.STOP:
                if self.backend.is_running():
                    self.backend.stop()
                    self.status(tr("gui.status.stop_asked", self.lang))
            elif command is Command.REPORT:
                self.open_rapport()
            elif command is Command.LOG:
                self.opener(self.backend.log_path())
            elif command is Command.QUIT:
                self.quit()
        except SynchroError as exc:
            self.status(text_in(exc, self.lang))
        except Exception as exc:  # never let the loop die; the log has the details
            self.status(unexpected(self.lang, exc, None))

    def handle_event(self, event: GuiEvent) -> None:
        if isinstance(event, Progress):
            self.progress = event
        if isinstance(event, StateChanged):
            self.state = event.state
            if event.state is not TrayState.RUNNING:
                self.progress = None
            self.update_tray()
            if event.message:
                self.status(event.message)
            if event.state is TrayState.FAILED:
                self.tray.notify(event.message or tr("gui.tray.failed_note", self.lang))
        elif isinstance(event, StatusMessage):
            self.status(event.text, event.at)
        elif isinstance(event, ShowRequested):
            self.handle_command(Command.SETTINGS)
        for controller in self.controllers:
            if not controller.closed:
                controller.dispatch_event(event)

    def update_tray(self) -> None:
        try:
            text = tooltip(self.backend.config(), self.state, self.backend.next_run(), self.lang)
            self.tray.show(self.state, text)
        except Exception:
            log.exception("updating the tray icon failed")

    # ----- status bar -------------------------------------------------------------------
    def status(self, text: str, at: dt.datetime | None = None) -> None:
        line = f"{(at or self.clock()).strftime(STATUS_FORMAT)} : {text}"
        self.lines.append(line)
        del self.lines[:-500]
        log.info("status: %s", text)
        for controller in self.controllers:
            if isinstance(controller, general.GeneralController) and not controller.closed:
                controller.show_status(self.lines)

    def status_lines(self) -> list[str]:
        return list(self.lines)

    # ----- windows ----------------------------------------------------------------------
    def find(self, kind: type[Controller]) -> Controller | None:
        for controller in self.controllers:
            if isinstance(controller, kind) and not controller.closed:
                return controller
        return None

    def front(self, kind: type[Controller]) -> bool:
        controller = self.find(kind)
        if controller is None:
            return False
        controller.window.bring_to_front()
        return True

    def open_settings(self) -> None:
        """The tray's default action: the password prompt, then the General window."""
        if self.front(general.GeneralController) or self.front(login.LoginController):
            return
        if self.front(wizard.WizardController):
            return
        window = login.make_login_window(self.lang)
        self.controllers.append(login.LoginController(window, self, self.guard, self.open_general))

    def open_general(self) -> None:
        if self.front(general.GeneralController):
            return
        window = general_layout.make_general_window(
            self.backend.config(), self.lang, self.backend.autostart(), self.lines
        )
        controller = general.GeneralController(window, self)
        self.controllers.append(controller)
        if self.progress is not None and controller.running:
            controller.show_progress(self.progress)

    def reopen_general(self) -> None:
        for controller in self.controllers:
            controller.close()
        self.controllers = []
        self.tray.relabel(self.lang)
        self.update_tray()
        self.open_general()

    def open_rapport(self) -> None:
        if self.front(rapport.RapportController):
            return
        try:
            rows = self.backend.reports()
        except SynchroError as exc:  # (a full disk): said where the user looks
            self.status(text_in(exc, self.lang))
            return
        window = rapport.make_rapport_window(rows, self.lang)
        self.controllers.append(rapport.RapportController(window, self, rows))

    def open_detail(self, report_id: str) -> None:
        detail = self.backend.report_detail(report_id)
        window = rapport.make_detail_window(detail, self.lang)
        self.controllers.append(rapport.DetailController(window, self))

    def open_email(
        self,
        settings: EmailSettings,
        on_ok: Callable[[EmailSettings], str],
        lang: str | None = None,
    ) -> None:
        if self.front(email.EmailController):
            return
        window = email.make_email_window(settings, lang or self.lang)
        self.controllers.append(email.EmailController(window, self, settings, on_ok, lang))

    def run_now(self) -> None:
        """MANUELLE (window or tray). When the last automatic synchronisation held mass
        deletes, which this one sends, the user decides first (``windows.confirm``)."""
        held = self.backend.held_changes()
        if held is None:
            self.start_run()
        elif not self.front(confirm.ConfirmDeletesController):
            offered = self.backend.can_take_back()
            window = confirm.make_confirm_deletes_window(held, self.lang, take_back=offered)
            self.controllers.append(confirm.ConfirmDeletesController(window, self))

    def start_run(self, *, take_back: bool = False, send: bool = False) -> None:
        self.backend.run_now(take_back=take_back, send=send)
        self.status(tr("gui.status.run_asked", self.lang))

    def open_password(self) -> None:
        if self.front(password.PasswordController):
            return
        window = password.make_password_window(self.lang)
        self.controllers.append(password.PasswordController(window, self))

    def open_wizard(self) -> None:
        """First run: the wizard, in the system's language (French unless it is English)."""
        lang = system_language()
        window = wizard_layout.make_wizard_window(
            self.backend.config(), wizard_layout.odbc_drivers(self.backend), lang
        )
        self.controllers.append(wizard.WizardController(window, self, lang))
