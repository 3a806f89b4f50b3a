"""*Dernière synchronisation* (the watermark) lives in the node's state database.

The watermark is the start of the last run (Serveur) or round (Siège) that ended ``OK``;
the next capture reads only rows modified after it, minus the overlap. It moves every day,
so it is runtime state: it is kept in the state database's ``meta`` table beside the
snapshot it goes with (the two are only meaningful together: a lost or renamed state
database starts again from the settings' date, never from a newer watermark that a fresh
snapshot never saw), and the user's config file is never rewritten by a run.

The config file's ``last_sync`` is what the user *set*: the first synchronisation date given
to ``init`` or the wizard, or the date typed in the General window before VALIDER. It is
taken into the state when it differs from the value taken last time (``meta`` key
``watermark_config``). That one rule covers:

- an installation from before this change (its config holds the watermark the program
  wrote there): on first start the value moves into the state, once;
- the user setting a date (VALIDER, ``init``, wizard, even a hand edit of the file): the new
  date wins over the moving one;
- anything else that saves the config (``site add``, ``key rotate``...) keeps the date it
  read, which was already taken: the moving watermark is left as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

from synchro.errors import StateError
from synchro.state import StateDB

WATERMARK = "watermark"  # ISO date of the last run/round ended OK ("" = none yet)
FROM_CONFIG = "watermark_config"  # the config file's last_sync last taken into the state
FULL_READ = "full_read"  # JSON list: tables the last « Contrôle » found different


def _text(when: dt.datetime | None) -> str:
    return when.isoformat() if when is not None else ""


def _date(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def current_watermark(state: StateDB, configured: dt.datetime | None) -> dt.datetime | None:
    """The watermark the next run uses, after taking ``configured`` (the config file's
    ``last_sync``) into the state when it is new (see the module docstring)."""
    try:
        taken = state.get_meta(FROM_CONFIG)
        given = _text(configured)
        if given != (taken or ""):
            with state.transaction():
                state.set_meta(WATERMARK, given)
                state.set_meta(FROM_CONFIG, given)
            return configured
        stored = state.get_meta(WATERMARK)
    except sqlite3.Error as exc:
        said = {"path": str(state.path), "detail": str(exc)}
        raise StateError(say=("engine.state.watermark_unreadable", said)) from exc
    return _date(stored) if stored is not None else configured


def advance_watermark(state: StateDB, when: dt.datetime) -> None:
    """A run or round that started at ``when`` ended OK: the next one starts from there."""
    try:
        state.set_meta(WATERMARK, _text(when))
    except sqlite3.Error as exc:
        said = {"path": str(state.path), "detail": str(exc)}
        raise StateError(say=("engine.state.watermark_unsaved", said)) from exc


def capture_bound(
    watermark: dt.datetime | None, now: dt.datetime, overlap: dt.timedelta
) -> dt.datetime | None:
    """The lower bound of the capture's modification-date filter (``capture.diff``): the
    watermark less the overlap; None, a full read, without a watermark — or with one
    ahead of ``now``: the clock was put back since that run (a date typed wrong then
    corrected, winter time), and the rows changed since carry earlier dates than it, so
    the filter would skip them all (the « Contrôle » then failed at every run)."""
    if watermark is None or watermark > now:
        return None
    return watermark - overlap


def full_read_tables(state: StateDB) -> set[str]:
    """Tables the next capture reads whole, whatever their modification-date filter: those
    the last « Contrôle » found different from the Siège. A change the filter did not see
    (a row written with a date older than the watermark by more than the overlap: the
    database server's clock behind this machine's, a program that leaves the column as it
    was) then travels at the next run, instead of the « Contrôle » failing at every one."""
    return set(json.loads(state.get_meta(FULL_READ) or "[]"))


def remember_differing(state: StateDB, tables: list[str]) -> None:
    """What the « Contrôle » of this run found (``full_read_tables``); in a transaction."""
    state.set_meta(FULL_READ, json.dumps(sorted(tables)))
