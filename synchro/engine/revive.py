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
from dataclasses import dataclass
from typing import Any

from synchro.capture.source import snapshot_key
from synchro.db.base import Adapter, Row, Table
from synchro.state import StateDB, key_json
from synchro.values import from_json, row_hasher

POLICY = "reference"
MAX_DEPTH = 8  # parent of a parent...: a cycle of foreign keys stops here


@dataclass(frozen=True)
class Revived:
    table: Table
    skey: tuple[Any, ...]
    row: Row
    row_json: str
    deleted_by: str


class Reviver:
    def __init__(self, adapter: Adapter, state: StateDB, tables: Mapping[str, Table]) -> None:
        self.adapter, self.state, self.tables = adapter, state, tables

    def parents_of(self, table: Table, row: Row, *, local: str, depth: int = 0) -> list[Revived]:
        """Insert again the deleted rows ``row`` refers to (parents first). The caller runs
        this in a savepoint and calls ``record`` only once the child went in. ``local``:
        this node's code (who deleted a parent the log has not seen deleted)."""
        revived: list[Revived] = []
        names = table.column_names
        for fk in table.foreign_keys:
            parent = self.tables.get(fk.ref_table)
            if parent is None or not set(fk.ref_columns) <= set(parent.column_names):
                continue
            pairs = zip(fk.ref_columns, fk.columns, strict=True)
            by_column = {r: row[names.index(c)] for r, c in pairs}
            if any(v is None for v in by_column.values()):
                continue
            last = self._deleted(parent, by_column, local)
            if last is None:
                continue  # there, or never known here: the foreign key error stands
            row_json, deleted_by = last
            stored = json.loads(row_json)
            prow = tuple(from_json(k, v) for k, v in zip(parent.kinds, stored, strict=True))
            if depth < MAX_DEPTH:
                revived += self.parents_of(parent, prow, local=local, depth=depth + 1)
            self.adapter.insert(parent, [prow])
            skey = snapshot_key(parent.key_kinds, parent.key_positions)(prow)
            revived.append(Revived(parent, skey, prow, row_json, deleted_by))
        return revived

    def _deleted(
        self, parent: Table, by_column: dict[str, Any], local: str
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
