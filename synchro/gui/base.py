"""What every window shares: the controller base class, messages, probes, the shell contract.

A window is two pieces: ``build_*`` (pure layout, a key on every element, in a language)
and a controller (``handle(event, values)``). The shell (``synchro.gui.shell``) owns every
open window, reads them all with ``read_all_windows(timeout=...)`` on the Tk thread and
routes each event to the window's controller. Nothing here blocks: slow probes run in a
short-lived thread that posts a ``Probe`` back with ``write_event_value``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import FreeSimpleGUI as sg

from synchro.config.model import EmailSettings
from synchro.errors import SynchroError, text_in
from synchro.gui.ports import GuiBackend, GuiEvent, Probe
from synchro.i18n import tr

log = logging.getLogger("synchro.gui")

Values = dict[Any, Any]
ERROR_COLOUR = "#b00020"
INFO_COLOUR = "#1b5e20"
FONT = ("Segoe UI", 9) if sys.platform == "win32" else ("DejaVu Sans", 10)
TITLE_FONT = (FONT[0], FONT[1] + 2, "bold")
KEY_ENTER = "-ENTER-"
KEY_ESCAPE = "-ESCAPE-"


def setup_theme() -> None:
    """The native look (grey dialogs like the manual's screens) and the program's icon on
    every window; called once by the shell."""
    import base64

    from synchro.gui.icons import icon_png_bytes
    from synchro.gui.ports import TrayState

    sg.theme("SystemDefaultForReal")
    sg.set_options(
        font=FONT,
        element_padding=(4, 3),
        icon=base64.b64encode(icon_png_bytes(TrayState.IDLE, 32)),
    )


class Shell(Protocol):
    """What a controller may ask of the shell that owns it."""

    backend: GuiBackend

    @property
    def lang(self) -> str: ...

    def open_general(self) -> None: ...

    def reopen_general(self) -> None:
        """Close every window and open the General window again (language changed)."""
        ...

    def open_rapport(self) -> None: ...

    def open_email(
        self,
        settings: EmailSettings,
        on_ok: Callable[[EmailSettings], str],
        lang: str | None = None,
    ) -> None:
        """Open the Email dialog; ``on_ok`` stores the settings and returns a status text
        (or raises ``SynchroError``, shown in the dialog). ``lang``: the wizard's language."""
        ...

    def open_detail(self, report_id: str) -> None: ...

    def open_password(self) -> None:
        """The dialog changing the administrator password."""
        ...

    def run_now(self) -> None:
        """MANUELLE: a run now (the user confirms first when it would send held deletes)."""
        ...

    def start_run(self, *, take_back: bool = False, send: bool = False) -> None:
        """A run now, no question asked (after a restore, ``take_back``: the group's data
        taken back first; ``send``: the restored database sent as it is)."""
        ...

    def status(self, text: str) -> None:
        """Add a timestamped line to the status bar."""
        ...

    def status_lines(self) -> list[str]: ...

    def update_tray(self) -> None:
        """Redraw the tray's icon and tooltip (mode, site or schedule changed)."""
        ...

    def after_setup(self) -> None:
        """The wizard saved the first configuration: go to the tray."""
        ...

    def quit(self) -> None: ...


def bind_keys(window: sg.Window) -> None:
    """ENTER validates, ESC cancels, in every window (manual §1.3)."""
    window.bind("<Return>", KEY_ENTER)
    window.bind("<KP_Enter>", KEY_ENTER)
    window.bind("<Escape>", KEY_ESCAPE)


def unexpected(lang: str, exc: BaseException, log_path: Path | None) -> str:
    """Log an unexpected error with its traceback; return the short text to show."""
    log.exception("unexpected error in the GUI", exc_info=exc)
    return tr("gui.msg.unexpected", lang, error=type(exc).__name__, log=str(log_path or ""))


class Controller:
    """Handles the events of one window. Subclasses override ``handle`` and ``on_event``."""

    def __init__(self, window: sg.Window, shell: Shell) -> None:
        self.window = window
        self.shell = shell
        self.closed = False

    @property
    def lang(self) -> str:
        return self.shell.lang

    @property
    def backend(self) -> GuiBackend:
        return self.shell.backend

    def handle(self, event: Any, values: Values | None) -> None:
        raise NotImplementedError

    def on_event(self, event: GuiEvent) -> None:
        """A backend event (state, progress, status, reports); most windows ignore them."""

    def tick(self) -> None:
        """Called about every read timeout; for periodic refreshes."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.window.close()

    def dispatch(self, event: Any, values: Values | None) -> None:
        """``handle`` with the safety net: no traceback ever reaches the screen."""
        try:
            self.handle(event, values)
        except SynchroError as exc:
            self.message(text_in(exc, self.lang))
        except Exception as exc:
            self.message(unexpected(self.lang, exc, self._log_path()))

    def dispatch_event(self, event: GuiEvent) -> None:
        try:
            self.on_event(event)
        except Exception as exc:
            self.message(unexpected(self.lang, exc, self._log_path()))

    def dispatch_tick(self) -> None:
        try:
            self.tick()
        except SynchroError as exc:
            self.message(text_in(exc, self.lang))
        except Exception as exc:
            self.message(unexpected(self.lang, exc, self._log_path()))

    def _log_path(self) -> Path | None:
        try:
            return self.backend.log_path()
        except Exception:
            return None

    def message(self, text: str, *, error: bool = True, key: str = "-MESSAGE-") -> None:
        """Show ``text`` in the window's message line (red for errors)."""
        if self.closed or key not in self.window.AllKeysDict:
            return
        colour = ERROR_COLOUR if error else INFO_COLOUR
        self.window[key].update(text, text_color=colour)

    def probe(self, key: str, work: Callable[[], Probe]) -> None:
        """Run ``work`` off the Tk thread; its ``Probe`` comes back as event ``key``."""
        window = self.window
        lang = self.lang

        def run() -> None:
            try:
                result = work()
            except SynchroError as exc:
                result = Probe(False, tr("gui.msg.test_failed", lang, reason=text_in(exc, lang)))
            except Exception as exc:
                result = Probe(False, unexpected(lang, exc, None))
            try:
                window.write_event_value(key, result)
            except Exception:  # the window was closed meanwhile
                log.debug("probe result dropped: window closed")

        threading.Thread(target=run, name=f"gui-probe{key}", daemon=True).start()


def mark_problems(window: sg.Window, keys: list[str], all_keys: list[str]) -> None:
    """Colour the bad fields' backgrounds so the user sees which ones to fix."""
    for key in all_keys:
        element = window.AllKeysDict.get(key)
        if isinstance(element, sg.Input):
            element.update(background_color="#ffd6d6" if key in keys else "white")
