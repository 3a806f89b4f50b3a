"""The table's rows as the capture reads them: in the snapshot's key order.

The database orders the rows itself when every key kind sorts the same there and in SQLite
(``ORDERED_KEY_KINDS``); otherwise, or when it did not return them sorted
(``KeyOrderError``, the capture is then retried spooled), they go through a spool in the
state database, sorted there. ``snapshot_key`` makes a row's key in the snapshot's form;
``merge`` walks two key-ordered streams side by side.
"""

from __future__ import annotations

import json
import operator
import pickle
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from synchro.db.base import Adapter, Row, Table
from synchro.errors import Cancelled, CaptureError
from synchro.state import ORDERED_KEY_KINDS, StateDB, snap_value
from synchro.values import Kind, from_json

SPOOL_BATCH = 5000  # rows written to the spool at a time
CHECK_EVERY = 2000  # rows between two looks at the cancel flag (and progress reports)


class KeyOrderError(CaptureError):
    """The database did not return the rows in key order (the capture is retried spooled)."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(say=("engine.err.key_order", {"table": table}))


def snapshot_key(
    key_kinds: Sequence[Kind], key_pos: Sequence[int]
) -> Callable[[Row], tuple[Any, ...]]:
    """``row → tuple(snap_value(kind, row[pos]) ...)`` for one table's key, prepared once.

    Int and text keys are stored as they are (``snap_value``'s own rule), so a row whose
    key values already have those exact types skips the per-value call (the hot path: a
    key is made for every row scanned, received and read back). A row read raw (not
    normalised: ``Adapter.read_back(raw=True)``) gets the key of its normal form
    (``snap_value``'s rule).
    """
    kinds, positions = tuple(key_kinds), tuple(key_pos)

    def general(row: Row) -> tuple[Any, ...]:
        return tuple([snap_value(k, row[p]) for k, p in zip(kinds, positions, strict=True)])

    plain = {"int": "int", "text": "str"}
    if not kinds or not all(k in plain for k in kinds):
        return general
    # Int and text keys of exactly those types are their own snapshot values: one
    # generated function reads them and checks their types (``general`` otherwise).
    reads = "; ".join(f"v{i} = row[{p}]" for i, p in enumerate(positions))
    test = " and ".join(f"type(v{i}) is {plain[k]}" for i, k in enumerate(kinds))
    key = ", ".join(f"v{i}" for i in range(len(kinds))) + ","
    source = (
        f"def plain_key(row):\n    {reads}\n    if {test}:\n        return ({key})\n"
        "    return general(row)\n"
    )
    scope: dict[str, Any] = {"general": general}
    exec(source, scope)  # the source comes from the fixed template above only
    plain_key: Callable[[Row], tuple[Any, ...]] = scope["plain_key"]
    return plain_key


def key_getter(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``values → the key's values at positions`` (a tuple even of one), made once."""
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    getter: Callable[[Sequence[Any]], tuple[Any, ...]] = operator.itemgetter(*positions)
    return getter


def rows_in_key_order(
    adapter: Adapter,
    state: StateDB,
    table: Table,
    skey_of: Callable[[Row], tuple[Any, ...]],
    *,
    spooled: bool,
    keys_only: bool = False,
    raw: bool = False,
) -> Iterator[Row]:
    """The table's rows in snapshot key order, from the database or through a spool
    (``spooled``, or a key the database does not order as SQLite does).

    ``keys_only``: only the key columns are read (full-width rows, other values None).
    ``raw``: the rows may come as the driver returns them (``Adapter.scan``), for a caller
    that hashes them and normalises only those it keeps.
    """
    ordered = all(k in ORDERED_KEY_KINDS for k in table.key_kinds)
    if ordered and adapter.dialect != "access" and not spooled:
        if keys_only:
            yield from _widen(adapter.scan(table, columns=table.key, ordered=True), table)
        else:
            yield from adapter.scan(table, ordered=True, raw=raw)
        return
    nkeys = len(table.key)
    state.start_spool(nkeys)
    batch: list[tuple[Any, ...]] = []
    rows = (
        _widen(adapter.scan(table, columns=table.key, ordered=False), table)
        if keys_only
        else adapter.scan(table, ordered=False)
    )
    # Pickled, not in the package's JSON form: the spool is a temporary table of this
    # process, read back by it alone, and must give back every value exactly whatever
    # its column's kind (an untyped SQLite column holds text, numbers and bytes alike).
    for row in rows:
        batch.append((*skey_of(row), pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)))
        if len(batch) >= SPOOL_BATCH:
            state.add_to_spool(nkeys, batch)
            batch.clear()
    state.add_to_spool(nkeys, batch)
    for (data,) in state.spooled_rows(nkeys):
        yield pickle.loads(data)
    state.drop_spool()


def _widen(keyrows: Iterator[Row], table: Table) -> Iterator[Row]:
    """Key-only rows as full-width rows (only the key positions meaningful)."""
    width = len(table.columns)
    positions = table.key_positions
    for keyrow in keyrows:
        row: list[Any] = [None] * width
        for pos, value in zip(positions, keyrow, strict=True):
            row[pos] = value
        yield tuple(row)


def merge(
    db: Iterator[tuple[tuple[Any, ...], Row]],
    snap: Iterator[tuple[tuple[Any, ...], bytes]],
) -> Iterator[tuple[tuple[Any, ...], Any, bool, bool]]:
    """Merge two key-ordered streams: (key, (row, old_hash) | None, in_db, in_snapshot)."""
    end = object()
    d = next(db, end)
    s = next(snap, end)
    while d is not end or s is not end:
        if s is end or (d is not end and d[0] < s[0]):  # type: ignore[index]
            yield d[0], (d[1], b""), True, False  # type: ignore[index]
            d = next(db, end)
        elif d is end or s[0] < d[0]:  # type: ignore[index]
            yield s[0], None, False, True  # type: ignore[index]
            s = next(snap, end)
        else:
            yield d[0], (d[1], s[1]), True, True  # type: ignore[index]
            d = next(db, end)
            s = next(snap, end)


def checked_rows(
    rows: Iterator[Row],
    table: Table,
    skey_of: Callable[[Row], tuple[Any, ...]],
    cancel: threading.Event | None,
    progress: Callable[[str, int], None] | None,
) -> Iterator[tuple[tuple[Any, ...], Row]]:
    """(snapshot key, row), checking the order, the cancel flag and reporting progress."""
    previous: tuple[Any, ...] | None = None
    for seen, row in enumerate(rows, 1):
        skey = skey_of(row)
        if previous is not None and not skey > previous:
            raise KeyOrderError(table.name)
        previous = skey
        if seen % CHECK_EVERY == 0:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if progress is not None:
                progress(table.name, seen)
        yield skey, row


def held_rows(adapter: Adapter, table: Table, held: set[str]) -> Iterator[Row]:
    """The current rows of keys set aside at an earlier capture (to be tried again)."""
    if not held:
        return iter(())
    keys = []
    for kj in sorted(held):
        values = json.loads(kj)
        keys.append(tuple(from_json(k, v) for k, v in zip(table.key_kinds, values, strict=True)))
    return iter(adapter.fetch(table, keys))
