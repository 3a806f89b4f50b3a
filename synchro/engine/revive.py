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
            if parent is None or sorted(fk.ref_columns) != sorted(parent.key):
                continue
            values = [row[names.index(c)] for c in fk.columns]
            by_column = dict(zip(fk.ref_columns, values, strict=True))
            key = tuple(by_column[k] for k in parent.key)
            if any(v is None for v in key) or self.adapter.fetch(parent, [key]):
                continue
            skey = snapshot_key(parent.key_kinds, range(len(parent.key)))(key)
            kj = key_json(skey)
            last = self.state.deleted_version(parent.name, kj)
            if last is not None:
                row_json, deleted_by = last
            else:  # the log's last word is an upsert: deleted here, not captured yet
                held = self.state.last_upsert(parent.name, kj)
                if held is None:
                    continue  # never known here: the foreign key error stands
                row_json, deleted_by = held, local
            stored = json.loads(row_json)
            prow = tuple(from_json(k, v) for k, v in zip(parent.kinds, stored, strict=True))
            if depth < MAX_DEPTH:
                revived += self.parents_of(parent, prow, local=local, depth=depth + 1)
            self.adapter.insert(parent, [prow])
            revived.append(Revived(parent, skey, prow, row_json, deleted_by))
        return revived

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
