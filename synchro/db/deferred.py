"""Foreign keys SQLite checks only at the commit (``DEFERRABLE INITIALLY DEFERRED``).

Django declares every foreign key so, on SQLite as on PostgreSQL. A row whose parent is
missing then goes in, and the commit fails: the whole apply undone, at every run, the
package never applied. PostgreSQL is told to check them at each statement (``SET
CONSTRAINTS ALL IMMEDIATE``, ``odbc``); SQLite cannot be, so the adapter checks them
itself after each write, and refuses the write as the database would have: the engine
then sets the row aside alone, as any refused row. One keyed read of the parent (or, for
a delete, of the rows referring to it in the table itself) per statement; tables without
such a key cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from synchro.db.base import Adapter, Column, Key, Row, Table
from synchro.errors import DatabaseError


def deferred_parents(adapter: Adapter, table: Table, rows: Sequence[Row]) -> None:
    """Refuse the write when a deferred foreign key of ``rows`` finds no parent."""
    names = table.column_names
    for fk in table.foreign_keys:
        if not fk.deferred:
            continue
        positions = [names.index(c) for c in fk.columns]
        wanted = {tuple(row[p] for p in positions) for row in rows}
        wanted = {values for values in wanted if None not in values}
        if not wanted:
            continue
        columns = tuple(
            Column(ref, table.columns[p].kind)
            for ref, p in zip(fk.ref_columns, positions, strict=True)
        )
        probe = Table(fk.ref_table, columns, fk.ref_columns)
        found = {tuple(r) for r in adapter.fetch(probe, sorted(wanted, key=repr))}
        if len(found) < len(wanted) and wanted - found:
            _refuse(table.name, fk.ref_table)


def deferred_children(adapter: Adapter, table: Table, keys: Sequence[Key]) -> None:
    """Refuse a delete when a row of the table still refers to a deleted one through a
    deferred foreign key to itself (an employee's manager)."""
    for fk in table.foreign_keys:
        if not fk.deferred or fk.ref_table != table.name:
            continue
        if sorted(fk.ref_columns) != sorted(table.key):
            continue
        order = [fk.columns[list(fk.ref_columns).index(k)] for k in table.key]
        kinds = {c.name: c for c in table.columns}
        probe = Table(table.name, tuple(kinds[c] for c in order), tuple(order))
        if adapter.fetch(probe, list(keys)):
            _refuse(table.name, table.name)


def _refuse(table: str, parent: str) -> None:
    raise DatabaseError(say=("engine.db.deferred_parent", {"table": table, "parent": parent}))
