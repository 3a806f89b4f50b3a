"""The Rapport window (manual §2.1.1.2) and the detail of one report line.

Columns Etablissement, Début, Fin, Etat (the manual's) plus Lignes and Erreurs, newest
first. The list refreshes when the backend says reports changed and, while a line is
``En cours...``, about every two seconds. Double-click (or Détail) opens the line's detail;
Exporter CSV writes the list through the backend.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import FreeSimpleGUI as sg

from synchro.gui.base import KEY_ENTER, KEY_ESCAPE, Controller, Shell, Values, bind_keys
from synchro.gui.fields import format_datetime
from synchro.gui.ports import (
    STATE_FAILED,
    STATE_OK,
    STATE_RUNNING,
    STATE_STOPPED,
    ReportDetail,
    ReportRow,
    ReportsChanged,
    StateChanged,
)
from synchro.i18n import tr

TABLE = "-TABLE-"
DOUBLE = "-TABLE-+DOUBLE"
DETAIL = "-DETAIL-"
EXPORT_PATH = "-EXPORT-PATH-"
EXPORT = "-EXPORT-"
CLOSE = "-CLOSE-"
MESSAGE = "-MESSAGE-"
DETAIL_TEXT = "-DETAIL-TEXT-"
LIVE_REFRESH_S = 2.0
_STATE_KEYS = {
    STATE_RUNNING: "gui.state.running",
    STATE_OK: "gui.state.ok",
    STATE_STOPPED: "gui.state.stopped",
    STATE_FAILED: "gui.state.failed",
}


def state_text(state: str, lang: str) -> str:
    """The manual's word in French, its translation in English."""
    key = _STATE_KEYS.get(state)
    return tr(key, lang) if key else state


def table_rows(rows: list[ReportRow], lang: str) -> list[list[str]]:
    return [
        [
            row.site,
            format_datetime(row.started),
            format_datetime(row.ended),
            state_text(row.state, lang),
            str(row.rows),
            str(row.errors),
        ]
        for row in rows
    ]


def build_rapport(rows: list[ReportRow], lang: str) -> list[list[Any]]:
    headings = [
        tr(key, lang)
        for key in (
            "gui.report.site",
            "gui.report.started",
            "gui.report.ended",
            "gui.report.state",
            "gui.report.rows",
            "gui.report.errors",
        )
    ]
    return [
        [
            sg.Table(
                table_rows(rows, lang) or [[""] * 6],
                headings=headings,
                key=TABLE,
                col_widths=[13, 19, 19, 11, 9, 8],
                auto_size_columns=False,
                num_rows=12,
                justification="left",
                enable_events=True,
                select_mode=sg.TABLE_SELECT_MODE_BROWSE,
                expand_x=True,
                expand_y=True,
            )
        ],
        [sg.Text("", key=MESSAGE, size=(80, 1))],
        [
            sg.Button(tr("gui.report.detail", lang), key=DETAIL, size=(12, 1)),
            sg.Input("", key=EXPORT_PATH, visible=False, enable_events=True),
            sg.FileSaveAs(
                tr("gui.report.export", lang),
                key=EXPORT,
                target=EXPORT_PATH,
                file_types=(("CSV", "*.csv"),),
                default_extension=".csv",
                size=(16, 1),
            ),
            sg.Button(tr("gui.close", lang), key=CLOSE, size=(12, 1)),
        ],
    ]


def make_rapport_window(rows: list[ReportRow], lang: str) -> sg.Window:
    window = sg.Window(
        tr("gui.report.title", lang), build_rapport(rows, lang), finalize=True, resizable=True
    )
    window[TABLE].bind("<Double-Button-1>", "+DOUBLE")
    bind_keys(window)
    if not rows:
        window[TABLE].update(values=[])
    return window


class RapportController(Controller):
    def __init__(self, window: sg.Window, shell: Shell, rows: list[ReportRow]) -> None:
        super().__init__(window, shell)
        self.rows = rows
        self.last_refresh = time.monotonic()

    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CLOSE, KEY_ESCAPE):
            self.close()
        elif event in (DOUBLE, DETAIL, KEY_ENTER):
            self.open_selected()
        elif event == EXPORT_PATH and values is not None:
            self.export(str(values[EXPORT_PATH]))

    def selected(self) -> ReportRow | None:
        table = self.window[TABLE]
        ids = list(table.tree_ids)
        picked = [ids.index(item) for item in table.Widget.selection() if item in ids]
        if not picked or picked[0] >= len(self.rows):
            return None
        return self.rows[picked[0]]

    def open_selected(self) -> None:
        row = self.selected()
        if row is None:
            self.message(tr("gui.report.select", self.lang))
            return
        self.message("")
        self.shell.open_detail(row.id)

    def export(self, path: str) -> None:
        if not path:
            return
        self.backend.export_report_csv(Path(path), self.lang)
        self.message(tr("gui.report.exported", self.lang, path=path), error=False)

    def refresh(self) -> None:
        """Reload the rows, keeping the selected line selected."""
        chosen = self.selected()
        self.rows = self.backend.reports()
        self.last_refresh = time.monotonic()
        select = [i for i, r in enumerate(self.rows) if chosen is not None and r.id == chosen.id]
        self.window[TABLE].update(values=table_rows(self.rows, self.lang), select_rows=select)

    def on_event(self, event: object) -> None:
        if isinstance(event, ReportsChanged | StateChanged):
            self.refresh()

    def tick(self) -> None:
        live = any(r.state == STATE_RUNNING for r in self.rows)
        if live and time.monotonic() - self.last_refresh >= LIVE_REFRESH_S:
            self.refresh()


def detail_text(detail: ReportDetail, lang: str) -> str:
    row = detail.row
    sep = " :" if lang == "fr" else ":"  # French typography puts a space before the colon
    lines = [
        f"{tr('gui.report.site', lang)}{sep} {row.site}",
        f"{tr('gui.report.started', lang)}{sep} {format_datetime(row.started)}",
        f"{tr('gui.report.ended', lang)}{sep} {format_datetime(row.ended)}",
        f"{tr('gui.report.state', lang)}{sep} {state_text(row.state, lang)}",
        f"{tr('gui.report.rows', lang)}{sep} {row.rows}",
        f"{tr('gui.report.errors', lang)}{sep} {row.errors}",
        "",
        f"{tr('gui.report.message', lang)}{sep}",
        detail.message or tr("gui.report.none", lang),
    ]
    for title, items in (
        ("gui.report.tables", detail.tables),
        ("gui.report.quarantined", detail.quarantined),
        ("gui.report.conflicts", detail.conflicts),
    ):
        lines += ["", f"{tr(title, lang)}{sep}", *(items or (tr("gui.report.none", lang),))]
    return "\n".join(lines)


def make_detail_window(detail: ReportDetail, lang: str) -> sg.Window:
    title = tr(
        "gui.report.detail_title",
        lang,
        site=detail.row.site,
        started=format_datetime(detail.row.started),
    )
    layout = [
        [sg.Multiline(detail_text(detail, lang), key=DETAIL_TEXT, size=(90, 22), disabled=True)],
        [sg.Button(tr("gui.close", lang), key=CLOSE, size=(12, 1))],
    ]
    window = sg.Window(title, layout, finalize=True, resizable=True)
    bind_keys(window)
    return window


class DetailController(Controller):
    def handle(self, event: Any, values: Values | None) -> None:
        if event in (sg.WIN_CLOSED, CLOSE, KEY_ESCAPE, KEY_ENTER):
            self.close()
