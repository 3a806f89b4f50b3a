"""MANUELLE after an automatic synchronisation held its changes — mass deletes
(``capture.mass_deletes``) or a restored database (``engine.marks``): the user sees what
the last one said (which tables, how many rows; which mark) and decides. Envoyer starts
the run, which sends them; Annuler starts nothing."""

from __future__ import annotations

from typing import Any

import FreeSimpleGUI as sg

from synchro.gui.base import KEY_ESCAPE, Controller, Values, bind_keys
from synchro.i18n import tr

HELD = "-HELD-"
SEND = "-SEND-"
CANCEL = "-CANCEL-"


def build_confirm_deletes(held: str, lang: str) -> list[list[Any]]:
    return [
        [sg.Text(held, key=HELD, size=(70, 6))],
        [sg.Text(tr("gui.deletes.question", lang), size=(70, 3))],
        [
            sg.Push(),
            sg.Button(tr("gui.deletes.send", lang), key=SEND, size=(10, 1)),
            sg.Button(tr("gui.cancel", lang), key=CANCEL, size=(10, 1), focus=True),
        ],
    ]


def make_confirm_deletes_window(held: str, lang: str) -> sg.Window:
    window = sg.Window(
        tr("gui.deletes.title", lang),
        build_confirm_deletes(held, lang),
        finalize=True,
        keep_on_top=True,
    )
    bind_keys(window)
    return window


class ConfirmDeletesController(Controller):
    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CANCEL, KEY_ESCAPE):
            self.shell.status(tr("gui.deletes.kept", self.lang))
            self.close()
        elif event == SEND:
            self.close()
            self.shell.start_run()
