"""What a row of the Rapport is: its states, its failure outcomes, its words and dates.

``RunRecord`` is one row as ``store.ReportStore`` gives it; ``State`` holds the manual's
words (``En cours...``, ``OK``, ``Arrêt``, ``Echec``), translated for display by
``state_label``; ``Outcome`` is why the rules of a round failed a row.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from synchro.errors import error_details, error_text
from synchro.i18n import render, tr

INTERRUPTED = "interrompu : le programme s'est arrêté pendant la synchronisation"
HELD_PACKAGE = "export"  # state quarantine's package name of rows set aside at capture
COUNTERS = (
    "rows_sent",
    "rows_received",
    "bytes_sent",
    "bytes_received",
    "conflicts",
    "quarantined",
)
KINDS = ("run", "round", "site-in-round")


class Outcome(StrEnum):
    """A row failed by the rules of a run or round rather than by an error (stored, like an
    :class:`~synchro.errors.ErrorKind`, in ``details["error_kind"]``)."""

    NOT_APPLIED = "not-applied"  # rows quarantined: not stored exactly as sent, or not sent
    NO_DATA = "no-data"  # the establishment sent nothing within the reception time
    NO_ACK = "no-ack"  # the establishment did not confirm it applied the Siège's package
    UNFINISHED = "unfinished"  # the round ended (failed) before this delivery was processed
    INTERRUPTED = "interrupted"  # the program stopped during the run (crash, power cut)


class State(StrEnum):
    """Etat of a report row; the values are the manual's words, stored as they are."""

    RUNNING = "En cours..."
    OK = "OK"
    STOPPED = "Arrêt"
    FAILED = "Echec"


@dataclass(frozen=True)
class RunRecord:
    """One row of the Rapport. ``details`` is free JSON: quarantined rows with their error,
    conflicts with winner/loser, security events, the email status (key ``email``)..."""

    id: int
    site: str
    kind: str
    round_id: int | None
    started: dt.datetime
    ended: dt.datetime | None
    state: State
    rows_sent: int = 0
    rows_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    conflicts: int = 0
    quarantined: int = 0
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """A finished row's error as a value of a line said in any language (``text_in``: its
    ``error_in``): the end of a run or a round, the tray's failure."""

    record: RunRecord

    def text_in(self, lang: str) -> str:
        return error_in(self.record, lang)


def error_in(record: RunRecord, lang: str) -> str:
    """The row's error in ``lang``: the words of a round's rule (``reports.error.<outcome>``:
    nothing received, no ack, unfinished, interrupted); the reason « N lignes non
    appliquées » the store puts in front (``details["not_applied"]``) and, where the error
    gave its words as a key of the locales (``details["error_say"]``,
    ``errors.SynchroError.say``), those words, said in ``lang``; any other text as stored
    (French)."""
    error = record.error
    if lang == "fr":
        return error
    fixed = f"reports.error.{record.details.get('error_kind')}"  # a round's rule's own words
    if error and error == tr(fixed, "fr"):
        return tr(fixed, lang)
    counts = record.details.get("not_applied")
    if isinstance(counts, dict) and error.startswith(french := unapplied_text(counts, "fr")):
        error = unapplied_text(counts, lang) + error[len(french) :]
    say = record.details.get("error_say")
    if not isinstance(say, list) or len(say) != 2:
        return error
    try:
        french, shown = render(say, "fr"), render(say, lang)
    except (KeyError, IndexError, TypeError, ValueError):  # (words of another version)
        return error
    return error.replace(french, shown)


def entry_error_in(entry: Mapping[str, Any], lang: str) -> str:
    """A quarantined row's error (an entry of ``details["quarantined"]``) in ``lang``
    where it gave its words (``error_say``, JSON), else as stored (French, or the
    database's own words)."""
    said = entry.get("error_say")
    if isinstance(said, str):
        try:
            return render(json.loads(said), lang)
        except (KeyError, IndexError, TypeError, ValueError):  # (words of another version)
            pass
    return str(entry.get("error") or "")


def unrecorded_run(
    site: str, started: dt.datetime, now: dt.datetime, exc: BaseException, kind: str = "run"
) -> RunRecord:
    """A failed run (or Siège round) the Rapport could not take (its disk full): held in
    memory, so the report email still tells the owner what happened."""
    details = error_details(exc)
    return RunRecord(
        0, site, kind, None, started, now, State.FAILED, error=error_text(exc), details=details
    )


# the Rapport's columns in a CSV export (and the email's attachment), in this order
CSV_COLUMNS = (
    "site",
    "started",
    "ended",
    "state",
    "rows_sent",
    "rows_received",
    "conflicts",
    "quarantined",
    "error",
)


def format_date(when: dt.datetime | None) -> str:
    """The manual's date form, ``06/12/2005 15:15:11``; empty for a missing date."""
    return when.strftime("%d/%m/%Y %H:%M:%S") if when is not None else ""


def state_label(state: State | str, lang: str = "fr") -> str:
    """What the UI shows for a state: the manual's word in French, a translation otherwise."""
    state = State(state)
    return tr(f"reports.state.{state.name}", lang) if lang != "fr" else state.value


def unapplied_text(counts: Mapping[str, Any], lang: str = "fr") -> str:
    """The plain reason of a run failed by quarantined rows, from ``details["not_applied"]``:
    "12 lignes non appliquées — voir le rapport" (and/or "N lignes non envoyées")."""
    parts = []
    for what in ("applied", "sent"):
        n = int(counts.get(what, 0))
        if n == 1:
            parts.append(tr(f"reports.not_{what}_one", lang))
        elif n > 1:
            parts.append(tr(f"reports.not_{what}", lang, n=n))
    return tr("reports.see_report", lang, what=", ".join(parts))


def not_applied(quarantined: int, details: dict[str, Any]) -> str:
    """Put the not-applied counts in ``details`` (rows set aside at capture are told
    apart by their package name in the listed rows) and return the French reason."""
    listed = details.get("quarantined")
    held = 0
    if isinstance(listed, list):
        held = sum(1 for q in listed if isinstance(q, dict) and q.get("package") == HELD_PACKAGE)
    held = min(held, quarantined)
    counts = {"applied": quarantined - held, "sent": held}
    details["not_applied"] = counts
    return unapplied_text(counts, "fr")


def write_csv(path: str | Path, records: Sequence[RunRecord], lang: str) -> None:
    """The rows as a semicolon CSV in UTF-8 with a BOM (Excel in France opens it as it
    is), headings and words in ``lang``."""
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow([tr(f"reports.column.{name}", lang) for name in CSV_COLUMNS])
        for rec in records:
            writer.writerow(
                [
                    rec.site,
                    format_date(rec.started),
                    format_date(rec.ended),
                    state_label(rec.state, lang),
                    rec.rows_sent,
                    rec.rows_received,
                    rec.conflicts,
                    rec.quarantined,
                    error_in(rec, lang),
                ]
            )
