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

    def relabel(self, lang: str) -> None:
        """The menu in another language (the settings changed it)."""
        ...

    def stop(self) -> None: ...


class Tray:
    """A pystray icon whose menu puts ``Command``s on ``commands``.

    pystray's X11 backend makes a caller wait until its own loop has applied a change, and
    is not safe before that loop runs; so the Tk thread never calls pystray: ``show``,
    ``notify`` and ``stop`` queue the change for a small updater thread that waits for the
    icon to be ready first. The Tk thread never waits on the tray.
    """

    def __init__(self, commands: queue.Queue[Command], lang: str) -> None:
        self.commands = commands
        self.lang = lang
        self.running = False  # enables "Arrêter"; read by pystray's thread
        self.icon: Any = None
        self.thread: threading.Thread | None = None
        self.updater: threading.Thread | None = None
        self.updates: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self.ready = threading.Event()
        self.stopping = threading.Event()

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
        self.updater = threading.Thread(
            target=self._apply_updates, name="tray-updates", daemon=True
        )
        self.thread.start()
        self.updater.start()

    def _run(self) -> None:
        try:
            self.icon.run(setup=self._setup)
        except Exception:  # no tray on this desktop: the windows still work
            log.exception("the tray icon stopped")

    def _setup(self, icon: Any) -> None:
        icon.visible = True
        self.ready.set()

    def _wait_ready(self) -> bool:
        """Until pystray's loop runs in its thread (its calls are dispatched to it)."""
        while not self.ready.wait(0.05):
            if self.stopping.is_set() or not (self.thread and self.thread.is_alive()):
                return False
        # pystray records its loop thread just after "ready"; calls made before that are not
        # routed to the loop on X11. Wait for it (bounded: other backends may not record it).
        for _ in range(500):
            if getattr(self.icon, "_thread", None) is self.thread or self.stopping.is_set():
                break
            if self.thread is None or not self.thread.is_alive():
                return False
            self.thread.join(0.01)
        return not self.stopping.is_set()

    def _apply_updates(self) -> None:
        ready = self._wait_ready()
        while True:
            update = self.updates.get()
            if update is None:
                if ready:
                    self.icon.stop()
                return
            kind, payload = update
            try:
                if kind == "sync":
                    payload.set()
                elif not ready:
                    continue
                elif kind == "show":
                    state, text = payload
                    self.icon.icon = draw_icon(state)
                    self.icon.title = text[:TOOLTIP_MAX]
                    self.icon.update_menu()
                elif kind == "menu":
                    self.icon.menu = self.build_menu()
                elif kind == "notify" and getattr(self.icon, "HAS_NOTIFICATION", False):
                    self.icon.notify(payload[:NOTIFICATION_MAX], tr("gui.app", self.lang))
            except Exception:  # a tray that cannot show something must not stop the program
                log.debug("tray update %s failed", kind, exc_info=True)

    def show(self, state: TrayState, text: str) -> None:
        self.running = state is TrayState.RUNNING
        self.updates.put(("show", (state, text)))

    def notify(self, text: str) -> None:
        self.updates.put(("notify", text))

    def relabel(self, lang: str) -> None:
        self.lang = lang
        self.updates.put(("menu", None))

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every change queued so far is applied (for tests)."""
        done = threading.Event()
        self.updates.put(("sync", done))
        return done.wait(timeout)

    def stop(self) -> None:
        self.stopping.set()
        self.updates.put(None)
        for thread in (self.updater, self.thread):
            if thread is not None:
                thread.join(timeout=5)
