"""synchro.gui: the tray icon and the windows of the manual (FreeSimpleGUI + pystray).

``main(args)`` is what ``synchro`` with no command runs: it logs to the node's log folder,
builds the application's ``GuiBackend`` and runs the ``GuiShell`` loop on this (main) thread
until Quitter. Importing this package imports no toolkit; ``main`` does, lazily.
"""

from __future__ import annotations

import argparse
import logging


def main(args: argparse.Namespace) -> int:
    """Run the tray program with the node chosen by ``--config`` (or the default folders)."""
    from synchro.errors import SynchroError
    from synchro.gui.shell import GuiShell
    from synchro.gui_backend import AppBackend
    from synchro.log import setup_logging, shutdown_logging
    from synchro.platform.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None))
    setup_logging(paths.log_dir, console=True)
    log = logging.getLogger("synchro.gui")
    backend: AppBackend | None = None
    try:
        backend = AppBackend(paths)
        GuiShell(backend).run()
        return 0
    except SynchroError as exc:
        log.error("synchro: %s", exc)
        _fatal(str(exc))
        return 1
    except Exception as exc:  # the log has the traceback; the user gets one line
        log.exception("the GUI stopped on an unexpected error")
        _fatal(f"Erreur inattendue ({type(exc).__name__}) : voir le journal {paths.log_dir}.")
        return 1
    finally:
        if backend is not None:
            backend.close()
        shutdown_logging()


def _fatal(text: str) -> None:
    """Tell the user why the program cannot go on (a window: there may be no console)."""
    try:
        import FreeSimpleGUI as sg

        sg.popup_error(text, title="Synchronisation", keep_on_top=True)
    except Exception:  # no display at all: the log and the exit code say it
        logging.getLogger("synchro.gui").debug("no display for the error window", exc_info=True)
