"""Change capture by snapshot diff.

For each synchronised table the node keeps the hash of every row as last exchanged
(``StateDB.snapshot_table``). A capture reads the table once, in key order, and merges it
with the snapshot read in the same order: keys only in the table are inserts, keys in both
with another hash are updates, keys only in the snapshot are deletes. One pass, memory
independent of the table size. Tables whose key cannot be ordered the same way by the
database and by SQLite are first spooled to a temporary SQLite table (still on disk).

Upserts are written parents first (tables come in dependency order); deletes are spooled
and written at the end, children first, so the receiver can apply the file in order.

A row holding a value that cannot travel (text in a BLOB column...) never stops the others:
it is *set aside* — written to the quarantine under ``HELD`` with the reason, left out of
the snapshot so it is tried again at every capture (even one limited to recently modified
rows), and released from the quarantine once it goes out.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro import faults
from synchro.capture.full_scan import (
    Emitter,
    Item,
    TooManyChanges,
    columnar_items,
    full_diff,
    row_items,
)
from synchro.capture.mass_deletes import MassDeletes, Vanished, too_many
from synchro.capture.parents import ParentCheck
from synchro.capture.source import (
    checked_rows,
    held_rows,
    merge,
    rows_in_key_order,
    snapshot_key,
)
from synchro.db.base import Adapter, Row, Table
from synchro.db.columnar import NotExact
from synchro.errors import Cancelled, CaptureError, DatabaseError, PackageError, Say
from synchro.package import PackageWriter
from synchro.state import HELD, StateDB, key_json
from synchro.values import from_json, normalise, row_hasher, to_json

FLUSH_EVERY = 5000

log = logging.getLogger("synchro.capture")
_ROWS_INSTEAD = "Table %s : lecture en colonnes inexacte (%s) ; lue ligne par ligne"


@dataclass
class TableCount:
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    scanned: int = 0
    held: int = 0  # rows set aside: a value that cannot travel
    held_back: int = 0  # rows whose parent arrived during the capture: sent next time


@dataclass
class CaptureResult:
    counts: dict[str, TableCount] = field(default_factory=dict)
    # Rows of received packages still not applied exactly (state quarantine, after the
    # retry at the start of the export), and what that retry settled: for the run's report.
    unapplied: list[dict[str, Any]] = field(default_factory=list)
    retried: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(c.inserts + c.updates + c.deletes for c in self.counts.values())

    @property
    def held(self) -> int:
        return sum(c.held for c in self.counts.values())


class _Holder:
    """Sets aside the rows of one table that cannot travel (see the module's text)."""

    def __init__(self, state: StateDB, table: Table, count: TableCount) -> None:
        self.state, self.table, self.count = state, table, count
        self.keys = state.held_keys(HELD, table.name)  # usually empty

    def hold(self, skey: tuple[Any, ...], row: Row, exc: PackageError) -> None:
        kj = key_json(list(skey))
        shown = [v if v is None or isinstance(v, int | float | str) else repr(v) for v in row]
        self.state.log_quarantine(
            HELD,
            self.table.name,
            kj,
            json.dumps(shown, ensure_ascii=False),
            exc,
            kind="held",
        )
        self.count.held += 1
        self.keys.discard(kj)

    def release(self, skey: tuple[Any, ...]) -> None:
        """The row went out: it leaves the quarantine (if it was set aside before)."""
        if not self.keys:  # the usual case, checked before making the key's text
            return
        kj = key_json(list(skey))
        if kj in self.keys:
            self.state.release_held(HELD, self.table.name, kj)
            self.keys.discard(kj)


@dataclass(frozen=True)
class CaptureOptions:
    modified_columns: dict[str, str] = field(default_factory=dict)  # table → column
    since: dt.datetime | None = None  # watermark minus overlap; None = full scan
    spooled: frozenset[str] = frozenset()  # tables to read unordered through a spool
    cancel: threading.Event | None = None
    progress: Callable[[str, int], None] | None = None  # (table, rows scanned so far)
    deletes_confirmed: bool = False  # a person started it: mass deletes travel (mass_deletes)


class _SnapshotWriter:
    """Buffers snapshot changes of one table and writes them in batches."""

    def __init__(self, state: StateDB, snap: str, nkeys: int) -> None:
        self.state, self.snap, self.nkeys = state, snap, nkeys
        self.puts: list[tuple[Any, ...]] = []
        self.drops: list[tuple[Any, ...]] = []

    def put(self, skey: tuple[Any, ...], digest: bytes) -> None:
        self.puts.append((*skey, digest))
        if len(self.puts) >= FLUSH_EVERY:
            self.flush()

    def drop(self, skey: tuple[Any, ...]) -> None:
        self.drops.append(skey)
        if len(self.drops) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self.state.put_snapshot(self.snap, self.nkeys, self.puts)
        self.state.drop_snapshot(self.snap, self.nkeys, self.drops)
        self.puts.clear()
        self.drops.clear()


def ensure_snapshots(state: StateDB, tables: Sequence[Table]) -> dict[str, str]:
    """Create the snapshot tables (committed, so an isolated reader sees them)."""
    with state.transaction():
        return {t.name: state.snapshot_table(t) for t in tables}


def capture(
    adapter: Adapter,
    state: StateDB,
    tables: Sequence[Table],
    writer: PackageWriter,
    options: CaptureOptions,
) -> CaptureResult:
    """Write every change since the snapshot into ``writer`` and update the snapshot.

    Must run inside ``state.transaction()``: the snapshot changes are committed by the
    caller only once the package file is complete, so a failure changes nothing.
    ``ensure_snapshots`` must have been called (and committed) before.
    """
    result = CaptureResult()
    state.start_capture_deletes()
    vanished: list[Vanished] = []
    with state.reader() as snap_reader:
        for order, table in enumerate(tables):
            count = TableCount()
            result.counts[table.name] = count
            faults.point("capture.table")
            had = None  # rows at the last exchange: counted only when deletes may be held
            if not options.deletes_confirmed:
                had = state.snapshot_count(state.snapshot_table(table))
            # The parents read before it: one read later (tables that refer to each
            # other) goes in this package if it is there then (``capture.parents``).
            read = {t.name: t for t in tables[:order]}
            _capture_table(adapter, state, snap_reader, table, order, writer, options, count, read)
            if had is not None and too_many(count.deletes, had):
                vanished.append(Vanished(table.name, count.deletes, had))
    if vanished:  # nothing of this capture is kept: the caller's transaction rolls back
        raise MassDeletes(vanished)
    for order in range(len(tables) - 1, -1, -1):
        table = tables[order]
        faults.point("capture.deletes")
        for (kj,) in state.capture_deletes(order):
            writer.write(
                table.name,
                "D",
                [from_json(k, v) for k, v in zip(table.key_kinds, json.loads(kj), strict=True)],
            )
    state.clear_capture_deletes()
    result.unapplied = state.pending()
    result.retried = list(state.retry_notes)
    return result


def _capture_table(
    adapter: Adapter,
    state: StateDB,
    snap_reader: sqlite3.Connection,
    table: Table,
    order: int,
    writer: PackageWriter,
    options: CaptureOptions,
    count: TableCount,
    read: dict[str, Table],
) -> None:
    snap = state.snapshot_table(table)
    nkeys = len(table.key)
    key_kinds = table.key_kinds
    key_pos = table.key_positions
    snapw = _SnapshotWriter(state, snap, nkeys)
    deletes: list[tuple[int, str]] = []

    skey_of = snapshot_key(key_kinds, key_pos)
    holder = _Holder(state, table, count)

    def on_delete(skey: tuple[Any, ...]) -> None:
        holder.release(skey)
        values = [to_json(k, normalise(k, v)) for k, v in zip(key_kinds, skey, strict=True)]
        deletes.append((order, key_json(values)))
        count.deletes += 1
        snapw.drop(skey)
        if len(deletes) >= FLUSH_EVERY:
            state.add_capture_deletes(deletes)
            deletes.clear()

    modified = options.modified_columns.get(table.name)
    spooled = table.name in options.spooled
    try:
        if modified and options.since is not None:
            parents = ParentCheck(adapter, state, table, read)
            emitter = Emitter(table, writer, snapw, holder, parents)
            before = set(holder.keys)  # set aside at an earlier capture
            seen = _filtered(adapter, state, table, snap, modified, options, emitter, before)
            again = held_rows(adapter, table, before - seen)  # not modified since: try again
            _filtered_rows(again, table, snap, state, emitter, set())
            emitter.finish(count)
            keys_only = checked_rows(
                rows_in_key_order(adapter, state, table, skey_of, spooled=spooled, keys_only=True),
                table,
                skey_of,
                options.cancel,
                options.progress,
            )
            snap_rows = state.snapshot_in_order(snap_reader, snap, nkeys, hashes=False)
            for skey, _row, in_db, in_snap in merge(
                keys_only, ((tuple(r), b"") for r in snap_rows)
            ):
                if in_snap and not in_db:
                    on_delete(skey)
        else:
            parents = ParentCheck(adapter, state, table, read)
            emitter = Emitter(table, writer, snapw, holder, parents)

            def diff_with(source: Iterator[Item], *, columnar: bool) -> None:
                snap_rows = state.snapshot_in_order(snap_reader, snap, nkeys, hashes=True)
                args = (adapter, source, snap_rows, table, options, count, emitter, on_delete)
                full_diff(*args, columnar=columnar)

            source = columnar_items(adapter, state, table, snap, spooled=spooled)
            done = False
            if source is not None:
                try:
                    diff_with(source, columnar=True)
                    done = True
                    log.info("Table %s : lue en colonnes", table.name)
                except TooManyChanges:
                    pass  # nothing written yet: the table is read row by row below
                except NotExact as exc:
                    log.warning(_ROWS_INSTEAD, table.name, exc)
            if not done:
                diff_with(row_items(adapter, state, table, spooled=spooled), columnar=False)
    except DatabaseError as exc:
        detail: list[Say] | str = [exc.say] if exc.say is not None else str(exc)
        said = {"table": table.name, "detail": detail}
        raise CaptureError(say=("engine.err.capture", said)) from exc
    snapw.flush()
    if deletes:
        state.add_capture_deletes(deletes)


def _filtered(
    adapter: Adapter,
    state: StateDB,
    table: Table,
    snap: str,
    modified: str,
    options: CaptureOptions,
    emitter: Emitter,
    held: set[str],
) -> set[str]:
    """Upserts of rows modified since the bound (the snapshot still decides what changed);
    returns which of the ``held`` keys (set aside before) the scan met."""
    rows = adapter.scan(table, ordered=True, modified_column=modified, modified_since=options.since)
    count = emitter.holder.count

    def counted() -> Iterator[Row]:
        for n, row in enumerate(rows, 1):
            count.scanned += 1
            if n % 500 == 0 and options.cancel is not None and options.cancel.is_set():
                raise Cancelled()
            yield row

    return _filtered_rows(counted(), table, snap, state, emitter, held)


def _filtered_rows(
    rows: Iterator[Row],
    table: Table,
    snap: str,
    state: StateDB,
    emitter: Emitter,
    held: set[str],
) -> set[str]:
    """The rows that differ from the snapshot go to ``emitter``, in batches; returns which
    of the ``held`` keys were met."""
    nkeys = len(table.key)
    hasher = row_hasher(table.kinds)
    skey_of = snapshot_key(table.key_kinds, table.key_positions)
    met: set[str] = set()
    batch: list[Row] = []

    def flush() -> None:
        skeys = [skey_of(r) for r in batch]
        if held:
            met.update(kj for kj in map(key_json, map(list, skeys)) if kj in held)
        old = state.snapshot_hashes(snap, nkeys, skeys)
        for skey, row in zip(skeys, batch, strict=True):
            digest = hasher(row)
            previous = old.get(skey)
            if digest != previous:
                emitter.emit(skey, row, digest, previous is not None)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= 500:
            flush()
    if batch:
        flush()
    return met
