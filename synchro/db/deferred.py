"""Foreign keys SQLite checks only at the commit (``DEFERRABLE INITIALLY DEFERRED``).

Django declares every foreign key so, on SQLite as on PostgreSQL. A row whose parent is
missing then goes in, and the commit fails: the whole apply undone, at every run, the
package never applied. PostgreSQL is told to check them at each statement (``SET
CONSTRAINTS ALL IMMEDIATE``, ``odbc``); SQLite cannot be, so the adapter checks them
itself after each write, and refuses the write as the database would have: the engine
then sets the row aside alone, as any refused row. One keyed read of the parent (or, for
a delete, of the rows still referring to it) per statement; tables without such a key
cost nothing.

A delete is checked against every table of the database that refers to the table so, not
only the synchronised ones: a table left out of the synchronisation (Django's
``django_admin_log``, referring to its users) is never probed by the engine, and a user
deleted at the Siège, still in a log line here, failed the commit at every run.
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


def deferred_children(
    adapter: Adapter, table: Table, keys: Sequence[Key], referrers: Sequence[Table] = ()
) -> None:
    """Refuse a delete when a row still refers to a deleted one through a deferred
    foreign key: of the table itself (an employee's manager) or of one of ``referrers``
    (the database's tables holding such keys, synchronised or not). Keys to other
    columns than the table's key are left to the commit."""
    others = [t for t in referrers if t.name.casefold() != table.name.casefold()]
    for child in (table, *others):
        for fk in child.foreign_keys:
            if not fk.deferred or fk.ref_table.casefold() != table.name.casefold():
                continue
            if sorted(c.casefold() for c in fk.ref_columns) != sorted(
                k.casefold() for k in table.key
            ):
                continue
            refs = [c.casefold() for c in fk.ref_columns]
            order = [fk.columns[refs.index(k.casefold())] for k in table.key]
            kinds = {c.name: c for c in child.columns}
            if not set(order) <= set(kinds):
                continue
            probe = Table(child.name, tuple(kinds[c] for c in order), tuple(order))
            if adapter.fetch(probe, list(keys)):
                say = ("engine.db.deferred_child", {"table": child.name, "parent": table.name})
                raise DatabaseError(say=say)


def _refuse(table: str, parent: str) -> None:
    raise DatabaseError(say=("engine.db.deferred_parent", {"table": table, "parent": parent}))
