"""Apply a verified package to the user's database, exactly once, crash-safe.

The user's database and the state database are two transactions. The pair is made safe by
an *intent* record committed first ("applying X"); then the rows are written in one
database transaction while the snapshot, conflict log and change log are written in one
open state transaction, committed right after the database. A crash in between leaves the
intent: the package is applied again (applying is idempotent: a row already equal to the
incoming version is left alone) before anything else runs.

Conflicts: an incoming change conflicts when the local row changed since the last exchange
(local hash differs from the snapshot) or, at the Siège, when another origin changed the
same key after the sender last received the Siège's changes. The table's policy picks the
winner; the losing version is written to the conflict log, once per (package, table, key).
Rows the database refuses are quarantined with the error; the others go on.

Stored = sent: after each batch is written, the rows are read back by key in the same
transaction and compared with what was sent (``synchro.engine.verify``). A row stored
differently is quarantined with the differing columns, sent and stored values; its snapshot
entry takes the hash of the *stored* row, so capture does not send the damage back out as
a local change (the quarantine entry is the row's "divergent" mark until a retry, a newer
version applied exactly, or the user's own edit settles it). At the Siège the change log
keeps the sent value, so the other establishments get the right one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from synchro import faults
from synchro.capture.source import key_getter
from synchro.db.base import Adapter, Row, Table
from synchro.engine.apply_rows import ApplyContext, ApplyStats, Item, TableRows, batches, no_table
from synchro.engine.lock_waits import fetch_locked, read_locked
from synchro.engine.referred import Probe, referring, still_referred
from synchro.engine.revive import Reviver
from synchro.engine.self_parents import cycles, finish_waiting, in_cycles, parents_first
from synchro.engine.verify import Written
from synchro.errors import ApplyError, Cancelled, DatabaseError
from synchro.names import same_names
from synchro.package import Change, PackageReader
from synchro.state import StateDB

WAIT_AT_MOST = 10_000  # refused rows a table keeps waiting; beyond, set aside at once


class _TableApplier(TableRows):
    """Applies batches of changes of one table: conflicts decided, rows written and read
    back (what is recorded of them is ``TableRows``'s).

    A refused row may need one that comes after it: its parent made later (a greater
    key), a code another row gives up, or a delete frees (deletes come last). Refused
    rows wait (``deferred``), go again when the package moves on to another table
    (``finish``) and at its end (``self_parents.finish_waiting``), where only what is
    still refused is set aside."""

    def __init__(
        self, *rows: Any, probes: list[Probe], in_cycle: bool
    ) -> None:  # (``rows``: ``TableRows``'s)
        super().__init__(*rows)
        self.deferred: list[tuple[Item, bool]] = []
        self.probes = probes  # the tables referring to it (``referred.referring``)
        self.in_cycle = in_cycle  # refers to itself through others: waits till the end

    def apply(self, items: Sequence[Item]) -> None:
        ctx, table, state = self.ctx, self.table, self.state
        nkeys = len(table.key)
        snaps = state.snapshot_hashes(self.snap, nkeys, [i.skey for i in items])
        newer: dict[str, str] = {}
        if ctx.policy.checks_change_log:
            newer = state.newer_versions(
                table.name, [i.kj for i in items], ctx.base_pos, ctx.origin
            )
        if self._all_new(items, snaps, newer) and self._inserted(items):
            return
        row_skey = self.row_skey
        found, aside = self._locked_rows(items)
        if aside:  # another program keeps them locked: set aside for the next run
            for item, error in aside:
                self._quarantine(item, error, locked=True, read=False)
            kept = {id(item) for item, _error in aside}
            items = [i for i in items if id(i) not in kept]
        locals_ = {row_skey(r): r for r in found}
        upserts: list[Item] = []
        deletes: list[Item] = []
        for item in items:
            local = locals_.get(item.skey)
            item.local = local
            local_hash = self.hash_row(local) if local is not None else None
            incoming_hash = self.hash_row(item.row) if item.row is not None else None
            item.digest = incoming_hash
            if local_hash == incoming_hash:
                self.stats.unchanged += 1
                self._settle(item, incoming_hash, applied=True)
                continue
            other = newer.get(item.kj) if newer else None  # (no key text made for nothing)
            if other is None and local_hash != snaps.get(item.skey):
                other = ctx.local
            if self._wins(item, local, other):
                (upserts if item.row is not None else deletes).append(item)
        self._write(upserts, deletes)
        self._flush()

    def _locked_rows(self, items: Sequence[Item]) -> tuple[list[Row], list[tuple[Item, Exception]]]:
        """The local rows of the batch, locked until the apply commits, and the items whose
        row another program keeps locked, to be set aside (``lock_waits.read_locked``)."""
        rows, aside = read_locked(self.adapter, self.table, [i.key for i in items], self.waits)
        return rows, [(items[index], error) for index, error in aside]

    def _all_new(
        self, items: Sequence[Item], snaps: Mapping[Any, Any], newer: Mapping[str, str]
    ) -> bool:
        """Whether every change is a row of a key this node never exchanged, in a table
        whose database refuses a second row of a key (primary key, unique index): the
        database's own refusal then tells whether a row of the key was made here since,
        and the rows need not be read first (a keyed SELECT a batch: +17-22 % of an import
        through psqlODBC and MariaDB's driver, bench/README.md). Never exchanged: not in
        the snapshot (a key there whose row is gone was deleted here since: a conflict an
        INSERT would not see) and, at the Siège, no other origin's change of it since the
        sender's position (another site's delete: the same)."""
        if self.table.key_source not in ("primary", "unique") or self.waits.locked is not None:
            return False
        for item in items:
            if item.row is None or item.skey in snaps or None in item.key:
                return False  # (a NULL in a key: a unique index lets two of them in)
            if newer and item.kj in newer:
                return False
        return True

    def _inserted(self, items: Sequence[Item]) -> bool:
        """The rows of ``_all_new`` INSERTed at once and read back; False when the database
        refused the batch (a row of one of the keys is there after all, a value refused, a
        lock): nothing of it was written, and the batch goes the usual way."""
        rows = [i.row for i in items if i.row is not None]  # (all of them: ``_all_new``)
        for item, row in zip(items, rows, strict=True):
            item.digest = self.hash_row(row)
        try:
            with self.adapter.savepoint():
                self.adapter.insert(self.table, rows)
        except DatabaseError:
            return False
        self.stats.upserts += self._verify(list(items))
        self._flush()
        return True

    def _verify(self, done: list[Item]) -> int:
        """Read the written rows back; settle the exact ones, quarantine the others (their
        snapshot takes the stored row's hash). Returns how many were stored exactly."""
        written = [Written(i.skey, i.key, i.row, i.digest) for i in done]
        bad = self.verifier.check(self.adapter, written)
        for item in done:
            mismatch = bad.get(item.skey)
            if mismatch is None:
                self._settle(item, item.digest, applied=True)
                continue
            self._quarantine(item, mismatch, mismatch)
            stored = mismatch.stored
            self._settle(
                item,
                self.hash_row(stored) if stored is not None else None,
                applied=True,
                exact=False,
            )
        return len(done) - len(bad)

    def _write(self, upserts: list[Item], deletes: list[Item]) -> None:
        for items, delete in ((upserts, False), (deletes, True)):
            if not items:
                continue
            locked = self.waits.locked
            if locked is not None:  # another program keeps the table: the next run
                for item in items:
                    self._quarantine(item, locked, locked=True)
                continue
            if delete and self.probes:
                items = self._not_referred(items)
            try:
                with self.adapter.savepoint():
                    self._write_many(items, delete)
                done = items
            except DatabaseError:
                done = self._one_by_one(items, delete)
            self._count(self._verify(done), delete)

    def unreferred(self, items: list[Item]) -> list[Item]:
        """Of the deletes ``items``, those no row of another table refers to now."""
        if not self.probes:
            return items
        referred = still_referred(self.adapter, self.probes, items)
        return [i for i in items if tuple(i.key) not in referred]

    def _not_referred(self, items: list[Item], last: bool = False) -> list[Item]:
        """The deletes no row of another table still refers to; the others handled as if
        the database refused them (``engine.referred``: a cascade would take with them a
        row the sender did not know). In tables that refer to each other, the referring
        row may be one the package deletes later: they wait until ``last``."""
        referred = still_referred(self.adapter, self.probes, items)
        if not referred:
            return items
        for item in items:
            child = referred.get(tuple(item.key))
            if child is not None and self.in_cycle and not last:
                self.deferred.append((item, True))
            elif child is not None and not self._still_used(item, True):
                self._quarantine(
                    item, DatabaseError(say=("engine.apply.referred", {"table": child}))
                )
        return [i for i in items if tuple(i.key) not in referred]

    def finish(self) -> None:
        """The rows that waited, again while any goes in (parents first, and in two
        steps where they refer to each other); what is still refused waits for the end of
        the package. A table that refers to itself through others waits for it at once
        (its partner comes later)."""
        if not self.in_cycle:
            finish_waiting([self], {self.table.name}, last=False)

    def again(self, last: bool) -> bool:
        """The rows that waited, once more, parents first; whether any went in."""
        pending, self.deferred = self.deferred, []
        for delete in (False, True):
            items = parents_first(self.table, [i for i, d in pending if d is delete], delete)
            if delete and self.probes:
                items = self._not_referred(items, last)
            if items:
                self._count(self._verify(self._one_by_one(items, delete, last)), delete)
        self._flush()
        return len(self.deferred) < len(pending)

    def settle_written(self, items: list[Item], delete: bool) -> None:
        """Rows written or deleted for it (``two_steps``): read back, settled, counted."""
        gone = {id(i) for i in items}
        self.deferred = [(i, d) for i, d in self.deferred if id(i) not in gone]
        self._count(self._verify(items), delete)
        self._flush()

    def _count(self, exact: int, delete: bool) -> None:
        if delete:
            self.stats.deletes += exact
        else:
            self.stats.upserts += exact

    def _one_by_one(self, items: list[Item], delete: bool, last: bool = False) -> list[Item]:
        """After a batch failed: each row on its own, the refused ones left to wait
        (``finish``), and set aside when ``last``. Two rows in a row that
        waited for a lock in vain (each ``odbc.LOCK_WAIT_S``) mean another program keeps
        the table: the rest of it is set aside at once for the next run, instead of
        waiting again for every row (500 rows × 50 s)."""
        done: list[Item] = []
        waits = self.waits
        for item in items:
            if waits.locked is not None:
                self._quarantine(item, waits.locked, locked=True)
                continue
            try:
                with self.adapter.savepoint():
                    self._write_many([item], delete)
                done.append(item)
                waits.passed()
            except DatabaseError as exc:
                if waits.gave_up(exc):  # not the row's fault: no rule to try
                    self._quarantine(item, exc, locked=True)
                    continue
                if not last and len(self.deferred) < WAIT_AT_MOST:
                    self.deferred.append((item, delete))
                    continue
                if not delete and item.local is None and self._made_since(item):
                    if self._wins(item, item.local, self.ctx.local) and self._written(item):
                        done.append(item)
                    continue
                if self._still_used(item, delete):
                    if not delete:  # a kept row changes nothing here
                        done.append(item)
                    continue
                self._quarantine(item, exc)
        return done

    def _made_since(self, item: Item) -> bool:
        """A new row refused because a row of its very key was made here after the batch's
        read (PostgreSQL locks no row that is not there; the INSERT is refused by the
        key, never overwriting it): that row, read now and locked, is a local change the
        table's rule decides against (``_wins``), as any conflict. A row of another key
        the database finds equal (a case-insensitive collation) is not it."""
        try:
            found = fetch_locked(self.adapter, self.table, [item.key])
        except DatabaseError:
            return False
        if len(found) != 1 or self.row_skey(found[0]) != item.skey:
            return False
        item.local = found[0]
        return True

    def _written(self, item: Item) -> bool:
        """``item`` written over the local row (``_made_since``); set aside if refused."""
        try:
            with self.adapter.savepoint():
                self._write_many([item], False)
        except DatabaseError as exc:
            self._quarantine(item, exc)
            return False
        return True

    def _still_used(self, item: Item, delete: bool) -> bool:
        """Siège: a refused row that the "kept while referred to" rule settles (True)."""
        reviver, ctx = self.reviver, self.ctx
        if reviver is None:
            return False
        if delete:
            if item.local is None:
                return False
            reviver.keep(
                self.table,
                item.kj,
                self._row_json(item.local) or "",
                local=ctx.local,
                package=ctx.package_id,
                deleted_by=item.origin,
            )
            self.stats.conflicts += 1
            return True
        assert item.row is not None
        try:
            with self.adapter.savepoint():
                revived = reviver.parents_of(
                    self.table, item.row, local=ctx.local, origin=item.origin
                )
                if not revived:
                    return False
                self._write_many([item], delete)
        except DatabaseError:
            return False
        reviver.record(revived, local=ctx.local, package=ctx.package_id, kept_by=item.origin)
        self.stats.conflicts += len(revived)
        return True

    def _write_many(self, items: Sequence[Item], delete: bool) -> None:
        if delete:
            self.adapter.delete(self.table, [i.key for i in items])
            return
        # A row with no local version is INSERTed, never upserted: where the database finds
        # another key equal (a case- or accent-insensitive collation: 'abc' and 'ABC'), an
        # upsert would overwrite that other row; an INSERT is refused and the row set aside.
        new = [i.row for i in items if i.row is not None and i.local is None]
        old = [i.row for i in items if i.row is not None and i.local is not None]
        if new:
            self.adapter.insert(self.table, new)
        if old:
            self.adapter.upsert(self.table, old)


def apply_changes(
    adapter: Adapter,
    state: StateDB,
    tables: Mapping[str, Table],
    reader: PackageReader,
    ctx: ApplyContext,
) -> ApplyStats:
    """Apply every change of ``reader``; must run inside ``state.transaction()`` and
    ``adapter.atomic()`` (the caller commits both, database first)."""
    stats = ApplyStats()
    schemas = {s.name: s for s in reader.manifest.tables}
    local_of = same_names(schemas, tables)  # each back end spells a DDL's names its way
    appliers: dict[str, _TableApplier] = {}
    reviver = Reviver(adapter, state, tables) if ctx.policy.revives_referenced else None
    done = 0
    current: _TableApplier | None = None  # the table of the last batch
    cyclic = in_cycles(tables.values())
    key_getters = {s.name: key_getter(s.key_positions) for s in reader.manifest.tables}

    def key_of(change: Change) -> tuple[Any, ...]:
        if change.op == "D":
            return change.values
        return key_getters[change.table](change.values)

    for batch in batches(reader.changes(), ctx, stats, key_of):
        if ctx.cancel is not None and ctx.cancel.is_set():
            raise Cancelled()
        name = batch[0].table
        if current is not None and current.table.name != local_of.get(name):
            current.finish()  # the rows that waited, again
        applier = appliers.get(name)
        if applier is None:
            if name not in local_of:
                raise ApplyError(say=no_table(name, tables))
            table = tables[local_of[name]]
            rows = (adapter, state, table, schemas[name], ctx, stats, reviver)
            probes, in_cycle = referring(tables, table), table.name in cyclic
            applier = appliers[name] = _TableApplier(*rows, probes=probes, in_cycle=in_cycle)
        faults.point("apply.batch")
        applier.apply([applier.item(c) for c in batch])
        current = applier
        done += len(batch)
        if ctx.progress is not None:
            ctx.progress(applier.table.name, done)
    # What still waits, at the end: a code freed by a delete (deletes come last), a row
    # of tables that refer to each other; set aside if refused still.
    finish_waiting([a for a in appliers.values() if a.deferred], cycles(tables.values()))
    return stats
