"""An in-memory ``GuiBackend`` and tray for the GUI tests (the real one is synchro.app).

It records what the windows asked (``calls``, ``saved``) and lets a test play the engine:
``start_run()``, ``progress(...)``, ``finish_run(state)`` put the same events on the queue
as the application would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from synchro.config.model import Config, EmailSettings, HQSettings, Role
from synchro.errors import ConfigError, SynchroError
from synchro.gui.base import Controller
from synchro.gui.ports import (
    STATE_FAILED,
    STATE_OK,
    STATE_RUNNING,
    STATE_STOPPED,
    GuiEvent,
    Probe,
    Progress,
    ReportDetail,
    ReportRow,
    ReportsChanged,
    StateChanged,
    StatusMessage,
    TrayState,
)
from synchro.gui.shell import GuiShell

C = TypeVar("C", bound=Controller)
T0 = dt.datetime(2005, 12, 6, 15, 15, 11)


def manual_rows() -> list[ReportRow]:
    """The four lines of the manual's Rapport, newest first."""
    return [
        ReportRow("4", "3615", T0, None, STATE_RUNNING),
        ReportRow(
            "3",
            "3615",
            dt.datetime(2005, 12, 6, 9, 25, 44),
            dt.datetime(2005, 12, 6, 10, 18, 27),
            STATE_OK,
            rows=12345,
        ),
        ReportRow(
            "2",
            "3615",
            dt.datetime(2005, 12, 6, 9, 20, 7),
            dt.datetime(2005, 12, 6, 9, 21, 28),
            STATE_STOPPED,
            rows=10,
        ),
        ReportRow(
            "1",
            "3615",
            dt.datetime(2005, 12, 5, 23, 0, 0),
            dt.datetime(2005, 12, 6, 3, 2, 14),
            STATE_FAILED,
            errors=1,
        ),
    ]


class FakeBackend:
    def __init__(self, tmp: Path, config: Config | None = None, *, setup: bool = False) -> None:
        self.events: queue.Queue[GuiEvent] = queue.Queue()
        self._config = config or Config(
            role=Role.HQ,
            site="3615",
            last_sync=dt.datetime(2005, 12, 6, 23, 0, 0),
            hq=HQSettings(servers=1),
        )
        self.setup = setup
        self.saved: list[Config] = []
        self.calls: list[str] = []
        self.running = False
        self.rows: list[ReportRow] = []
        self.connection_result: str | SynchroError = "Connexion réussie."
        self.connection_ok = True  # False: the login worked, the schema check found problems
        self.mail_result: str | SynchroError = "Message de test envoyé."
        self.tables: list[str] | SynchroError = ["articles", "clients", "ventes"]
        self.drivers = ["SQLite3", "PostgreSQL Unicode"]
        self.autostart_on = False
        self.log = tmp / "synchro.log"
        self.exported: list[tuple[Path, str]] = []
        self.tested: list[object] = []
        self.held: str | None = None  # what the last automatic run held (mass deletes)
        self.take_back_offered = False  # the held run found a restored database
        self.save_error: Exception | None = None

    # --- GuiBackend --------------------------------------------------------------------
    def needs_setup(self) -> bool:
        return self.setup

    def config(self) -> Config:
        return self._config

    def save_config(self, config: Config) -> None:
        if self.save_error is not None:  # what saving met (a real failure, made by the test)
            raise self.save_error
        if self.running:
            raise SynchroError("Refusé : une synchronisation est en cours.")
        self.saved.append(config)
        self._config = config
        self.setup = False

    def apply_connection_token(self, config: Config, token: str) -> Config:
        self.calls.append("apply_connection_token")
        if token != "SYNCHRO1-GOOD-TOKEN":
            raise ConfigError("jeton de connexion invalide")
        site = dataclasses.replace(
            config.site_settings, hq_address="hq.example.com", secret="s3cret"
        )
        return dataclasses.replace(config, site_settings=site)

    def run_now(self, *, take_back: bool = False, send: bool = False) -> None:
        self.calls.append(
            "run_now:take_back" if take_back else "run_now:send" if send else "run_now"
        )
        self.start_run()

    def held_changes(self) -> str | None:
        return self.held

    def can_take_back(self) -> bool:
        return self.take_back_offered

    def stop(self) -> None:
        self.calls.append("stop")

    def raz(self) -> None:
        self.calls.append("raz")

    def is_running(self) -> bool:
        return self.running

    def next_run(self) -> dt.datetime | None:
        return dt.datetime(2005, 12, 6, 23, 0)

    def test_connection(self, address: str) -> Probe:
        self.tested.append(address)
        if isinstance(self.connection_result, SynchroError):
            raise self.connection_result
        return Probe(self.connection_ok, self.connection_result)

    def send_test_email(self, settings: EmailSettings) -> str:
        self.tested.append(settings)
        if isinstance(self.mail_result, SynchroError):
            raise self.mail_result
        return self.mail_result

    def list_tables(self, connection: str) -> list[str]:
        self.tested.append(connection)
        if isinstance(self.tables, SynchroError):
            raise self.tables
        return self.tables

    def odbc_drivers(self) -> list[str]:
        return self.drivers

    def reports(self) -> list[ReportRow]:
        return list(self.rows)

    def report_detail(self, report_id: str) -> ReportDetail:
        row = next(r for r in self.rows if r.id == report_id)
        return ReportDetail(
            row,
            message=f"détail {report_id}",
            quarantined=("ventes (7) : NOT NULL constraint failed",),
        )

    def export_report_csv(self, path: Path, lang: str) -> None:
        path.write_text("Etablissement;Début;Fin;Etat\n", encoding="utf-8")
        self.exported.append((path, lang))

    def autostart(self) -> bool:
        return self.autostart_on

    def log_path(self) -> Path:
        return self.log

    # --- playing the engine ------------------------------------------------------------
    def start_run(self) -> None:
        self.running = True
        self.rows.insert(
            0, ReportRow(str(len(self.rows) + 10), self._config.site, T0, None, STATE_RUNNING)
        )
        self.events.put(StateChanged(TrayState.RUNNING))
        self.events.put(ReportsChanged())

    def progress(self, rows: int, size: int, phase: str, fraction: float | None = None) -> None:
        self.events.put(Progress(rows, size, phase, fraction))

    def finish_run(self, state: str, message: str = "") -> None:
        self.running = False
        first = self.rows[0]
        self.rows[0] = dataclasses.replace(
            first, ended=T0 + dt.timedelta(minutes=5), state=state, rows=42
        )
        tray = {STATE_OK: TrayState.OK, STATE_FAILED: TrayState.FAILED}.get(
            state, TrayState.STOPPED
        )
        self.events.put(StateChanged(tray, message))
        self.events.put(ReportsChanged())

    def say(self, text: str) -> None:
        self.events.put(StatusMessage(text, T0))


class FakeTray:
    """Records what the shell shows in the tray."""

    def __init__(self) -> None:
        self.started = False
        self.stopped = False
        self.shown: list[tuple[TrayState, str]] = []
        self.notes: list[str] = []
        self.langs: list[str] = []

    def start(self) -> None:
        self.started = True

    def show(self, state: TrayState, text: str) -> None:
        self.shown.append((state, text))

    def notify(self, text: str) -> None:
        self.notes.append(text)

    def relabel(self, lang: str) -> None:
        self.langs.append(lang)

    def stop(self) -> None:
        self.stopped = True


# --- driving real windows -------------------------------------------------------------------


def click(shell: GuiShell, window: Any, key: str, timeout_ms: int = 400) -> None:
    """Press the real Tk widget of ``key`` (a disabled button ignores it, like a user's click)
    while the shell reads the windows, then let the shell handle what it produced."""
    window.TKroot.after(0, window[key].Widget.invoke)
    shell.step(timeout_ms)
    settle(shell)


def press(shell: GuiShell, window: Any, keysym: str, key: str | None = None) -> None:
    """Send a key press (``Return``, ``Escape``) to the window's focused field."""
    widget = window[key].Widget if key else window.TKroot

    def send() -> None:
        widget.focus_force()
        window.TKroot.update()
        widget.event_generate(f"<KeyPress-{keysym}>")

    window.TKroot.after(0, send)
    shell.step(400)
    settle(shell)


def settle(shell: GuiShell, steps: int = 3) -> None:
    """A few short turns of the loop: queued commands, backend events and redraws."""
    for _ in range(steps):
        shell.step(10)


def wait_for(shell: GuiShell, condition: Callable[[], bool], steps: int = 200) -> None:
    """Turn the loop until ``condition`` holds (read with timeouts, never a bare sleep)."""
    for _ in range(steps):
        if condition():
            return
        shell.step(25)
    raise AssertionError("condition not reached")


def only(shell: GuiShell, kind: type[C]) -> C:
    found = [c for c in shell.controllers if isinstance(c, kind) and not c.closed]
    assert len(found) == 1, f"expected one {kind.__name__}, open: {shell.controllers}"
    return found[0]


def kinds(shell: GuiShell) -> list[str]:
    return sorted(type(c).__name__ for c in shell.controllers if not c.closed)


def text_of(window: Any, key: str) -> str:
    element = window[key]
    return str(element.get() if hasattr(element, "get") else element.DisplayText)


@contextlib.contextmanager
def started_shell(backend: Any) -> Iterator[GuiShell]:
    """The tray program's windows on ``backend`` (its clock fixed, links opened nowhere),
    started and settled; quit at the end."""
    shell = GuiShell(
        backend,
        tray=FakeTray(),
        opener=lambda p: None,
        clock=lambda: dt.datetime(2026, 11, 18, 17, 39, 2),
    )
    shell.start()
    settle(shell)
    try:
        yield shell
    finally:
        shell.quit()
