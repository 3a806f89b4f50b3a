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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from synchro.db.base import Adapter, Key, Table


def referring(tables: Mapping[str, Table], parent: Table) -> list[tuple[Table, Table]]:
    """The other tables' foreign keys to ``parent``'s key, each as (table, a table of only
    the foreign key's columns keyed by them in the order of ``parent``'s key), to read
    the referring values with ``Adapter.fetch``."""
    found: list[tuple[Table, Table]] = []
    for child in tables.values():
        if child.name == parent.name:
            continue
        by_name = {c.name: c for c in child.columns}
        for fk in child.foreign_keys:
            if fk.ref_table != parent.name or sorted(fk.ref_columns) != sorted(parent.key):
                continue
            order = tuple(fk.columns[list(fk.ref_columns).index(k)] for k in parent.key)
            columns = tuple(by_name[c] for c in order)
            found.append((child, Table(child.name, columns, order, child.key_source)))
    return found


def still_referred(
    adapter: Adapter, probes: Sequence[tuple[Table, Table]], keys: Sequence[Key]
) -> dict[tuple[Any, ...], str]:
    """Of ``keys`` (rows of the parent about to be deleted), those a row of a referring
    table (``referring``) holds, each with that table's name."""
    found: dict[tuple[Any, ...], str] = {}
    for child, probe in probes:
        left = [key for key in keys if tuple(key) not in found]
        if not left:
            break
        for row in adapter.fetch(probe, left):
            found.setdefault(tuple(row), child.name)
    return found
