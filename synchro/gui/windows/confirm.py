"""MANUELLE after an automatic synchronisation held its changes — mass deletes
(``capture.mass_deletes``) or a restored database (``engine.marks``): the user sees what
the last one said (which tables, how many rows; which mark) and decides. Envoyer starts
the run, which sends them; a Serveur's restored database may instead *Reprendre les données
du groupe* (sends nothing of it, receives everything); Annuler starts nothing."""

from __future__ import annotations

from typing import Any

import FreeSimpleGUI as sg

from synchro.gui.base import KEY_ESCAPE, Controller, Values, bind_keys
from synchro.i18n import tr

HELD = "-HELD-"
SEND = "-SEND-"
TAKE_BACK = "-TAKE-BACK-"
CANCEL = "-CANCEL-"


def build_confirm_deletes(held: str, lang: str, *, take_back: bool) -> list[list[Any]]:
    """``take_back``: a Serveur's restored database, which it may take the group's data
    back over instead of sending it (``ServeurNode.take_back``)."""
    layout: list[list[Any]] = [
        [sg.Text(held, key=HELD, size=(70, 6))],
        [sg.Text(tr("gui.deletes.question", lang), size=(70, 3))],
    ]
    buttons: list[Any] = [sg.Push()]
    if take_back:
        layout.append([sg.Text(tr("gui.deletes.take_back_help", lang), size=(70, 3))])
        buttons.append(sg.Button(tr("gui.deletes.take_back", lang), key=TAKE_BACK))
    buttons += [
        sg.Button(tr("gui.deletes.send", lang), key=SEND, size=(10, 1)),
        sg.Button(tr("gui.cancel", lang), key=CANCEL, size=(10, 1), focus=True),
    ]
    return [*layout, buttons]


def make_confirm_deletes_window(held: str, lang: str, *, take_back: bool = False) -> sg.Window:
    window = sg.Window(
        tr("gui.deletes.title", lang),
        build_confirm_deletes(held, lang, take_back=take_back),
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
        elif event in (SEND, TAKE_BACK):
            self.close()
            self.shell.start_run(take_back=event == TAKE_BACK, send=event == SEND)
