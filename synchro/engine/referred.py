"""A delete that would take other rows with it: the rows still referring to a parent.

A package carries its deletes children first, so when a parent's delete comes, the rows
the sender deleted with it (by hand or by its own ``ON DELETE CASCADE``) are gone here
too. A row of another synchronised table that still refers to the parent is one the
sender did not know: a sale the shop made since, not sent yet. ``ON DELETE RESTRICT``
refuses such a delete, and the row is then set aside (a Serveur) or kept while referred to
(the Siège, ``engine.revive``); ``ON DELETE CASCADE`` would delete that sale silently, and
the next capture, not finding it in the snapshot, would never send it. So the delete is
handled as if the database refused it, whatever the foreign key says (``still_referred``,
asked by the apply before each batch of deletes). A table referring to itself is left to
the database (its rows are deleted children first, ``engine.self_parents``).

A foreign key may refer to another unique column of the parent than its key (a customer's
code): its rows are looked for by the parent's values there, read from the row here. The
database decides what matches (a collation that ignores case or accents finds « c5 » for
« C5 »): a referring value found that is none of those asked for is asked for again, one
parent at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from synchro.db.base import Adapter, Row, Table


class Parent(Protocol):
    """A row about to be deleted: its key, and the row here (None: not read, or gone)."""

    @property
    def key(self) -> tuple[Any, ...]: ...

    @property
    def local(self) -> Row | None: ...


@dataclass(frozen=True)
class Probe:
    """One foreign key of another table to the parent: ``columns`` a table of only its
    columns, keyed by them (to read the referring values with ``Adapter.fetch``), in the
    order of the parent's key, or of ``by_row``: the positions in the parent's row of the
    unique columns it refers to instead."""

    child: Table
    columns: Table
    by_row: tuple[int, ...] = ()


def referring(tables: Mapping[str, Table], parent: Table) -> list[Probe]:
    """The other tables' foreign keys to ``parent`` (its key or other columns)."""
    found: list[Probe] = []
    for child in tables.values():
        if child.name == parent.name:
            continue
        by_name = {c.name: c for c in child.columns}
        for fk in child.foreign_keys:
            if fk.ref_table != parent.name:
                continue
            by_key = sorted(fk.ref_columns) == sorted(parent.key)
            refs = list(parent.key) if by_key else list(fk.ref_columns)
            if not set(refs) <= set(parent.column_names) or len(refs) != len(fk.columns):
                continue
            order = tuple(fk.columns[list(fk.ref_columns).index(k)] for k in refs)
            if not set(order) <= set(by_name):
                continue
            columns = Table(child.name, tuple(by_name[c] for c in order), order, child.key_source)
            by_row = () if by_key else tuple(parent.column_names.index(c) for c in refs)
            found.append(Probe(child, columns, by_row))
    return found


def still_referred(
    adapter: Adapter, probes: Sequence[Probe], parents: Sequence[Parent]
) -> dict[tuple[Any, ...], str]:
    """Of ``parents`` (rows about to be deleted), the keys of those a row of a referring
    table (``referring``) holds, each with that table's name."""
    found: dict[tuple[Any, ...], str] = {}
    for probe in probes:
        asked: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # referred values -> parent key
        for parent in parents:
            key = tuple(parent.key)
            if key in found:
                continue
            if not probe.by_row:
                asked[key] = key
            elif parent.local is not None:
                values = tuple(parent.local[i] for i in probe.by_row)
                if None not in values:
                    asked[values] = key
        if not asked:
            continue
        other = False
        for row in adapter.fetch(probe.columns, list(asked)):
            whose = asked.get(tuple(row))
            if whose is None:
                other = True  # (the database found it equal to one asked for)
            else:
                found.setdefault(whose, probe.child.name)
        for values, key in asked.items() if other else ():
            if key not in found and adapter.fetch(probe.columns, [values]):
                found[key] = probe.child.name
    return found
