"""Per-table checksums: the proof that nodes converged (the round's « Contrôle »).

The checksum of a table is its row count and the sum, modulo 2**128, of the 128-bit
canonical digests of its rows (``values.row_hasher``). A sum does not depend on the order
the database returns the rows in, so the table is read once, streaming, in whatever order
is cheapest, with flat memory whatever its size; two databases holding the same rows agree
whatever their driver or storage (DECIMAL as text, fractional seconds...). Unlike XOR, a
sum does not let two identical rows cancel out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from synchro.db import columnar
from synchro.db.base import Adapter, Table
from synchro.names import same_names
from synchro.state import StateDB
from synchro.values import row_hasher

log = logging.getLogger("synchro.engine")
MOD = 1 << 128
Sums = dict[str, tuple[int, str]]
V = TypeVar("V")


def table_checksum(adapter: Adapter, table: Table) -> tuple[int, str]:
    """(row count, 32 hex digits) of ``table``, independent of the database's row order.

    A big table (``db.columnar.big_enough``) is read column by column where the adapter
    can (ADBC for SQLite: a driver other than the one that wrote the rows; arrow-odbc for
    PostgreSQL and MariaDB: another client of the same ODBC driver), with the same digests
    (``values.vector``)."""
    if adapter.arrow_ready() and columnar.big_enough(adapter.count(table)):
        batches = adapter.arrow_batches(table, ordered=False)
        if batches is not None:
            try:
                return _columnar_checksum(table, batches)
            except columnar.NotExact as exc:  # the table is read row by row below
                log.warning(
                    "Table %s : contrôle en colonnes inexact (%s) ; lu ligne par ligne",
                    table.name,
                    exc,
                )
    digest = row_hasher(tuple(table.kinds))
    count = 0
    total = 0
    # Rows as the driver returns them: the digest of a value is that of its normal form,
    # found without making a Decimal or a datetime of each (half of this loop's cost).
    for row in adapter.scan(table, ordered=False, raw=True):
        total += int.from_bytes(digest(row), "big")
        count += 1
    return count, f"{total % MOD:032x}"


def _columnar_checksum(table: Table, batches: Iterator[Any]) -> tuple[int, str]:
    count = 0
    total = 0
    from_bytes = int.from_bytes
    for _arrays, digests in columnar.digested(table, batches):
        total += sum(from_bytes(d, "big") for d in digests)
        count += len(digests)
    return count, f"{total % MOD:032x}"


def checksums(adapter: Adapter, tables: Sequence[Table]) -> Sums:
    """The checksum of every table, by name."""
    return {t.name: table_checksum(adapter, t) for t in tables}


def agreed_sums(state: StateDB, tables: Sequence[Table]) -> Sums:
    """Per table, the checksum of its rows as this node last exchanged them: its snapshot,
    whose hashes are the digests a row of the database gives (``values.row_hasher``).

    Two nodes whose databases differ only by changes made there since (a shop that works
    while the round runs: the next capture sends them) have the same agreed sums; a node
    whose record of what it exchanged drifted from the group's, or that holds a row stored
    differently from what was sent (its snapshot takes the stored row's hash,
    ``engine.apply``), has not."""
    out: Sums = {}
    for table in tables:
        count, total = state.snapshot_sum(state.snapshot_table(table))
        out[table.name] = (count, f"{total % MOD:032x}")
    return out


def differing(
    mine: Mapping[str, Sequence[object]], theirs: Mapping[str, Sequence[object]]
) -> list[str]:
    """Names (``mine``'s) of the tables both sides checked whose count or hash differ,
    sorted. A table is the same whichever way each back end spells it (``same_names``)."""
    theirs = in_names_of(mine, theirs)
    return sorted(
        name
        for name in set(mine) & set(theirs)
        if [str(v) for v in mine[name]] != [str(v) for v in theirs[name]]
    )


def in_names_of(mine: Iterable[str], theirs: Mapping[str, V]) -> dict[str, V]:
    """``theirs`` (another node's sums, by table) under the names of ``mine`` where a table
    is spelt otherwise there (``names.same_names``); the others as they are."""
    local_of = same_names(theirs, mine)
    return {local_of.get(name, name): value for name, value in theirs.items()}


def to_json(sums: Sums) -> dict[str, list[object]]:
    return {name: [count, digest] for name, (count, digest) in sums.items()}


def sums_from_json(data: object) -> Sums:
    """Checksums read back from JSON; anything malformed is left out."""
    out: Sums = {}
    if isinstance(data, dict):
        for name, value in data.items():
            if isinstance(value, list | tuple) and len(value) == 2:
                try:
                    out[str(name)] = (int(value[0]), str(value[1]))
                except (TypeError, ValueError):
                    continue
    return out
