"""The Siège's rule for a row deleted at one place while another place still uses it.

Establishment A deletes a parent row (an article) while B adds a child that refers to it (a
sale of that article). The foreign key refuses one of the two changes wherever they meet,
so left alone they would be set aside at both ends and never converge. The rule: **a row
still referred to is kept** — a sale is never lost for an article's sake.

- The child arrives at the Siège after the parent's delete: the parent's last version is
  taken back from the change log and inserted again (``Reviver.parents_of``), then the
  child goes in. The revived parent is logged as the Siège's own change, so every
  establishment (A included) gets it back before the child. The delete may be the
  Siège's own, made after its last capture: the log's last word on the parent is then
  its upsert while the database no longer holds it; the parent comes back the same way
  (the Siège's delete is the one that loses).
- The delete arrives after the child: the database refuses it; the Siège keeps the row and
  logs it again as its own change, so A gets it back (``Reviver.keep``).

Either way the losing delete is written to the conflict log (policy ``reference``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro.capture.source import snapshot_key
from synchro.db.base import Adapter, ForeignKey, Row, Table
from synchro.state import StateDB, key_json
from synchro.values import from_json, row_hasher

POLICY = "reference"
MAX_DEPTH = 8  # parent of a parent...: how far the rows brought back go


@dataclass(frozen=True)
class Revived:
    table: Table
    skey: tuple[Any, ...]
    row: Row
    row_json: str
    deleted_by: str


Mark = tuple[str, tuple[Any, ...]]  # a row: its table's name, its key as the snapshot holds it


@dataclass
class _Dead:
    """A deleted row to bring back, and its references to the others brought back."""

    revived: Revived
    refs: list[tuple[ForeignKey, Mark]] = field(default_factory=list)


def _nullable(dead: _Dead, fks: list[ForeignKey]) -> bool:
    """Whether the columns of ``fks`` in ``dead``'s table may all be NULL."""
    nullable = {c.name: c.nullable for c in dead.revived.table.columns}
    return all(nullable[c] for fk in fks for c in fk.columns)


class Reviver:
    def __init__(self, adapter: Adapter, state: StateDB, tables: Mapping[str, Table]) -> None:
        self.adapter, self.state, self.tables = adapter, state, tables

    def parents_of(self, table: Table, row: Row, *, local: str, origin: str = "") -> list[Revived]:
        """Insert again the deleted rows ``row`` refers to (parents first). The caller runs
        this in a savepoint and calls ``record`` only once the child went in. ``local``:
        this node's code (who deleted a parent the log has not seen deleted); ``origin``:
        who sent the child (``_deleted``).

        Deleted rows that refer to each other (a customer and its default address, gone
        together) go in two steps, as the apply writes them (``engine.two_steps``): one of
        them goes first with its references to the others emptied (only where they may
        be NULL), and is made whole once all are in."""
        found: dict[Mark, _Dead] = {}
        order: list[_Dead] = []
        self._collect(table, row, (local, origin), found, order, 0)
        return self._insert(order)

    def _collect(
        self,
        table: Table,
        row: Row,
        who: tuple[str, str],
        found: dict[Mark, _Dead],
        order: list[_Dead],
        depth: int,
    ) -> list[tuple[ForeignKey, Mark]]:
        """The deleted rows ``row`` refers to, and theirs, into ``found`` and ``order``
        (parents first where they do not refer to each other); returns ``row``'s
        references to them."""
        names = table.column_names
        refs: list[tuple[ForeignKey, Mark]] = []
        for fk in table.foreign_keys:
            parent = self.tables.get(fk.ref_table)
            if parent is None or not set(fk.ref_columns) <= set(parent.column_names):
                continue
            pairs = zip(fk.ref_columns, fk.columns, strict=True)
            by_column = {r: row[names.index(c)] for r, c in pairs}
            if any(v is None for v in by_column.values()):
                continue
            last = self._deleted(parent, by_column, *who)
            if last is None:
                continue  # there, or never known here: the foreign key error stands
            row_json, deleted_by = last
            stored = json.loads(row_json)
            prow = tuple(from_json(k, v) for k, v in zip(parent.kinds, stored, strict=True))
            mark = (parent.name, snapshot_key(parent.key_kinds, parent.key_positions)(prow))
            if mark not in found and depth < MAX_DEPTH:
                dead = _Dead(Revived(parent, mark[1], prow, row_json, deleted_by))
                found[mark] = dead
                dead.refs = self._collect(parent, prow, who, found, order, depth + 1)
                order.append(dead)
            if mark in found:
                refs.append((fk, mark))
        return refs

    def _insert(self, order: list[_Dead]) -> list[Revived]:
        """Insert ``order``'s rows, each once the rows it refers to are in; where they
        wait for one another, the first whose references to the waiting ones may be NULL
        goes without them, and is made whole at the end."""
        waiting, inside = list(order), set[Mark]()
        emptied: list[Revived] = []
        done: list[Revived] = []
        while waiting:
            unmet = [[fk for fk, m in d.refs if m not in inside] for d in waiting]
            at = next((i for i, fks in enumerate(unmet) if not fks), None)
            if at is None:  # rows that refer to each other
                at = next((i for i, fks in enumerate(unmet) if _nullable(waiting[i], fks)), 0)
            dead = waiting.pop(at)
            names = dead.revived.table.column_names
            now = list(dead.revived.row)
            for fk in unmet[at]:
                for column in fk.columns:
                    now[names.index(column)] = None
            self.adapter.insert(dead.revived.table, [tuple(now)])
            if tuple(now) != dead.revived.row:
                emptied.append(dead.revived)
            inside.add((dead.revived.table.name, dead.revived.skey))
            done.append(dead.revived)
        for revived in emptied:
            self.adapter.upsert(revived.table, [revived.row])
        return done

    def _deleted(
        self, parent: Table, by_column: dict[str, Any], local: str, origin: str = ""
    ) -> tuple[str, str] | None:
        """The last version of the parent row holding ``by_column`` and who deleted it,
        when the database no longer holds it. By its key: from the log's delete, or its
        last upsert (deleted here, not captured yet). By another unique column (a
        product's code): among the log's deleted rows of the table."""
        columns = tuple(by_column)
        values = tuple(by_column.values())
        if sorted(columns) == sorted(parent.key):
            key = tuple(by_column[k] for k in parent.key)
            if self.adapter.fetch(parent, [key]):
                return None
            kj = key_json(snapshot_key(parent.key_kinds, range(len(parent.key)))(key))
            last = self.state.deleted_version(parent.name, kj)
            if last is not None:
                return last.row_json, last.deleted_by
            held = self.state.last_upsert(parent.name, kj)
            return (held, local) if held is not None else None
        kinds = {c.name: c for c in parent.columns}
        probe = Table(parent.name, tuple(kinds[c] for c in columns), columns)
        if self.adapter.fetch(probe, [values]):
            return None
        positions = [parent.column_names.index(c) for c in columns]
        for kj in self.state.deleted_keys(parent.name):
            last = self.state.deleted_version(parent.name, kj)
            if last is None:
                continue
            stored = json.loads(last.row_json)
            found = tuple(from_json(parent.kinds[p], stored[p]) for p in positions)
            if found == values:
                return last.row_json, last.deleted_by
        return self._lost(parent, positions, values, origin)

    def _lost(
        self, parent: Table, positions: list[int], values: tuple[Any, ...], origin: str
    ) -> tuple[str, str] | None:
        """The version of a deleted row ``origin`` sent, holding ``values`` where no
        version here does: a product whose code the sender changed while another node
        deleted it, the sender's new sale referring to that code (its update lost to
        the delete). The delete loses in turn: the row comes back as the sender had it
        (found by the relational soak: the sale set aside at the Siège, the delete at
        the sender, for good)."""
        if not origin:
            return None
        for _kj, row_json, deleted_by in self.state.lost_to_deletes(parent.name, origin):
            stored = json.loads(row_json)
            found = tuple(from_json(parent.kinds[p], stored[p]) for p in positions)
            if found != values:
                continue
            key = tuple(from_json(parent.kinds[p], stored[p]) for p in parent.key_positions)
            return None if self.adapter.fetch(parent, [key]) else (row_json, deleted_by)
        return None

    def record(self, revived: Sequence[Revived], *, local: str, package: str, kept_by: str) -> None:
        """Snapshot, change log (as the Siège's own change) and conflict log."""
        for r in revived:
            snap = self.state.snapshot_table(r.table)
            digest = row_hasher(r.table.kinds)(r.row)
            self.state.put_snapshot(snap, len(r.table.key), [(*r.skey, digest)])
            kj = key_json(r.skey)
            self.state.log_change(local, r.table.name, "U", kj, r.row_json)
            self.state.log_conflict(
                package, r.table.name, kj, POLICY, kept_by, r.deleted_by, r.row_json, None
            )

    def keep(
        self,
        table: Table,
        kj: str,
        row_json: str,
        *,
        local: str,
        package: str,
        deleted_by: str,
    ) -> None:
        """A delete the database refused: the row stays and goes back to the deleter."""
        self.state.log_change(local, table.name, "U", kj, row_json)
        self.state.log_conflict(package, table.name, kj, POLICY, local, deleted_by, row_json, None)
