"""The capture's full scan of one table: its rows merged with the snapshot, in key order.

Two sources give the table's rows as ``(snapshot key, digest, row, key values)``:
- ``row_items``: every row through the adapter (``rows_in_key_order``), hashed one by one;
- ``columnar_items`` (issue 13): a big table (``db.columnar.big_enough``) whose snapshot is
  mostly filled, read as Arrow batches (``Adapter.arrow_batches``: ADBC for SQLite,
  arrow-odbc for PostgreSQL and MariaDB) and
  hashed a batch at a time (``values.vector``, the same digests). Only the keys are made
  Python values; the rows that differ from the snapshot are read again through the adapter,
  by key, once the scan is over (``_Deferred``), so what goes into the package, and the
  digest the snapshot keeps, are exactly what the row path gives (a row changed in between
  is sent as it is then).

``full_diff`` merges either with the snapshot in one loop (the hot path of every capture).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from synchro import faults
from synchro.capture.parents import HOLD_AT_MOST, ParentCheck
from synchro.capture.source import CHECK_EVERY, KeyOrderError, rows_in_key_order, snapshot_key
from synchro.db import columnar
from synchro.db.base import Adapter, Row, Table
from synchro.errors import Cancelled, PackageError
from synchro.state import ORDERED_KEY_KINDS, StateDB
from synchro.values import Kind, row_hasher, row_normaliser

Item = tuple[tuple[Any, ...], bytes, Row | None, tuple[Any, ...] | None]
FETCH_EVERY = 500  # changed rows read again through the adapter at a time
DEFER_LIMIT = 100_000  # changes a columnar scan keeps (keys only, ~200 bytes each)


def row_items(adapter: Adapter, state: StateDB, table: Table, *, spooled: bool) -> Iterator[Item]:
    """Rows as the driver returns them (a value's digest is its normal form's: no Decimal
    or datetime is made for a row that did not change); ``Emitter`` normalises the rows
    it writes."""
    skey_of = snapshot_key(table.key_kinds, table.key_positions)
    hasher = row_hasher(table.kinds)
    for row in rows_in_key_order(adapter, state, table, skey_of, spooled=spooled, raw=True):
        yield skey_of(row), hasher(row), row, None


def columnar_items(
    adapter: Adapter, state: StateDB, table: Table, snap: str, *, spooled: bool
) -> Iterator[Item] | None:
    """The columnar source, or None where the row path is the one to take: a spooled or
    unordered key, an adapter without Arrow batches, a small table, or a snapshot less
    than half full (most rows would be read twice)."""
    if spooled or not table.key or not all(k in ORDERED_KEY_KINDS for k in table.key_kinds):
        return None
    if not adapter.arrow_ready():
        return None
    known = state.snapshot_count(snap)
    if not columnar.big_enough(2 * known):  # too few rows known to be worth a count
        return None
    rows = adapter.count(table)
    if not columnar.big_enough(rows) or 2 * known < rows:
        return None
    batches = adapter.arrow_batches(table, ordered=True)
    return None if batches is None else _columnar(table, batches)


def _columnar(table: Table, batches: Iterator[Any]) -> Iterator[Item]:
    positions = table.key_positions
    normal_key = row_normaliser(table.key_kinds)
    skey_of = snapshot_key(table.key_kinds, range(len(positions)))
    for arrays, digests in columnar.digested(table, batches):
        faults.point("capture.columnar.batch")
        keys = [arrays[p] for p in positions]
        rows = zip(zip(*(a.to_pylist() for a in keys), strict=True), digests, strict=True)
        if all(_plain_key(kind, a) for kind, a in zip(table.key_kinds, keys, strict=True)):
            for key, digest in rows:  # int and text keys: the values are the snapshot's key
                yield key, digest, None, key
            continue
        for key, digest in rows:
            values = normal_key(key)
            yield skey_of(values), digest, None, values


def _plain_key(kind: Kind, array: Any) -> bool:
    """Whether the key column's Python values are already its snapshot form (and normal):
    an int column read as integers, a text column read as text, no NULL."""
    import pyarrow as pa

    if array.null_count:
        return False
    if kind == Kind.INT:
        return bool(pa.types.is_integer(array.type))
    return kind == Kind.TEXT and bool(
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    )


class Emitter:
    """Writes a changed row to the package and its digest to the snapshot (or sets the row
    aside when it cannot travel); counts inserts and updates. With ``parents`` (the
    table's foreign keys to synchronised parents), a row whose parent the group does not
    have yet waits for ``finish``: held back when its parent arrived during the capture
    (``capture.parents``), written otherwise."""

    def __init__(
        self,
        table: Table,
        writer: Any,
        snapw: Any,
        holder: Any,
        parents: ParentCheck | None = None,
    ) -> None:
        self.table, self.name, self.write, self.holder = table, table.name, writer.write, holder
        self.put = snapw.put
        self.normalise = row_normaliser(table.kinds)
        self.inserts = self.updates = self.held_back = 0
        self.parents = parents if parents is not None and parents.links else None
        self.waiting: list[tuple[tuple[Any, ...], Row, bytes, bool]] = []
        self.orphans: list[tuple[tuple[Any, ...], Row, bytes, bool]] = []

    def emit(self, skey: tuple[Any, ...], row: Row, digest: bytes, in_snap: bool) -> None:
        row = self.normalise(row)  # (a row read raw; one already normal passes as it is)
        if self.parents is None:
            self._write(skey, row, digest, in_snap)
            return
        self.waiting.append((skey, row, digest, in_snap))
        if len(self.waiting) >= CHECK_EVERY:
            self._check()

    def _check(self) -> None:
        assert self.parents is not None
        orphans = self.parents.orphans([w[1] for w in self.waiting])
        for item, orphan in zip(self.waiting, orphans, strict=True):
            if orphan and len(self.orphans) < HOLD_AT_MOST:
                self.orphans.append(item)
            else:
                self._write(*item)
        self.waiting.clear()

    def finish(self, count: Any) -> None:
        """After the table's scan: the rows that waited are written or held back; what
        was written and held back is added to ``count`` (the table's ``TableCount``)."""
        if self.parents is not None:
            self._hold_or_write()
        count.inserts += self.inserts
        count.updates += self.updates
        count.held_back += self.held_back

    def _hold_or_write(self) -> None:
        assert self.parents is not None
        self._check()
        for item in self.orphans:
            if self.parents.parent_now(item[1]) or self.parents.gone(item[1]):
                self.held_back += 1  # not written, not in the snapshot: sent next time
            else:
                self._write(*item)
        self.orphans.clear()
        if self.held_back:
            self.parents.held_back(self.table, self.held_back)

    def _write(self, skey: tuple[Any, ...], row: Row, digest: bytes, in_snap: bool) -> None:
        try:
            self.write(self.name, "U", row)
        except PackageError as exc:
            self.holder.hold(skey, row, exc)
            return
        self.holder.release(skey)
        if in_snap:
            self.updates += 1
        else:
            self.inserts += 1
        self.put(skey, digest)


class TooManyChanges(Exception):
    """The columnar scan found more changes than it keeps until its end: the table is
    captured row by row instead (nothing was written yet)."""


class _Deferred:
    """What the columnar scan found, kept until its ADBC connection is closed: the keys of
    the changed rows and of the deleted ones. Only then are the changed rows read again
    through the adapter (``FETCH_EVERY`` at a time) and written, and the deletes recorded.

    Why wait: ADBC's driver carries its own copy of SQLite. Two copies in one process do not
    see each other's POSIX locks, and one releasing a lock releases the other's too
    (sqlite.org/howtocorrupt.html §2.2.1), so the adapter's connection never touches the
    file while the ADBC read is open."""

    def __init__(self, adapter: Adapter, table: Table, emitter: Emitter) -> None:
        self.adapter, self.table, self.emitter = adapter, table, emitter
        self.skey_of = snapshot_key(table.key_kinds, table.key_positions)
        self.hasher = row_hasher(table.kinds)
        self.changed: list[tuple[tuple[Any, ...], tuple[Any, ...], bool]] = []
        self.deleted: list[tuple[Any, ...]] = []

    def change(self, skey: tuple[Any, ...], values: tuple[Any, ...], in_snap: bool) -> None:
        self.changed.append((skey, values, in_snap))
        self._check()

    def delete(self, skey: tuple[Any, ...]) -> None:
        self.deleted.append(skey)
        self._check()

    def _check(self) -> None:
        if len(self.changed) + len(self.deleted) > DEFER_LIMIT:
            raise TooManyChanges(self.table.name)

    def finish(self, on_delete: Callable[[tuple[Any, ...]], None]) -> None:
        for skey in self.deleted:
            on_delete(skey)
        for start in range(0, len(self.changed), FETCH_EVERY):
            faults.point("capture.columnar.fetch")
            chunk = self.changed[start : start + FETCH_EVERY]
            found = self.adapter.fetch(self.table, [values for _s, values, _i in chunk])
            rows = {self.skey_of(row): row for row in found}
            for skey, _values, in_snap in chunk:
                row = rows.get(skey)
                if row is not None:  # else deleted since the scan: the next capture sees it
                    self.emitter.emit(skey, row, self.hasher(row), in_snap)


def full_diff(
    adapter: Adapter,
    source: Iterator[Item],
    snap_rows: Iterator[Any],
    table: Table,
    options: Any,
    count: Any,
    emitter: Emitter,
    on_delete: Callable[[tuple[Any, ...]], None],
    *,
    columnar: bool,
) -> None:
    """Merge the table's items (key order) with the snapshot's ``(k0.., h)`` rows (same
    order): keys only in the table are inserts, in both with another hash updates, only
    in the snapshot deletes. Checks the order, the cancel flag, reports progress.

    ``columnar``: the items carry no row; the changes and deletes are ``_Deferred`` until
    the source is done; more than ``DEFER_LIMIT`` of them raises ``TooManyChanges`` with
    nothing written or recorded (the source closed)."""
    nkeys = len(table.key)
    name = table.name
    deferred = _Deferred(adapter, table, emitter)
    emit, change = emitter.emit, deferred.change
    cancel, progress = options.cancel, options.progress
    snaps = iter(snap_rows)
    snap_row = next(snaps, None)
    snap_key = snap_row[:nkeys] if snap_row is not None else None
    previous: tuple[Any, ...] | None = None
    seen = 0
    deleting = deferred.delete if columnar else on_delete
    try:
        for skey, digest, row, values in source:
            if previous is not None and not skey > previous:
                raise KeyOrderError(name)
            previous = skey
            seen += 1
            if seen % CHECK_EVERY == 0:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if progress is not None:
                    progress(name, seen)
            old = b""
            in_snap = False
            while snap_key is not None:
                if snap_key < skey:
                    deleting(snap_key)
                elif skey < snap_key:
                    break
                else:
                    old, in_snap = snap_row[nkeys], True  # type: ignore[index]
                snap_row = next(snaps, None)
                snap_key = snap_row[:nkeys] if snap_row is not None else None
                if in_snap:
                    break
            if digest != old:
                if row is None:
                    assert values is not None
                    change(skey, values, in_snap)
                else:
                    emit(skey, row, digest, in_snap)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()  # a generator: its ADBC connection (if any) is closed now
    deferred.finish(on_delete)
    emitter.finish(count)
    count.scanned = seen
    while snap_key is not None:
        on_delete(snap_key)
        snap_row = next(snaps, None)
        snap_key = snap_row[:nkeys] if snap_row is not None else None
