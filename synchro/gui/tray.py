"""The tray icon (pystray) in its own daemon thread; it only puts commands on a queue.

The Tk thread owns every window: menu callbacks run in pystray's thread, so they never touch
Tk nor the engine, they put a ``Command`` on the shell's queue. The default item (a click
on Windows and on Linux's xorg backend) opens the password prompt, then the settings, as
the manual's double-click does. ``pystray`` is imported here only, when the tray starts
(it needs a display even to import).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from enum import StrEnum
from typing import Any, Protocol

from synchro.config.model import Config
from synchro.gui.icons import draw_icon
from synchro.gui.ports import TrayState
from synchro.i18n import tr

log = logging.getLogger("synchro.gui")
TOOLTIP_MAX = 128  # Windows truncates longer tooltips
NOTIFICATION_MAX = 256


class Command(StrEnum):
    SETTINGS = "settings"
    RUN = "run"
    STOP = "stop"
    REPORT = "report"
    LOG = "log"
    QUIT = "quit"


# (text key, command, default item)
MENU: tuple[tuple[str, Command, bool], ...] = (
    ("gui.tray.settings", Command.SETTINGS, True),
    ("gui.tray.run", Command.RUN, False),
    ("gui.tray.stop", Command.STOP, False),
    ("gui.tray.report", Command.REPORT, False),
    ("gui.tray.log", Command.LOG, False),
    ("gui.tray.quit", Command.QUIT, False),
)


def tooltip(config: Config, state: TrayState, next_run: dt.datetime | None, lang: str) -> str:
    """ "Synchronisation Siège 3615 · dernière : OK · prochaine 18/11 23:00" (≤ 128 chars)."""
    mode = tr("gui.mode.hq" if config.is_hq else "gui.mode.site", lang)
    when = (
        tr("gui.tray.next", lang, when=next_run.strftime("%d/%m %H:%M"))
        if next_run
        else tr("gui.tray.no_next", lang)
    )
    parts = [
        f"{tr('gui.app', lang)} {mode} {config.site}".strip(),
        tr(f"gui.tray.state.{state.value}", lang),
        when,
    ]
    text = " · ".join(parts)
    return text if len(text) <= TOOLTIP_MAX else text[: TOOLTIP_MAX - 1] + "…"


class TrayPort(Protocol):
    """What the shell needs from a tray; the pystray one below, a fake in tests."""

    def start(self) -> None: ...

    def show(self, state: TrayState, text: str) -> None: ...

    def notify(self, text: str) -> None: ...

    def stop(self) -> None: ...


class Tray:
    """A pystray icon whose menu puts ``Command``s on ``commands``."""

    def __init__(self, commands: queue.Queue[Command], lang: str) -> None:
        self.commands = commands
        self.lang = lang
        self.running = False  # enables "Arrêter"; read by pystray's thread
        self.icon: Any = None
        self.thread: threading.Thread | None = None

    def _send(self, command: Command) -> Any:
        def action(icon: Any = None, item: Any = None) -> None:
            self.commands.put(command)

        return action

    def build_menu(self) -> Any:
        import pystray

        items = []
        for key, command, default in MENU:
            enabled: Any = True
            if command is Command.STOP:
                enabled = lambda item: self.running  # noqa: E731 - pystray wants a callable
            elif command is Command.RUN:
                enabled = lambda item: not self.running  # noqa: E731
            items.append(
                pystray.MenuItem(
                    tr(key, self.lang), self._send(command), default=default, enabled=enabled
                )
            )
        return pystray.Menu(*items)

    def start(self) -> None:
        import pystray

        self.icon = pystray.Icon(
            "synchro", draw_icon(TrayState.IDLE), tr("gui.app", self.lang), self.build_menu()
        )
        self.thread = threading.Thread(target=self._run, name="tray", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.icon.run()
        except Exception:  # no tray on this desktop: the windows still work
            log.exception("the tray icon stopped")

    def show(self, state: TrayState, text: str) -> None:
        self.running = state is TrayState.RUNNING
        if self.icon is None:
            return
        self.icon.icon = draw_icon(state)
        self.icon.title = text[:TOOLTIP_MAX]
        try:
            self.icon.update_menu()
        except Exception:  # backends without a menu
            log.debug("tray menu update not supported")

    def notify(self, text: str) -> None:
        if self.icon is not None and getattr(self.icon, "HAS_NOTIFICATION", False):
            try:
                self.icon.notify(text[:NOTIFICATION_MAX], tr("gui.app", self.lang))
            except Exception:
                log.debug("tray notification failed", exc_info=True)

    def stop(self) -> None:
        if self.icon is not None:
            self.icon.stop()
        if self.thread is not None:
            self.thread.join(timeout=5)
