"""New rows that refer to each other, written in two steps, as a program makes them.

A new customer and its new default address, the address's customer being that customer;
two new employees, each the other's deputy. Whichever goes first, its parent is not there
yet: a database that checks each row as it is written (MariaDB, PostgreSQL without a
deferred constraint, SQLite) refuses both, however often they go again. The shop's
program made them in two steps: the customer without its address, the address, then
the customer's address. So does this, for the rows still refused when the waiting rows
no longer go in (``self_parents.finish_waiting``):

1. each such row whose references into the cycle can be empty is written with them
   empty (NULL);
2. the other waiting rows, while any goes in (their parents are there now);
3. the rows of step 1 again, whole.

Two rows that swap the values of a unique column that can be empty (two rooms, their
guests) are the same: neither goes first, both go in two steps, the column emptied first.
Where the column cannot be empty (two rooms swap their codes, two dishes their places on
the menu), step 1 gives it a stand-in value no row holds, as the program did through a
third code (``stand_ins``: text and whole numbers only; another kind stays refused).

Deleting both is the same the other way round: the references of the rows to delete
emptied first, then the deletes while any goes (each only when no row of another table
refers to it any more, ``engine.referred``).

All of it inside one savepoint: a row refused whole at step 3 (or not deleted) would stay
with empty references, stored otherwise than sent, so the attempt is undone and made
again without it (it is then set aside as any refused row). Nothing is recorded before
the whole attempt holds: the rows are then read back and settled by their table's applier
(stored = sent). A database that cannot undo a block alone (MS Access) does not try.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from synchro import faults
from synchro.db.base import Adapter, Column, Row, Table
from synchro.errors import DatabaseError
from synchro.values import Kind


class Held(Protocol):
    """A row that waits: to be written (``row``) or deleted, by ``key``; ``local`` the
    row here when it was read (``apply_rows.Item``, ``retry``'s entries)."""

    @property
    def key(self) -> tuple[Any, ...]: ...

    @property
    def row(self) -> Row | None: ...

    @property
    def local(self) -> Row | None: ...


class Waiting(Protocol):
    """A table's rows that waited (``apply._TableApplier``, ``retry._TableRetry``)."""

    @property
    def adapter(self) -> Adapter: ...

    @property
    def table(self) -> Table: ...

    @property
    def deferred(self) -> Sequence[tuple[Held, bool]]: ...  # (row, delete)

    def again(self, last: bool) -> bool: ...

    def unreferred(self, items: list[Any]) -> list[Any]: ...

    def settle_written(self, items: list[Any], delete: bool) -> None:
        """``items`` written (or deleted) for it: out of ``deferred``, read back, settled."""


_Pending = list[tuple[Waiting, Held]]


def emptied_columns(table: Table, cycle: Collection[str]) -> tuple[int, ...]:
    """The positions of the columns a row of ``table`` may wait without: those of its
    foreign keys into ``cycle`` (rows that refer to each other), and of its unique
    indexes (two rooms that swap their guests), where every column of the key or index
    can be empty (NULL). An empty one conflicts with nothing: PostgreSQL, MariaDB and
    SQLite let a unique index hold several (SQL Server refuses the second: undone)."""
    by_name = {c.name: (i, c) for i, c in enumerate(table.columns)}
    groups = [fk.columns for fk in table.foreign_keys if fk.ref_table in cycle]
    groups += [cols for cols in table.uniques if not set(cols) & set(table.key)]
    cut: list[int] = []
    for names in groups:
        columns = [by_name[c] for c in names if c in by_name]
        if len(columns) == len(names) and all(c.nullable for _i, c in columns):
            cut.extend(i for i, _c in columns if i not in cut)
    return tuple(cut)


def stand_ins(table: Table) -> dict[int, Callable[[int], Any]]:
    """For each unique index of ``table`` whose columns cannot be empty, a column given a
    stand-in value at step 1: its position, and what makes the ``n``-th row's value (a
    text ``~n~synchro`` cut to the column's size, a whole number from the far end of the
    column's range). A stand-in that meets a value after all is refused by the database,
    and the row waits as before; none outlives the attempt (step 3, or undone)."""
    by_name = {c.name: (i, c) for i, c in enumerate(table.columns)}
    found: dict[int, Callable[[int], Any]] = {}
    for names in table.uniques:
        columns = [by_name[c] for c in names if c in by_name]
        if set(names) & set(table.key) or len(columns) != len(names):
            continue
        if any(c.nullable for _i, c in columns):
            continue  # emptied (``emptied_columns``)
        for i, column in columns:
            make = _stand_in(column)
            if make is not None:
                found.setdefault(i, make)
                break
    return found


def _stand_in(column: Column) -> Callable[[int], Any] | None:
    if column.kind is Kind.TEXT:
        room = column.length or 1000
        return (lambda n: f"~{n}~synchro"[:room]) if room >= 4 else None
    if column.kind is Kind.INT:
        bits = 8 * (column.width or 8)
        if column.unsigned:
            return lambda n: 2**bits - 1 - n
        return lambda n: -(2 ** (bits - 1)) + n
    return None


def in_two_steps(adapter: Adapter, waiting: Sequence[Waiting], cycle: Collection[str]) -> bool:
    """The waiting rows of ``waiting`` written and deleted as the module says; whether
    any went (those are out of their applier's ``deferred``, read back and settled)."""
    if not adapter.undoes_blocks:
        return False
    went = False
    for delete in (False, True):
        cuts = {id(w): _Cut(emptied_columns(w.table, cycle), w.table, delete) for w in waiting}
        pending = [(w, i) for w in waiting for i, d in w.deferred if d is delete]
        done = _attempts(adapter, pending, cuts, delete)
        gone = {id(i) for _w, i in done}
        for w in waiting:
            settled = [i for i, d in w.deferred if d is delete and id(i) in gone]
            if settled:
                w.settle_written(settled, delete)
                went = True
    return went


class _Cut:
    """What step 1 takes out of a row of ``table``: the columns ``emptied`` (NULL), and
    for writes the ``stand_ins``."""

    def __init__(self, emptied: tuple[int, ...], table: Table, delete: bool) -> None:
        self.emptied = emptied
        self.stand_ins = {} if delete else stand_ins(table)

    def applies(self, row: Row) -> bool:
        """Whether step 1 changes anything in ``row``."""
        return bool(self.stand_ins) or any(row[p] is not None for p in self.emptied)

    def halfway(self, row: Row, n: int) -> Row:
        """``row`` as step 1 writes it (``n``: the row's number in the attempt)."""
        out = [None if p in self.emptied else v for p, v in enumerate(row)]
        for p, make in self.stand_ins.items():
            out[p] = make(n)
        return tuple(out)


class _Refused(Exception):
    """A row of step 1 not written whole (or not deleted) after all: the attempt is undone."""

    def __init__(self, item: Held) -> None:
        super().__init__()
        self.item = item


def _attempts(adapter: Adapter, pending: _Pending, cuts: dict[int, _Cut], delete: bool) -> _Pending:
    """Attempts, each in a savepoint, until one holds (a row that spoilt one left out of
    the next); the rows written or deleted."""
    left_out: set[int] = set()
    while True:
        split: _Pending = []
        for w, item in pending:
            row = item.local if delete else item.row
            if id(item) not in left_out and row is not None and cuts[id(w)].applies(row):
                split.append((w, item))
        if not split:
            return []
        try:
            with adapter.savepoint():
                return _attempt(adapter, split, pending, cuts, delete)
        except _Refused as refused:
            left_out.add(id(refused.item))


def _attempt(
    adapter: Adapter,
    split: _Pending,
    pending: _Pending,
    cuts: dict[int, _Cut],
    delete: bool,
) -> _Pending:
    """Steps 1-3; the rows written or deleted. Raises ``_Refused`` for a row of step 1
    refused whole or not deleted at the end."""
    first: _Pending = []
    for n, (w, item) in enumerate(split, 1):
        row = item.local if delete else item.row
        assert row is not None
        if _written(adapter, w.table, item, cuts[id(w)].halfway(row, n)):
            first.append((w, item))
    if not first:
        return []
    faults.point("apply.two_steps")  # (rows written with empty references: undone by a crash)
    halfway = {id(i) for _w, i in first}
    done: _Pending = [] if delete else list(first)
    others = list(pending) if delete else [(w, i) for w, i in pending if id(i) not in halfway]
    while others:
        went = [(w, i) for w, i in others if _went(adapter, w, i, delete)]
        if not went:
            break
        done.extend(went)
        moved = {id(i) for _w, i in went}
        others = [(w, i) for w, i in others if id(i) not in moved]
    if delete:
        deleted = {id(i) for _w, i in done}
        for _w, item in first:
            if id(item) not in deleted:
                raise _Refused(item)
        return done
    for w, item in first:
        try:
            with adapter.savepoint():
                adapter.upsert(w.table, [item.row] if item.row is not None else [])
        except DatabaseError:
            raise _Refused(item) from None
    return done


def _went(adapter: Adapter, w: Waiting, item: Held, delete: bool) -> bool:
    """Step 2 for one row: written whole, or deleted when nothing refers to it."""
    if not delete:
        return _written(adapter, w.table, item, item.row)
    if not w.unreferred([item]):
        return False
    try:
        with adapter.savepoint():
            adapter.delete(w.table, [item.key])
    except DatabaseError:
        return False
    return True


def _written(adapter: Adapter, table: Table, item: Held, row: Row | None) -> bool:
    """``row`` written in a savepoint of its own: inserted when the key had no row here
    (never overwriting a row of another key the database finds equal), else upserted."""
    if row is None:
        return False
    try:
        with adapter.savepoint():
            if item.local is None:
                adapter.insert(table, [row])
            else:
                adapter.upsert(table, [row])
    except DatabaseError:
        return False
    return True
