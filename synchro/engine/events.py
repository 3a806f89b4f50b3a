"""Small frozen events the engine emits; the GUI and the CLI progress bar consume them.

The engine never calls a consumer's code other than ``emit(event)``, which must only
enqueue (``queue.Queue.put``) or print: it runs on the engine's thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """Rows and bytes done in a phase (capture, send, wait, receive, apply, publish)."""

    phase: str
    site: str
    rows: int = 0
    bytes: int = 0
    detail: str = ""


@dataclass(frozen=True)
class StateChanged:
    """``running``, ``ok``, ``failed``, ``stopped`` or ``idle`` (tray icon states)."""

    state: str
    message: str = ""
    report_id: int | None = None


@dataclass(frozen=True)
class Status:
    """A line for the status bar: ``11/18 17:39:02 : Démarrage en mode siège.``"""

    message: str
    at: dt.datetime = field(default_factory=dt.datetime.now)

    def line(self) -> str:
        return f"{self.at:%m/%d %H:%M:%S} : {self.message}"


Event = Progress | StateChanged | Status
Emit = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An ``emit`` that drops everything (tests, batch use)."""
