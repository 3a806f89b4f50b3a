"""The Rapport: a persistent list of synchronisations (manual §2.1.1.2).

Every synchronisation is a row: Etablissement, Début, Fin, Etat. A *run* is one site's own
synchronisation; at the Siège a *round* has one row for itself plus one ``site-in-round`` row
per establishment (``round_id`` points at the round's row). The states are stored with the
manual's words (``En cours...``, ``OK``, ``Arrêt``, ``Echec``); the English UI translates
them for display with :func:`state_label`.

The store is a stdlib sqlite3 file in WAL mode. The engine thread writes, the GUI thread reads:
one connection shared behind a lock (``check_same_thread=False``), every call is one short
transaction. Times are always given by the caller (``now=``) so tests control the clock.

A failed row keeps its error as text (French, as raised; where the error gave its words as
a key of the locales, that too, ``details["error_say"]``, shown in the UI language by
:func:`error_in`) and what sort of failure it was in ``details["error_kind"]``: an
:class:`~synchro.errors.ErrorKind` value when an error ended it, or an :class:`Outcome`
when the round's rules did (nothing received, no ack...). The email and the windows
explain a row from that code, never from its text. Kept in the JSON details, it needs no
schema change: rows written before it simply have none.

It also keeps when the last report emails were sent (``record_mail``/``last_mail``), which
the mailer uses to send a failing site's email at most once a day.
"""

from synchro.reports.records import (
    COUNTERS,
    CSV_COLUMNS,
    HELD_PACKAGE,
    INTERRUPTED,
    KINDS,
    Outcome,
    RowError,
    RunRecord,
    State,
    entry_error_in,
    error_in,
    format_date,
    state_label,
    unapplied_text,
)
from synchro.reports.store import ReportStore

__all__ = [
    "COUNTERS",
    "CSV_COLUMNS",
    "HELD_PACKAGE",
    "INTERRUPTED",
    "KINDS",
    "Outcome",
    "ReportStore",
    "RowError",
    "RunRecord",
    "State",
    "entry_error_in",
    "error_in",
    "format_date",
    "state_label",
    "unapplied_text",
]
