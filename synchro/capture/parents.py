"""Rows whose parent arrived while the capture read: left for the next capture.

The capture reads the tables one after the other, parents first (``engine.tables``). A
shop that sells to a new customer while it reads — the customer and the order committed
together, after the customers were read and before the orders were — leaves an order
whose customer is neither in this package nor known to the group (not in the customers'
snapshot). Sent as it is, the order is refused at every receiver (its parent missing:
quarantined there, the round an Echec), until both travel at the next round. Such a row is
held back instead: left out of this package and of the snapshot, so the next capture,
which reads its parent too, sends both. Only when the parent is in the database now, or
the row itself is gone since (deleted with its parent: nothing to send, next time
either): a row whose parent is nowhere while it is there (a database that does not
enforce its foreign keys) goes as it did, for the receivers to say they refuse it.

Checked for the rows a capture sends (inserts and updates), against the parents' snapshots
(one query per batch and foreign key); the database is read only for the rows found
without their parent, after the table's scan (no cursor of the scan open then). The
capture limited to rows modified since the watermark checks them the same way; a held-back
row is then out of the snapshot but in the database, so the « Contrôle » finds the table
differing only by recent changes and the next capture reads it whole.

Only the parents in tables read before the row's are checked. In tables that refer to each
other (a customer's default address, the address's customer), the one read first has its
parents in a table read after it: such a parent, there when its table is read, goes in the
same package. Checked against the snapshot, a new customer and its new address, each
referring to the other, were held back at every capture, each waiting for the other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synchro.db.base import Adapter, Row, Table
from synchro.state import StateDB, snap_value
from synchro.values import Kind, normalise

log = logging.getLogger("synchro.capture")
HOLD_AT_MOST = 10_000  # rows held back in one table; beyond, they go as they are
KNOWN_AT_MOST = 200_000  # parent keys remembered as found, per foreign key


@dataclass(frozen=True)
class _Link:
    """One foreign key of the table to a synchronised parent, by the parent's key."""

    parent: Table
    snap: str
    positions: tuple[int, ...]  # the child's columns, in the order of the parent's key
    kinds: tuple[Kind, ...]  # the parent's key kinds


class ParentCheck:
    """The foreign keys of ``table`` to the parents in ``read``: the synchronised tables
    this capture read before it."""

    def __init__(
        self, adapter: Adapter, state: StateDB, table: Table, read: Mapping[str, Table]
    ) -> None:
        self.adapter, self.state, self.table = adapter, state, table
        self.links: list[_Link] = []
        names = table.column_names
        for fk in table.foreign_keys:
            parent = read.get(fk.ref_table)
            if parent is None or parent.name == table.name or not parent.key:
                continue
            by_ref = dict(zip(fk.ref_columns, fk.columns, strict=False))
            if set(by_ref) != set(parent.key):
                continue  # (a reference to another unique column: not checked)
            positions = tuple(names.index(by_ref[k]) for k in parent.key)
            snap = state.snapshot_table(parent)
            self.links.append(_Link(parent, snap, positions, parent.key_kinds))
        self.known: list[set[tuple[Any, ...]]] = [set() for _ in self.links]

    def orphans(self, rows: Sequence[Row]) -> list[bool]:
        """For each row, whether a parent it refers to is not in that parent's snapshot
        (the group does not have it, and this capture did not send it).

        The parents' snapshots do not change while a child table is read (parents are
        captured first), so a parent key found once is remembered for the table's next
        batches (up to ``KNOWN_AT_MOST`` keys a link): the orders of one client look it up
        once."""
        out = [False] * len(rows)
        for link, known in zip(self.links, self.known, strict=True):
            keys: dict[tuple[Any, ...], list[int]] = {}
            for i, row in enumerate(rows):
                values = tuple(row[p] for p in link.positions)
                if values in known or None in values:
                    continue
                keys.setdefault(values, []).append(i)
            if not keys:
                continue
            skeys = {
                values: tuple(snap_value(k, v) for k, v in zip(link.kinds, values, strict=True))
                for values in keys
            }
            found = self.state.snapshot_hashes(link.snap, len(link.kinds), list(skeys.values()))
            if len(known) + len(keys) > KNOWN_AT_MOST:
                known.clear()
            for values, where in keys.items():
                if skeys[values] in found:
                    known.add(values)
                else:
                    for i in where:
                        out[i] = True
        return out

    def parent_now(self, row: Row) -> bool:
        """Whether every parent ``row`` refers to is in the database now."""
        for link in self.links:
            values = [row[p] for p in link.positions]
            if any(v is None for v in values):
                continue
            key = tuple(normalise(k, v) for k, v in zip(link.kinds, values, strict=True))
            if not self.adapter.fetch(link.parent, [key]):
                return False
        return True

    def gone(self, row: Row) -> bool:
        """Whether ``row`` itself is no longer in the database: deleted since it was read,
        with the parent it came with (a sale made and cancelled during the capture). Sent,
        it would be refused at every receiver (its parent missing: the round an Echec)
        and then deleted by the next capture; held back, the next capture finds nothing
        to send."""
        key = tuple(row[p] for p in self.table.key_positions)
        return not self.adapter.fetch(self.table, [key])

    def held_back(self, table: Table, count: int) -> None:
        log.info(
            "Table %s : %d ligne(s) envoyée(s) au prochain envoi (leur parent est arrivé "
            "pendant la lecture)",
            table.name,
            count,
        )
