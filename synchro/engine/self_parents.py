"""The rows of a table that refers to itself (an employee's manager, a category's parent),
parents before children.

A package holds a table's rows in key order; a parent made after its child has the
greater key, so a database that checks each row as it is written (MariaDB) refuses the
child, and a parent deleted before its child. The apply lets such rows wait until it has
the table's others (``apply._TableApplier.finish``), then writes them in this order: each
row after its parent when the parent is among them, deletes the other way round. A chain
of any length goes in one pass (no recursion), rows in a cycle keep their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synchro.db.base import Row, Table
from synchro.engine.apply_rows import Item


def parents_first(table: Table, items: Sequence[Item], delete: bool) -> list[Item]:
    """``items`` in an order the table's own foreign keys allow (see the module's text):
    a parent is read from ``Item.row`` (the row written) or, for a delete, ``Item.local``
    (the row there now)."""
    positions = {name: i for i, name in enumerate(table.column_names)}
    links = [
        tuple(positions[c] for c in fk.columns)
        for fk in table.foreign_keys
        if fk.ref_table == table.name and tuple(fk.ref_columns) == tuple(table.key)
    ]
    if not links:
        return list(items)
    by_key: dict[tuple[Any, ...], Item] = {tuple(i.key): i for i in items}

    def parent_of(item: Item) -> Item | None:
        row: Row | None = item.local if delete else item.row
        if row is None:
            return None
        for link in links:
            parent = by_key.get(tuple(row[i] for i in link))
            if parent is not None and parent is not item:
                return parent
        return None

    ordered: list[Item] = []
    placed: set[int] = set()
    for item in items:
        path: list[Item] = []
        on_path: set[int] = set()
        found: Item | None = item
        while found is not None and id(found) not in placed and id(found) not in on_path:
            path.append(found)
            on_path.add(id(found))
            found = parent_of(found)
        for step in reversed(path):
            placed.add(id(step))
            ordered.append(step)
    return ordered[::-1] if delete else ordered
