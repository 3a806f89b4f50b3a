"""The real ``GuiBackend``: the windows' view of one node (engine events → GUI events).

It imports ``synchro.gui.ports`` (plain dataclasses, no toolkit) and ``application.Synchro``;
it never imports FreeSimpleGUI or pystray, so it is usable and testable without a display.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synchro import application
from synchro.application import Synchro
from synchro.config.model import Config, EmailSettings
from synchro.config.store import load_config, save_config
from synchro.errors import ErrorKind, SynchroError
from synchro.gui.ports import (
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
from synchro.i18n import tr
from synchro.platform.autostart import Autostart, autostart_for_platform, default_command
from synchro.platform.paths import NodePaths
from synchro.report_summary import cause_lines, detail_lines, reason_of
from synchro.reports import RunRecord, entry_error_in, error_in

REPORT_ROWS = 200  # rows of the Rapport window (the newest)
PHASES = ("capture", "send", "wait", "receive", "apply", "publish")
_TRAY = {
    "running": TrayState.RUNNING,
    "ok": TrayState.OK,
    "failed": TrayState.FAILED,
    "stopped": TrayState.STOPPED,
    "idle": TrayState.IDLE,
}


def gui_event(event: application.Event, lang: str = "fr") -> list[GuiEvent]:
    """The GUI events one engine event becomes (phase words in the UI language)."""
    if isinstance(event, application.Progress):
        phase = tr(f"app.phase.{event.phase}", lang) if event.phase in PHASES else event.phase
        detail = event.detail_in(lang)
        text = f"{event.site} : {phase}" + (f" ({detail})" if detail else "")
        return [Progress(rows=event.rows, bytes=event.bytes, phase=text)]
    if isinstance(event, application.StateChanged):
        return [
            StateChanged(
                _TRAY.get(event.state, TrayState.IDLE),
                event.text_in(lang),
            ),
            ReportsChanged(),
        ]
    if event.message == "show":
        return []
    return [StatusMessage(event.text(lang), event.at)]


def report_row(record: RunRecord) -> ReportRow:
    errors = record.quarantined + (1 if record.error else 0)
    return ReportRow(
        str(record.id),
        record.site,
        record.started,
        record.ended,
        record.state.value,
        record.rows_sent + record.rows_received,
        errors,
    )


def _lines(items: Any, fmt: Callable[[dict[str, Any]], str]) -> tuple[str, ...]:
    return tuple(fmt(i) for i in items if isinstance(i, dict)) if isinstance(items, list) else ()


SHOWN = 60  # characters of a sent or stored value in a detail line
_QUARANTINE_KINDS = ("refused", "mismatch", "held", "locked")


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _json_list(text: Any) -> list[Any]:
    try:
        found = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def quarantine_line(q: dict[str, Any], lang: str) -> str:
    """One row not applied exactly, in the UI language, from the quarantine's fields: the
    table, the key, what happened and, for a value stored differently, each column with
    the sent and stored values. A refusal keeps the error text as it was recorded (the
    database's or the writer's own words), with the values sent."""
    kind = str(q.get("kind") or "refused")
    what = tr(f"app.detail.kind.{kind if kind in _QUARANTINE_KINDS else 'refused'}", lang)
    columns = [c for c in _json_list(q.get("columns_json")) if isinstance(c, dict)]
    parts = [
        tr(
            "app.detail.column",
            lang,
            column=c.get("column"),
            sent=_shown(c.get("sent")),
            stored=_shown(c.get("stored")),
        )
        for c in columns[:3]
    ]
    if len(columns) > 3:
        parts.append(tr("app.detail.more_columns", lang, n=len(columns) - 3))
    if not parts:
        parts.append(entry_error_in(q, lang))
        sent = q.get("row_json")
        if isinstance(sent, str) and sent:
            parts.append(tr("app.detail.sent", lang, sent=_shown(sent)))
    return tr(
        "app.detail.quarantined",
        lang,
        table=q.get("tbl"),
        key=q.get("key_json"),
        what=what,
        why=" ; ".join(parts) if lang == "fr" else "; ".join(parts),
    )


class AppBackend:
    """Implements ``synchro.gui.ports.GuiBackend`` over an ``application.Synchro`` opened when
    settings exist."""

    def __init__(
        self,
        paths: NodePaths,
        *,
        autostart: Autostart | None = None,
        synchro_factory: Callable[..., Synchro] = Synchro.open,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.paths = paths
        self.events: queue.Queue[GuiEvent] = queue.Queue()
        self._autostart = autostart
        self._factory = synchro_factory
        self.now = now
        self.synchro: Synchro | None = None
        if paths.config_file.exists():
            self._start(load_config(paths.config_file))

    def _start(self, config: Config) -> None:
        self.synchro = self._factory(config, self.paths, now=self.now, listeners=(self._forward,))
        self.synchro.serve()

    def _forward(self, event: application.Event) -> None:
        lang = self.config().language
        for item in gui_event(event, lang):
            failed = isinstance(item, StateChanged) and item.state is TrayState.FAILED
            if failed and isinstance(event, application.StateChanged):
                item = StateChanged(TrayState.FAILED, self._failure_note(event, lang))
            self.events.put(item)

    def _failure_note(self, event: application.StateChanged, lang: str) -> str:
        """The status line and tray note of a failure: what sort it was, from the kind
        stored with its Rapport row (final before the event), in the UI language."""
        plain = event.text_in(lang)
        if self.synchro is None or event.report_id is None:
            return plain
        try:
            record = self._record(event.report_id)
        except (KeyError, SynchroError):
            return plain
        reason = tr(f"reports.short.{reason_of(record)}", lang)
        error = error_in(record, lang) if record.error == event.message else event.message
        return tr("app.failed_note", lang, reason=reason, error=error)

    def _record(self, report_id: int) -> RunRecord:
        """One Rapport row."""
        return self._synchro().report_row(report_id)

    def close(self) -> None:
        if self.synchro is not None:
            self.synchro.close()
            self.synchro = None

    def _synchro(self) -> Synchro:
        if self.synchro is None:
            raise SynchroError(say=("gui.msg.not_set_up", {}), kind=ErrorKind.CONFIG)
        return self.synchro

    # -- GuiBackend -------------------------------------------------------------------------

    def needs_setup(self) -> bool:
        return self.synchro is None

    def config(self) -> Config:
        return self.synchro.config if self.synchro is not None else Config()

    def save_config(self, config: Config) -> None:
        if self.synchro is None:  # the wizard's last page
            save_config(config, self.paths.config_file)
            self._start(config)
        else:
            self.synchro.save_config(config)
        self._apply_autostart(config.start_with_windows)

    def _apply_autostart(self, wanted: bool) -> None:
        auto = self._autostart or autostart_for_platform()
        if wanted and not auto.is_enabled():
            auto.enable(default_command(["--config", str(self.paths.config_file.absolute())]))
        elif not wanted and auto.is_enabled():
            auto.disable()

    def apply_connection_token(self, config: Config, token: str) -> Config:
        from synchro.enrolment import join_with_token

        return join_with_token(config, token)

    def run_now(self, *, take_back: bool = False, send: bool = False) -> None:
        self._synchro().run_now(take_back=take_back, send=send)

    def can_take_back(self) -> bool:
        return self.synchro.can_take_back() if self.synchro is not None else False

    def held_changes(self) -> str | None:
        if self.synchro is None:
            return None
        return self.synchro.held_changes(self.config().language)

    def stop(self) -> None:
        self._synchro().stop()

    def raz(self) -> None:
        self._synchro().raz()

    def is_running(self) -> bool:
        return self.synchro is not None and self.synchro.is_running()

    def next_run(self) -> dt.datetime | None:
        return self.synchro.next_run() if self.synchro is not None else None

    def test_connection(self, address: str) -> Probe:
        """Test: log in to the Siège at ``address``; a Serveur also checks the schemas
        (not ok when they found problems: the answer shows in red)."""
        tested = application.test_connection(self.config(), self.paths, address, check_schemas=True)
        return Probe(tested.ok, tested.text)

    def send_test_email(self, settings: EmailSettings) -> str:
        from synchro.mail import send_test

        return send_test(settings, self.config().language, site=self.config().site)

    def list_tables(self, connection: str) -> list[str]:
        return application.list_tables(connection, self.config().language)

    def odbc_drivers(self) -> list[str]:
        return application.odbc_drivers()

    def reports(self) -> list[ReportRow]:
        if self.synchro is None:
            return []
        return [report_row(r) for r in self.synchro.report(REPORT_ROWS)]

    def report_detail(self, report_id: str) -> ReportDetail:
        record = self._record(int(report_id))
        details = record.details
        lang = self.config().language
        quarantined = _lines(details.get("quarantined"), lambda q: quarantine_line(q, lang))
        conflicts = _lines(
            details.get("conflicts"),
            lambda c: tr(
                "app.detail.conflict",
                lang,
                table=c.get("tbl"),
                key=c.get("key_json"),
                winner=c.get("winner"),
                loser=c.get("loser"),
                policy=c.get("policy"),
            ),
        )
        email = details.get("email")
        extra = (
            [tr("app.detail.email", lang, message=email.get("message", ""))]
            if isinstance(email, dict)
            else []
        )
        error = error_in(record, lang)
        said = [error] if error else []
        cause = cause_lines(record, lang)  # from the row's stored kind, in the UI language
        message = "\n".join(said + cause + extra + detail_lines(details, record.error, lang))
        return ReportDetail(report_row(record), message, quarantined, conflicts)

    def export_report_csv(self, path: Path, lang: str) -> None:
        self._synchro().export_report_csv(path, lang)

    def autostart(self) -> bool:
        try:
            return (self._autostart or autostart_for_platform()).is_enabled()
        except SynchroError:
            return False

    def log_path(self) -> Path:
        return self.paths.log_dir / "synchro.log"
