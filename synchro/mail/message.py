"""The report email's content (manual: *Envoi d'un email*): subject, plain text and HTML.

:func:`build_report_message` turns report rows into a :class:`ReportMessage` in the UI
language: the Rapport table, why each failure happened in plain words and what to do, and
at the Siège the missing and late establishments.

Why a row failed is its reason code (``synchro.report_summary.reason_of``): the kind the
engine stored with the row (an ``ErrorKind`` or a round ``Outcome``), never words found in
its error text. The same words explain the row in the Rapport's detail window.
"""

from __future__ import annotations

import datetime as dt
import html as htmllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synchro.config.model import Role
from synchro.i18n import tr
from synchro.report_summary import clock_line, copy_line, keyless_line, reason_of
from synchro.reports import (
    CSV_COLUMNS,
    Outcome,
    RunRecord,
    State,
    entry_error_in,
    error_in,
    format_date,
    state_label,
    unapplied_text,
)

COLUMNS = CSV_COLUMNS  # the attachment has the Rapport's CSV columns
MAX_LISTED = 10  # quarantined rows / conflicts listed in an email; the rest is in the Rapport


@dataclass(frozen=True)
class ReportMessage:
    subject: str
    text: str
    html: str


def main_record(records: Sequence[RunRecord]) -> RunRecord:
    """The row the email is about: the ``run`` or the ``round`` (its members follow)."""
    if not records:
        raise ValueError("a report message needs at least one report row")
    return next((r for r in records if r.kind in ("run", "round")), records[0])


def _cells(record: RunRecord, lang: str) -> list[str]:
    return [
        record.site,
        format_date(record.started),
        format_date(record.ended),
        state_label(record.state, lang),
        str(record.rows_sent),
        str(record.rows_received),
        str(record.conflicts),
        str(record.quarantined),
        error_in(record, lang),
    ]


def escape(text: str) -> str:
    """HTML-escape element text (quotes stay readable: no attribute is ever built from it)."""
    return htmllib.escape(text, quote=False)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    style = 'style="border:1px solid #999;padding:3px 6px;text-align:left"'
    head = "".join(f"<th {style}>{escape(c)}</th>" for c in header)
    body = "".join(
        "<tr>" + "".join(f"<td {style}>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">'
        f"<tr>{head}</tr>{body}</table>"
    )


def _listed(details: dict[str, Any], key: str, lang: str = "fr") -> list[str]:
    """Short lines for the quarantined rows or conflicts kept in a row's details."""
    items = details.get(key)
    if not isinstance(items, list):
        return []
    lines = []
    for item in items:
        if key == "quarantined" and isinstance(item, dict) and "tbl" in item:
            table, row_key, error = (
                item.get("tbl"),
                item.get("key_json"),
                entry_error_in(item, lang),
            )
            lines.append(tr("mail.quarantined_line", lang, table=table, key=row_key, error=error))
        elif isinstance(item, dict):
            lines.append(", ".join(f"{k}: {v}" for k, v in item.items()))
        else:
            lines.append(str(item))
    return lines


def _intro(main: RunRecord, members: list[RunRecord], site: str, mode: str, lang: str) -> str:
    started = format_date(main.started)
    state = state_label(main.state, lang)
    if main.state is State.RUNNING:
        return tr("mail.intro.running", lang, site=site, mode=mode, started=started)
    if main.kind == "round":
        ok = sum(1 for r in members if r.state is State.OK)
        total = len(members)
        return tr(
            "mail.intro.round", lang, site=site, started=started, state=state, ok=ok, total=total
        )
    return tr("mail.intro.run", lang, site=site, mode=mode, started=started, state=state)


def _why(rows: list[RunRecord], lang: str) -> list[str]:
    """For each failed or stopped row: the reason in plain words, the error, what to do."""
    lines = []
    for rec in rows:
        if rec.state not in (State.FAILED, State.STOPPED):
            continue
        kind = reason_of(rec)
        error = "" if kind == Outcome.NO_DATA else error_in(rec, lang).strip().rstrip(".")
        counts = rec.details.get("not_applied")
        if kind == Outcome.NOT_APPLIED and isinstance(counts, dict):
            error = unapplied_text(counts, lang)  # the words of the UI language
        lines.append(
            tr(
                "mail.why_line",
                lang,
                site=rec.site,
                reason=tr(f"reports.reason.{kind}", lang),
                error=tr("mail.error_part", lang, error=error) if error else "",
                advice=tr(f"reports.advice.{kind}", lang),
            )
        )
    return lines


def _blocks(main: RunRecord, members: list[RunRecord], lang: str) -> list[tuple[str, list[str]]]:
    """The paragraphs after the table, as (title, lines); an empty title is a plain line."""
    blocks: list[tuple[str, list[str]]] = []
    missing = [
        r.site for r in members if r.state is State.FAILED and reason_of(r) == Outcome.NO_DATA
    ]
    listed = main.details.get("missing")  # the Siège's round may list them on its own row
    if isinstance(listed, list):
        missing += [str(code) for code in listed if str(code) not in missing]
    late = [r.site for r in members if r.details.get("late") or r.state is State.RUNNING]
    if missing:
        blocks.append(("", [tr("mail.missing", lang, sites=", ".join(missing))]))
    if late:
        blocks.append(("", [tr("mail.late", lang, sites=", ".join(late))]))
    if main.details.get("controle"):  # the per-round proof (engine.ack)
        blocks.append(("", [tr("mail.controle", lang, text=main.details["controle"])]))
    said = [keyless_line(main.details, lang), clock_line(main.details, lang)]
    said.append(copy_line(main.details, lang))
    for r in members:  # an establishment's clock apart from the Siège's (its ack said so)
        clock = clock_line(r.details, lang)
        said.append(tr("mail.site_line", lang, site=r.site, text=clock) if clock else None)
    if any(said):
        blocks.append(("", [line for line in said if line]))
    # A round's own row is explained when it was stopped or when no establishment row
    # explains its failure already (its error then only summarises theirs).
    troubled = any(r.state in (State.FAILED, State.STOPPED) for r in members)
    own = main.state is State.STOPPED or not troubled
    explained = [main, *members] if own else members
    why = _why(explained, lang)
    if why:
        blocks.append((tr("mail.why", lang), why))
    for key in ("quarantined", "conflicts", "security"):
        lines = [
            tr("mail.site_line", lang, site=r.site, text=line)
            for r in [main, *members]
            for line in _listed(r.details, key, lang)
        ]
        if lines:
            extra = len(lines) - MAX_LISTED
            lines = lines[:MAX_LISTED] + ([tr("mail.more", lang, n=extra)] if extra > 0 else [])
            blocks.append((tr(f"mail.title.{key}", lang), lines))
    return blocks


def build_report_message(
    records: Sequence[RunRecord], *, site: str, role: Role, lang: str, now: dt.datetime
) -> ReportMessage:
    """The email for one run (one ``run`` row) or one round (its ``round`` row and its
    ``site-in-round`` rows), in ``lang``: subject with mode, site, state and date; the
    Rapport table; missing/late establishments; why each failure happened and what to do."""
    main = main_record(records)
    members = [r for r in records if r.kind == "site-in-round"] if main.kind == "round" else []
    mode = tr(f"mail.mode.{Role(role).value}", lang)
    state = state_label(main.state, lang)
    date = format_date(main.started)
    subject = tr("mail.subject", lang, mode=mode, site=site, state=state, date=date)
    intro = _intro(main, members, site, mode, lang)
    header = [tr(f"mail.column.{name}", lang) for name in COLUMNS]
    rows = [_cells(r, lang) for r in (members or [main])]
    footer = tr("mail.footer", lang, date=format_date(now))

    text_parts = [intro, "", _text_table(header, rows)]
    html_parts = [f"<p>{escape(intro)}</p>", _html_table(header, rows)]
    for title, lines in _blocks(main, members, lang):
        if title:
            text_parts += ["", tr("mail.block_title", lang, title=title)]
            text_parts += [f"- {line}" for line in lines]
            items = "".join(f"<li>{escape(line)}</li>" for line in lines)
            html_parts.append(f"<h3>{escape(title)}</h3><ul>{items}</ul>")
        else:
            text_parts += ["", *lines]
            html_parts += [f"<p>{escape(line)}</p>" for line in lines]
    text_parts += ["", footer]
    html_parts.append(f'<p style="color:#666">{escape(footer)}</p>')
    body = "\n".join(html_parts)
    page = f'<html><body style="font-family:sans-serif">{body}</body></html>'
    return ReportMessage(subject=subject, text="\n".join(text_parts) + "\n", html=page)
