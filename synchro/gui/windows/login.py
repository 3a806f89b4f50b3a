"""The password prompt opened before any settings window (manual §1.4: default ADMIN).

A wrong password shows a message and opens nothing. ``LoginGuard`` (shared by every prompt
of the session) makes each further attempt wait longer; the prompt does not sleep, it
refuses attempts until the wait is over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.passwords import DEFAULT_PASSWORD, LoginGuard, verify_password
from synchro.gui.base import KEY_ENTER, KEY_ESCAPE, Controller, Shell, Values, bind_keys
from synchro.i18n import tr

PASSWORD = "-PASSWORD-"
OK = "-OK-"
CANCEL = "-CANCEL-"
MESSAGE = "-MESSAGE-"


def build_login(lang: str) -> list[list[Any]]:
    return [
        [sg.Text(tr("gui.login.prompt", lang), key="-PROMPT-")],
        [sg.Input("", key=PASSWORD, password_char="*", size=(30, 1), focus=True)],
        [sg.Text("", key=MESSAGE, size=(44, 2))],
        [
            sg.Button(tr("gui.ok", lang), key=OK, size=(10, 1), bind_return_key=False),
            sg.Button(tr("gui.cancel", lang), key=CANCEL, size=(10, 1)),
        ],
    ]


def make_login_window(lang: str) -> sg.Window:
    window = sg.Window(
        tr("gui.login.title", lang),
        build_login(lang),
        finalize=True,
        keep_on_top=True,
        modal=False,
    )
    bind_keys(window)
    return window


class LoginController(Controller):
    """Checks the password against the stored hash; on success runs ``on_success``."""

    def __init__(
        self,
        window: sg.Window,
        shell: Shell,
        guard: LoginGuard,
        on_success: Callable[[], None],
    ) -> None:
        super().__init__(window, shell)
        self.guard = guard
        self.on_success = on_success

    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CANCEL, KEY_ESCAPE):
            self.close()
        elif event in (OK, KEY_ENTER) and values is not None:
            self.attempt(str(values.get(PASSWORD, "")))

    def attempt(self, password: str) -> None:
        wait = self.guard.check()
        if wait > 0:
            self.message(tr("gui.login.wait", self.lang, seconds=math.ceil(wait)))
            return
        stored = self.backend.config().admin_password_hash
        ok = verify_password(password, stored)
        self.guard.record(ok)
        if not ok:
            self.window[PASSWORD].update("")
            self.message(tr("gui.login.wrong", self.lang))
            return
        self.close()
        if password == DEFAULT_PASSWORD:  # it matched, so the password is still the default
            self.shell.status(tr("gui.login.default", self.lang))
        self.on_success()
