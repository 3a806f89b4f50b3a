"""Changing the administrator password (the manual's default ADMIN should not stay).

Opened from the General window (so only after the current password was given). Ok checks
both fields, then saves the salted hash through the backend; nothing else changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import FreeSimpleGUI as sg

from synchro.config.passwords import hash_password
from synchro.gui.base import (
    KEY_ENTER,
    KEY_ESCAPE,
    Controller,
    Values,
    bind_keys,
    mark_problems,
)
from synchro.gui.fields import Form
from synchro.i18n import tr

NEW = "-NEW-PASSWORD-"
CONFIRM = "-CONFIRM-PASSWORD-"
OK = "-OK-"
CANCEL = "-CANCEL-"
MESSAGE = "-MESSAGE-"
MIN_LENGTH = 4


def build_password(lang: str) -> list[list[Any]]:
    return [
        [
            sg.Text(tr("gui.password.new", lang), size=(24, 1), key="-LABEL-NEW-"),
            sg.Input("", key=NEW, password_char="*", size=(24, 1), focus=True),
        ],
        [
            sg.Text(tr("gui.wizard.confirm", lang), size=(24, 1), key="-LABEL-CONFIRM-"),
            sg.Input("", key=CONFIRM, password_char="*", size=(24, 1)),
        ],
        [sg.Text("", key=MESSAGE, size=(52, 2))],
        [
            sg.Push(),
            sg.Button(tr("gui.ok", lang), key=OK, size=(10, 1)),
            sg.Button(tr("gui.cancel", lang), key=CANCEL, size=(10, 1)),
        ],
    ]


def make_password_window(lang: str) -> sg.Window:
    window = sg.Window(tr("gui.password.title", lang), build_password(lang), finalize=True)
    bind_keys(window)
    return window


class PasswordController(Controller):
    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CANCEL, KEY_ESCAPE):
            self.close()
        elif event in (OK, KEY_ENTER) and values is not None:
            self.save(str(values[NEW]), str(values[CONFIRM]))

    def save(self, password: str, confirm: str) -> None:
        form = Form(self.lang)
        if len(password) < MIN_LENGTH:
            form.bad(NEW, "gui.password.new", "gui.expect.password")
        elif password != confirm:
            form.bad(CONFIRM, "gui.wizard.confirm", "gui.expect.same_password")
        mark_problems(self.window, [p.key for p in form.problems], [NEW, CONFIRM])
        if form.problems:
            self.message("\n".join(p.text for p in form.problems))
            return
        config = self.backend.config()
        self.backend.save_config(
            dataclasses.replace(config, admin_password_hash=hash_password(password))
        )
        self.shell.status(tr("gui.password.saved", self.lang))
        self.close()
