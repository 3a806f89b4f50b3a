"""The rows of a table that refers to itself (an employee's manager, a category's parent),
parents before children; and the tables that refer to each other.

A package holds a table's rows in key order; a parent made after its child has the
greater key, so a database that checks each row as it is written (MariaDB) refuses the
child, and a parent deleted before its child. The apply lets such rows wait until it has
the table's others (``apply._TableApplier.finish``), then writes them in this order: each
row after its parent when the parent is among them, deletes the other way round. A chain
of any length goes in one pass (no recursion), rows in a cycle keep their order.

Tables that refer to each other (a customer's default address, the address's customer)
come in an order that breaks their cycle by name (``engine.tables.dependency_order``), so
a row of the first may refer to a row of the second not applied yet: such tables'
refused rows wait until the end of the package (``in_cycles``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, TypeVar

from synchro import faults
from synchro.db.base import Row, Table
from synchro.engine.two_steps import Held, Waiting, in_two_steps

H = TypeVar("H", bound=Held)


def parents_first(table: Table, items: Sequence[H], delete: bool) -> list[H]:
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
    by_key: dict[tuple[Any, ...], H] = {tuple(i.key): i for i in items}

    def parent_of(item: H) -> H | None:
        row: Row | None = item.local if delete else item.row
        if row is None:
            return None
        for link in links:
            parent = by_key.get(tuple(row[i] for i in link))
            if parent is not None and parent is not item:
                return parent
        return None

    ordered: list[H] = []
    placed: set[int] = set()
    for item in items:
        path: list[H] = []
        on_path: set[int] = set()
        found: H | None = item
        while found is not None and id(found) not in placed and id(found) not in on_path:
            path.append(found)
            on_path.add(id(found))
            found = parent_of(found)
        for step in reversed(path):
            placed.add(id(step))
            ordered.append(step)
    return ordered[::-1] if delete else ordered


def in_cycles(tables: Iterable[Table]) -> set[str]:
    """The tables that refer, through one or more others, back to themselves (their own
    foreign keys to themselves aside)."""
    tables = list(tables)
    names = {t.name for t in tables}
    parents = {
        t.name: {fk.ref_table for fk in t.foreign_keys if fk.ref_table in names} - {t.name}
        for t in tables
    }
    found: set[str] = set()
    for start in parents:
        seen: set[str] = set()
        todo = list(parents[start])
        while todo:
            name = todo.pop()
            if name == start:
                found.add(start)
                break
            if name not in seen:
                seen.add(name)
                todo.extend(parents[name])
    return found


def cycles(tables: Iterable[Table]) -> set[str]:
    """The tables whose rows may refer to each other: those in a cycle of foreign keys
    (``in_cycles``) and those that refer to themselves."""
    tables = list(tables)
    selves = {t.name for t in tables if any(f.ref_table == t.name for f in t.foreign_keys)}
    return in_cycles(tables) | selves


def finish_waiting(waiting: Sequence[Waiting], cycle: Collection[str], last: bool = True) -> None:
    """The rows that waited (``cycle``: the names of the tables whose references may
    wait empty, ``two_steps``): again, table after table, while any goes in; those that
    still need each other in two steps, and again; then, when ``last`` (the end of the
    package), once more the usual way, where a refused row is set aside."""
    waiting = [w for w in waiting if w.deferred]
    if not waiting:
        return
    faults.point("apply.deferred")
    while True:
        while any([w.again(last=False) for w in waiting if w.deferred]):
            pass
        if not in_two_steps(waiting[0].adapter, waiting, cycle):
            break
    for table in waiting if last else ():
        if table.deferred:
            table.again(last=True)
