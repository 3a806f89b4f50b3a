"""A database put back to an older copy is seen, not synchronised (rule 3: nothing is lost).

A shop restores last week's backup of its database after a disk failure. Its next capture
finds gone every row made since — its own and those the other establishments sent it — and
finds the rows changed since at their old values: sent as they are, those deletes and old
versions would be applied in every establishment. A threshold (``capture.mass_deletes``)
catches only a big loss; a week of a busy group's sales is a few percent of its tables.

So each node keeps a number in its user's database (``db.base.MARK_TABLE``, one row per
node) and the same number in its state: both are raised together whenever the engine makes
the database and its snapshot agree — at each export (its own transaction, before the
capture) and in each apply's transaction. The database is written first and committed
first, so a crash between the two leaves the database ahead, never behind. A database
holding a smaller number than the state (or none) has gone back to an earlier copy: the
capture sends nothing (``Restored``) and the run ends ``Echec`` saying so, every automatic
run again, until a person decides: *Reprendre les données du groupe* (``engine.take_back``)
or MANUELLE's Envoyer (the restored copy becomes the group's reference). An apply into
such a database leaves its number behind, so the Siège, which applies the establishments'
packages before it captures, holds all the same.

A database where the table cannot be created (no right to) is synchronised unmarked, as
before: a warning says so, and nothing is checked.

A Serveur's state put back *with* its database (a whole machine restored) keeps the marks
in step; the Siège's acknowledgement of packages the state never made tells it instead
(``StateBehind``, raised by ``ServeurNode._admit``; nothing is exported until it is
settled), and its way out sends its changes since under new numbers (``resend.renumber``:
its snapshot tells them from the image's rows, nothing is adopted). At the Siège,
such a machine — or a second machine sending as the same establishment (a server copied,
both left running) — shows as a package numbered as one applied but not the same bytes
(``same_as_applied``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from synchro.db.base import MARK_TABLE, Adapter
from synchro.errors import (
    CaptureError,
    DatabaseError,
    ErrorKind,
    PackageError,
    Say,
    SynchroError,
    TransactionLost,
)
from synchro.package import Manifest
from synchro.state import StateDB

log = logging.getLogger("synchro.engine")
KEY = "mark"  # the state's meta entry holding the number last written


class Restored(CaptureError):
    """The database holds an older mark than the state (``found``; None: no mark)."""

    default_kind = ErrorKind.RESTORED

    def __init__(self, found: int | None, known: int) -> None:
        self.found, self.known = found, known
        seen = (
            ("engine.err.restored.mark", {"table": MARK_TABLE, "found": found, "known": known})
            if found is not None
            else ("engine.err.restored.no_mark", {"table": MARK_TABLE})
        )
        super().__init__(say=("engine.err.restored", {"seen": [seen]}))


class StateBehind(SynchroError):
    """A Serveur's state put back with its database (a whole machine restored): the Siège
    applied packages of this establishment (up to ``applied``) that its state never made
    (it made up to ``made``). Its data since are at the Siège; the numbers it would use
    again would be taken for packages already applied."""

    default_kind = ErrorKind.RESTORED

    def __init__(self, applied: int, made: int) -> None:
        self.applied, self.made = applied, made
        super().__init__(say=("engine.err.behind", {"applied": applied, "made": made}))


def check(adapter: Adapter, state: StateDB, code: str) -> None:
    """Raise ``Restored`` when the database went back behind the state's number."""
    known = state.get_int(KEY)
    if not known:
        return  # never marked: a first run, or a database that cannot hold the table
    found = adapter.read_mark(code)
    if found is None or found < known:
        raise Restored(found, known)


def in_step(adapter: Adapter, state: StateDB, code: str) -> bool:
    """Whether the database is known not to have gone back (marked, and not behind): then
    taking the group's data back would only undo its changes since the last exchange."""
    known = state.get_int(KEY)
    if not known:
        return False
    found = adapter.read_mark(code)
    return found is not None and found >= known


def nothing_to_take_back() -> SynchroError:
    return SynchroError(kind=ErrorKind.CONFIG, say=("engine.err.nothing_to_take_back", {}))


def bump(adapter: Adapter, state: StateDB, code: str, *, confirmed: bool = False) -> None:
    """Write the next number into the database, then into the state (the caller's open
    state transaction, committed after the database). A database found behind keeps its
    number, unless ``confirmed``: the caller checked it (an export) or a person chose to
    send it as it is — then it is not read again, and both take the state's next number."""
    known = state.get_int(KEY)
    found = None if confirmed else adapter.read_mark(code)
    if known and not confirmed and (found is None or found < known):
        return  # restored: ``check`` holds the next capture
    number = max(known, found or 0) + 1
    try:
        written = adapter.write_mark(code, number)
    except TransactionLost:
        raise
    except DatabaseError as exc:
        log.warning("Repère de synchronisation non écrit (%s) : restauration non détectée", exc)
        return
    if written:
        state.set_meta(KEY, str(number))


PUT_BACK: list[Say] = [("engine.err.siege_put_back", {})]  # what a Siège put back needs


def siege_forgot(path: Path, manifest: Manifest, applied_seq: int) -> None:
    """At the Siège: an establishment's oldest package not acknowledged is past the next
    one this Siège expects — it dropped packages this Siège acknowledged, and this Siège no
    longer knows them: it was put back. Said, where it waited for ever for the first."""
    first = int(manifest.meta.get("first_unacked", manifest.sequence))
    if first > applied_seq + 1:
        seen = {"origin": manifest.origin, "seen": first - 1, "known": applied_seq}
        raise PackageError(
            str(path),
            say=("engine.err.siege_forgot", {**seen, "put_back": PUT_BACK}),
            kind=ErrorKind.COPY,
        )


COPY_TOLD_DAYS = 7  # the Siège names a package refused as another machine's this long


def copy_seen_key(site: str) -> str:
    """The Siège's state meta naming the last package of ``site`` it refused as another
    machine's (``same_as_applied``: its number and when, JSON); its packages to ``site``
    say so for ``COPY_TOLD_DAYS`` (every machine under the code reads them: the one whose
    packages go through learns another one sends too)."""
    return f"copy:{site}"


def copy_seen(state: StateDB, site: str, now: dt.datetime) -> dict[str, object] | None:
    """What a Siège package to ``site`` says of a package refused as another machine's
    (``{"number", "at"}``), while recent; None otherwise."""
    text = state.get_meta(copy_seen_key(site))
    if not text:
        return None
    try:
        seen = json.loads(text)
        at = dt.datetime.fromisoformat(str(seen["at"]))
        if now.replace(tzinfo=None) - at > dt.timedelta(days=COPY_TOLD_DAYS):
            return None
        return {"number": int(seen["number"]), "at": str(seen["at"])}
    except (ValueError, KeyError, TypeError):  # (written by another version)
        return None


def same_as_applied(state: StateDB, path: Path, manifest: Manifest, now: dt.datetime) -> None:
    """A package numbered as one applied here is a copy sent again (after a cut), byte for
    byte: no node ever makes two packages under one number. Another package under that
    number means, from an establishment, a second machine sending as it or one put back
    to an earlier state; from the Siège, a Siège put back (an image, a backup) numbering
    again what it had sent. Said (``PackageError``: set aside, nothing applied), never
    taken for a copy — its rows then stayed home, or were skipped, without a word."""
    known = state.applied_digest(manifest.origin, manifest.sequence)
    if known is None or known == manifest.sha256:
        return
    if manifest.kind != "hq":  # the Siège tells the establishment (``copy_seen_key``)
        seen = {
            "number": manifest.sequence,
            "at": now.replace(tzinfo=None).isoformat(" ", "seconds"),
        }
        with state.transaction():
            state.set_meta(copy_seen_key(manifest.origin), json.dumps(seen))
    why = (
        ("engine.err.copy.siege", {"put_back": PUT_BACK})
        if manifest.kind == "hq"
        else ("engine.err.copy.site", {"origin": manifest.origin})
    )
    said = {"sequence": manifest.sequence, "origin": manifest.origin, "why": [why]}
    raise PackageError(str(path), say=("engine.err.copy", said), kind=ErrorKind.COPY)
