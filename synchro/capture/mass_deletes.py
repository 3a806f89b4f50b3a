"""Deletes too many to send on the program's own word: a restored backup, a table emptied
by mistake.

A shop restores last week's backup of its database: the next capture finds every row made
since (its own and those received from the others) gone, and would send the deletes to
every establishment of the group. So a capture that would delete at least ``HOLD_ROWS``
rows of a table and more than ``HOLD_SHARE`` of what it held at the last synchronisation
sends nothing (``MassDeletes``): the run ends ``Echec`` naming the tables, and the snapshot
is kept, so every automatic synchronisation holds again until a person decides. A
synchronisation a person starts (MANUELLE, ``synchro sync``) sends them: the message says
so, and what to do when the deletes are not wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

from synchro.errors import CaptureError, ErrorKind

HOLD_ROWS = 100  # fewer deletes than this always travel (a small table, a day's work)
HOLD_SHARE = 0.2  # and so do up to this share of what the table held


@dataclass(frozen=True)
class Vanished:
    """Rows of one table the capture found gone: ``deleted`` of the ``had`` it held."""

    table: str
    deleted: int
    had: int


def too_many(deleted: int, had: int) -> bool:
    """Whether ``deleted`` rows of a table that held ``had`` wait for a person's word."""
    return deleted >= HOLD_ROWS and deleted > had * HOLD_SHARE


class MassDeletes(CaptureError):
    """A capture held back because of ``vanished`` (nothing was sent)."""

    default_kind = ErrorKind.DELETES

    def __init__(self, vanished: list[Vanished]) -> None:
        self.vanished = vanished
        tables = [
            (
                "engine.err.deletes.table",
                {
                    "table": v.table,
                    "deleted": v.deleted,
                    "had": v.had,
                    "share": 100 * v.deleted // v.had,
                },
            )
            for v in vanished
        ]
        super().__init__(say=("engine.err.deletes", {"tables": tables}))
