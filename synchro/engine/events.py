"""Small frozen events the engine emits; the GUI and the CLI progress bar consume them.

The engine never calls a consumer's code other than ``emit(event)``, which must only
enqueue (``queue.Queue.put``) or print: it runs on the engine's thread.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from synchro.errors import Say, SynchroError, text_in
from synchro.i18n import render, tr

if TYPE_CHECKING:
    from synchro.reports import RowError


@dataclass(frozen=True)
class Progress:
    """Rows and bytes done in a phase (capture, send, wait, receive, apply, publish)."""

    phase: str
    site: str
    rows: int = 0
    bytes: int = 0
    detail: str = ""
    say: Say | None = None  # ``detail`` as words of the locales (shown in the UI language)

    def detail_in(self, lang: str) -> str:
        """``detail`` in ``lang`` (as it is when it has no words: a table, a file)."""
        return render(self.say, lang) if self.say is not None else self.detail


@dataclass(frozen=True)
class StateChanged:
    """``running``, ``ok``, ``failed``, ``stopped`` or ``idle`` (tray icon states)."""

    state: str
    message: str = ""
    report_id: int | None = None
    say: Say | None = None  # the error's words, when it gave them (no Rapport row to read)
    row: RowError | None = None  # the finished Rapport row whose error ``message`` is

    def text_in(self, lang: str) -> str:
        """``message`` in ``lang``: the row's error, else the words, else as it is."""
        if self.row is not None:
            return self.row.text_in(lang)
        return render(self.say, lang) if self.say is not None else self.message


@dataclass(frozen=True)
class Status:
    """A line for the status bar: ``11/18 17:39:02 : Démarrage en mode siège.``"""

    message: str
    at: dt.datetime = field(default_factory=dt.datetime.now)
    key: str = ""  # in locales/engine.json: the line in another language (``text``)
    values: Mapping[str, object] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.at:%m/%d %H:%M:%S} : {self.message}"

    def text(self, lang: str) -> str:
        """The message in ``lang`` (the French one when it has no key)."""
        if not self.key or lang == "fr":
            return self.message
        return tr(self.key, lang, **{k: _word(v, lang) for k, v in self.values.items()})


def said(key: str, /, **values: object) -> Status:
    """A status line known by its key (``locales/engine.json``); ``message`` is French."""
    return Status(
        tr(key, "fr", **{k: _word(v, "fr") for k, v in values.items()}), key=key, values=values
    )


def _word(value: object, lang: str) -> object:
    """A report state (``State.OK``...), an error that gave its words (``errors.text_in``),
    a list of words (``Say``) or a value that says itself (``text_in(lang)``: a Rapport
    row's error) in the UI's words; anything else as it is."""
    if isinstance(value, enum.Enum):
        return tr(f"reports.state.{value.name}", lang) if lang != "fr" else value.value
    if isinstance(value, SynchroError) and value.say is not None:
        return text_in(value, lang)
    said_in = getattr(value, "text_in", None)
    if callable(said_in):
        return said_in(lang)
    if isinstance(value, list):  # words of the locales (``i18n.render``'s rule)
        return " ; ".join(render(item, lang) for item in value)
    return value


def progress(
    phase: str, site: str, key: str, /, *, done: tuple[int, int] = (0, 0), **values: object
) -> Progress:
    """A ``Progress`` (``done``: rows and bytes) whose detail is words of
    ``locales/engine.json`` (``detail`` their French)."""
    rows, size = done
    detail = tr(key, "fr", **values)
    return Progress(phase, site, rows, size, detail, say=(key, dict(values)))


def state_changed(
    state: str, report_id: int | None, row: RowError | None, key: str, /, **values: object
) -> StateChanged:
    """A run's or round's state: the error of its finished Rapport ``row`` (said in any
    language), else the words ``key`` of ``locales/engine.json``."""
    if row is not None and row.record.error:
        return StateChanged(state, row.record.error, report_id, row=row)
    return StateChanged(state, tr(key, "fr", **values), report_id, say=(key, dict(values)))


Event = Progress | StateChanged | Status
Emit = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An ``emit`` that drops everything (tests, batch use)."""
