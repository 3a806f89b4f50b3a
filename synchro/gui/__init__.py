"""synchro.gui: the tray icon and the windows of the manual (FreeSimpleGUI + pystray).

``main(args)`` is what ``synchro`` with no command runs: one instance per configuration (a
second start asks the running one to show its settings, then exits), logs in the node's log
folder, the application's ``GuiBackend``, and the ``GuiShell`` loop on this (main) thread
until Quitter. Importing this package imports no toolkit; ``main`` does, lazily.
"""

from __future__ import annotations

import argparse
import logging
import queue
from collections.abc import Mapping
from typing import Any, Protocol


def main(args: argparse.Namespace) -> int:
    """Run the tray program with the node chosen by ``--config`` (or the default folders)."""
    from synchro.config.store import language_of
    from synchro.errors import SynchroError, text_in
    from synchro.gui.base import unexpected
    from synchro.gui.shell import GuiShell
    from synchro.gui_backend import AppBackend
    from synchro.log import setup_logging, shutdown_logging
    from synchro.platform.paths import resolve_paths
    from synchro.platform.single_instance import ControlServer, InstanceLock

    paths = resolve_paths(getattr(args, "config", None)).ensure()
    setup_logging(paths.log_dir, console=True)
    log = logging.getLogger("synchro.gui")
    lock = InstanceLock(paths.lock_file)
    if not lock.acquire():  # already running: show that one, as a click on its icon would
        log.info("Synchro already runs for %s: asking it to show itself", paths.config_file)
        lock.notify_running("show")
        shutdown_logging()
        return 0
    backend: AppBackend | None = None
    try:
        backend = AppBackend(paths)
        with ControlServer(paths.lock_file, control_handler(backend)):
            GuiShell(backend).run()
        return 0
    except SynchroError as exc:
        log.error("synchro: %s", exc)
        _fatal(text_in(exc, language_of(paths.config_file)))
        return 1
    except Exception as exc:  # the log has the traceback; the user gets one line
        _fatal(unexpected(language_of(paths.config_file), exc, paths.log_dir))
        return 1
    finally:
        if backend is not None:
            backend.close()
        lock.release()
        shutdown_logging()


class _Backend(Protocol):
    """What the control handler needs (``synchro.gui_backend.AppBackend`` has it)."""

    @property
    def events(self) -> queue.Queue[Any]: ...

    @property
    def synchro(self) -> Any: ...


def control_handler(backend: _Backend) -> Any:
    """The local control channel of the tray program (runs in the channel's thread: it only
    enqueues). ``show`` opens the settings; the others go to the node
    (``application.Synchro``) once it exists."""
    from synchro.errors import ErrorKind, SynchroError
    from synchro.gui.ports import ShowRequested

    def handle(cmd: str, args: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if cmd == "show":
            backend.events.put(ShowRequested())
            return {"shown": True}
        if backend.synchro is None:
            raise SynchroError(say=("gui.msg.not_set_up", {}), kind=ErrorKind.CONFIG)
        reply: Mapping[str, Any] | None = backend.synchro.control(cmd, args)
        return reply

    return handle


def _fatal(text: str) -> None:
    """Tell the user why the program cannot go on (a window: there may be no console)."""
    try:
        import FreeSimpleGUI as sg

        sg.popup_error(text, title="Synchronisation", keep_on_top=True)
    except Exception:  # no display at all: the log and the exit code say it
        logging.getLogger("synchro.gui").debug("no display for the error window", exc_info=True)
