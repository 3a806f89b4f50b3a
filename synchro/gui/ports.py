"""What the windows need from the application: the ``GuiBackend`` protocol and its events.

The GUI never imports the engine. ``synchro.app`` implements ``GuiBackend``; tests use a small
in-memory one. Rules the implementation must keep:

- ``run_now``, ``stop``, ``raz``, ``save_config`` return at once: the application runs the
  engine in its own threads and reports through ``events`` (a ``queue.Queue`` of the frozen
  events below). The GUI drains that queue from the Tk thread between ``window.read`` calls.
- ``test_connection``, ``send_test_email`` and ``list_tables`` are probes that may take
  seconds: the GUI calls them from a short-lived worker thread, so they must be thread-safe
  and must not touch the engine's state. They return a short success text or raise
  ``SynchroError`` whose ``str()`` is the exact reason, in the UI language when possible.
- Anything else may raise ``SynchroError`` (shown as a message) and nothing else on purpose;
  other exceptions are logged and shown as a short generic message.
"""

from __future__ import annotations

import datetime as dt
import queue
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from synchro.config.model import Config, EmailSettings

# The Etat column words of the manual (values of ``synchro.reports.State``).
STATE_RUNNING = "En cours..."
STATE_OK = "OK"
STATE_STOPPED = "Arrêt"
STATE_FAILED = "Echec"


class TrayState(StrEnum):
    """The five looks of the tray icon."""

    IDLE = "idle"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ReportRow:
    """One line of the Rapport window (one run of one establishment)."""

    id: str
    site: str  # Etablissement
    started: dt.datetime  # Début
    ended: dt.datetime | None  # Fin (None while En cours...)
    state: str  # Etat: STATE_RUNNING, STATE_OK, STATE_STOPPED or STATE_FAILED
    rows: int = 0
    errors: int = 0


@dataclass(frozen=True)
class ReportDetail:
    """What a double-click on a Rapport row shows."""

    row: ReportRow
    message: str = ""  # error text or summary
    # one line per row not applied exactly (refused, stored differently, set aside):
    # table, key, and the reason (differing column, sent and stored values)
    quarantined: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()  # one line per conflict: table, key, winner, loser
    tables: tuple[str, ...] = ()  # optional per-table counts, one line each


@dataclass(frozen=True)
class StateChanged:
    """The node's state changed (tray icon, ARRETER/VALIDER availability)."""

    state: TrayState
    message: str = ""  # optional text for the status bar and the failure notification


@dataclass(frozen=True)
class Progress:
    """Progress of the current run: rows and bytes so far, phase text in the UI language."""

    rows: int = 0
    bytes: int = 0
    phase: str = ""  # e.g. "3615 : envoi"
    fraction: float | None = None  # 0..1 when known, else the bar just moves


@dataclass(frozen=True)
class StatusMessage:
    """A line for the status bar, e.g. "Démarrage en mode siège." (time added by the GUI)."""

    text: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class ReportsChanged:
    """The list of reports changed (new run, state change): the Rapport window refreshes."""


@dataclass(frozen=True)
class ShowRequested:
    """The program was started again for this configuration: show the settings (after the
    password), as a click on the tray icon does."""


GuiEvent = StateChanged | Progress | StatusMessage | ReportsChanged | ShowRequested


@dataclass(frozen=True)
class Probe:
    """Result of a probe run off the Tk thread, posted back to the window."""

    ok: bool
    text: str
    items: tuple[str, ...] = field(default=())


class GuiBackend(Protocol):
    """Everything the tray and the windows ask of the application."""

    events: queue.Queue[GuiEvent]

    def needs_setup(self) -> bool:
        """True when no configuration exists yet: the first-run wizard opens."""
        ...

    def config(self) -> Config:
        """The current settings (secrets included, in memory)."""
        ...

    def save_config(self, config: Config) -> None:
        """VALIDER: save, apply (autostart, language...) and restart the FTP server.

        Raises ``SynchroError`` with a message when refused (e.g. during a run).
        """
        ...

    def apply_connection_token(self, config: Config, token: str) -> Config:
        """Wizard, mode Serveur: return ``config`` completed from a Siège's connection token
        (address, port, secret, certificate, group key). Raises ``ConfigError`` if invalid."""
        ...

    def run_now(self, *, take_back: bool = False, send: bool = False) -> None:
        """MANUELLE / Synchroniser maintenant: start a run (or round) now; after a restore,
        ``take_back``: *Reprendre les données du groupe* first, ``send``: Envoyer (the
        restored database sent as it is)."""
        ...

    def can_take_back(self) -> bool:
        """Whether the last run or round held a restored database, which *Reprendre les
        données du groupe* settles."""
        ...

    def held_changes(self) -> str | None:
        """What the last automatic run or round said of the changes it held — mass deletes,
        a restored database — which MANUELLE sends; None when it held none."""
        ...

    def stop(self) -> None:
        """ARRETER: cancel the current run at its next safe point."""
        ...

    def raz(self) -> None:
        """RAZ: restart the time counters (Temps maximum de réception) of the current round."""
        ...

    def is_running(self) -> bool: ...

    def next_run(self) -> dt.datetime | None:
        """When the next automatic run starts, or None when none is scheduled."""
        ...

    def test_connection(self, address: str) -> Probe:
        """Test button of Adresse du siège: log in to the Siège; raise with the exact reason."""
        ...

    def send_test_email(self, settings: EmailSettings) -> str:
        """Test button of the Email dialog: send a test message with these settings."""
        ...

    def list_tables(self, connection: str) -> list[str]:
        """Wizard Test button: open the database and list the tables found."""
        ...

    def odbc_drivers(self) -> list[str]:
        """``pyodbc.drivers()``, or an empty list when ODBC is not available."""
        ...

    def reports(self) -> list[ReportRow]:
        """Every report row, newest first."""
        ...

    def report_detail(self, report_id: str) -> ReportDetail: ...

    def export_report_csv(self, path: Path, lang: str) -> None:
        """Write the reports to a CSV file (headers in ``lang``)."""
        ...

    def autostart(self) -> bool:
        """Whether the program really starts with the system (the checkbox tells the truth)."""
        ...

    def log_path(self) -> Path:
        """The log file the tray's "open log" item shows."""
        ...
