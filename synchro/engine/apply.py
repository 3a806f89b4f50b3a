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

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro import faults
from synchro.capture.diff import snapshot_key
from synchro.config.model import ConflictPolicy, TableRule
from synchro.db.base import Adapter, Row, Table
from synchro.engine.policy import ApplyPolicy
from synchro.engine.revive import Reviver
from synchro.engine.verify import Mismatch, Verifier, Written
from synchro.errors import ApplyError, Cancelled, DatabaseError
from synchro.package import Change, PackageReader, TableSchema
from synchro.state import ChangeLogEntry, StateDB, key_json
from synchro.values import row_hasher, row_normaliser, row_to_json, to_json

BATCH = 500


@dataclass
class ApplyStats:
    upserts: int = 0
    deletes: int = 0
    unchanged: int = 0
    skipped: int = 0  # already applied earlier (HQ position)
    conflicts: int = 0
    quarantined: int = 0  # refused or stored differently (both in the state's quarantine)
    mismatched: int = 0  # of which stored differently than sent

    @property
    def rows(self) -> int:
        return self.upserts + self.deletes


@dataclass(frozen=True)
class ApplyContext:
    """Who applies what: ``local`` is this node's code; ``origin`` the package's sender."""

    local: str
    policy: ApplyPolicy
    origin: str
    package_id: str
    rules: Mapping[str, TableRule] = field(default_factory=dict)
    base_pos: int = 0  # Siège: change-log position the sender had received
    skip_pos: int = 0  # Serveur: skip changes at or before this change-log position
    skip_origin: str = ""  # Serveur: skip the changes that came from this node itself
    cancel: threading.Event | None = None
    progress: Callable[[str, int], None] | None = None


@dataclass
class _Item:
    change: Change
    row: Row | None  # local column order (upserts)
    skey: tuple[Any, ...]
    kj: str
    origin: str
    digest: bytes | None = None  # hash of ``row`` once computed
    local: Row | None = None  # the local row with exactly this key, if any


class _TableApplier:
    """Applies batches of changes of one table."""

    def __init__(
        self,
        adapter: Adapter,
        state: StateDB,
        table: Table,
        schema: TableSchema,
        ctx: ApplyContext,
        stats: ApplyStats,
        reviver: Reviver | None = None,
    ) -> None:
        self.adapter, self.state, self.table, self.ctx, self.stats = (
            adapter,
            state,
            table,
            ctx,
            stats,
        )
        self.reviver = reviver  # the Siège's rule for rows still referred to
        self.rule = ctx.rules.get(table.name, TableRule(name=table.name))
        self.snap = state.snapshot_table(table)
        self.kinds = table.kinds
        names = table.column_names
        pkg_names = [c for c, _ in schema.columns]
        if sorted(pkg_names) != sorted(names):
            missing = sorted(set(names) - set(pkg_names))
            extra = sorted(set(pkg_names) - set(names))
            raise ApplyError(
                f"Table {table.name} : colonnes différentes entre le paquet et la base "
                f"(absentes du paquet : {missing or '-'} ; inconnues ici : {extra or '-'}). "
                "Alignez la structure des bases avant de synchroniser."
            )
        self.order = [pkg_names.index(n) for n in names]
        pkg_key = list(schema.key)
        if sorted(pkg_key) != sorted(table.key):
            raise ApplyError(
                f"Table {table.name} : clé différente (paquet {pkg_key}, base {list(table.key)})."
            )
        self.key_order = [pkg_key.index(k) for k in table.key]
        # Prepared once per table: the per-row work below runs for every change.
        self.nkeys = len(table.key)
        self.key_positions = table.key_positions
        self.in_order = self.order == list(range(len(names)))
        self.normalise_row = row_normaliser(self.kinds)
        self.hash_row = row_hasher(self.kinds)
        self.json_values = row_to_json(self.kinds)
        self.row_skey = snapshot_key(table.key_kinds, self.key_positions)
        self.key_skey = snapshot_key(table.key_kinds, range(self.nkeys))
        self.dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
        self.settled: list[tuple[tuple[Any, ...], bytes | None]] = []  # (skey, hash)
        self.logged: list[ChangeLogEntry] = []
        self.verifier = Verifier(table)
        self.pending = state.pending_keys(table.name)  # quarantined keys (usually none)
        self.cleared: list[str] = []  # of those, keys now applied exactly

    def item(self, change: Change) -> _Item:
        row: Row | None
        if change.op == "U":
            values = change.values
            if not self.in_order:
                values = tuple([values[i] for i in self.order])
            row = self.normalise_row(values)
            skey = self.row_skey(row)
        else:
            row = None
            skey = self.key_skey(tuple([change.values[i] for i in self.key_order]))
        return _Item(change, row, skey, key_json(skey), change.origin or self.ctx.origin)

    def apply(self, items: Sequence[_Item]) -> None:
        ctx, table, state = self.ctx, self.table, self.state
        nkeys = len(table.key)
        snaps = state.snapshot_hashes(self.snap, nkeys, [i.skey for i in items])
        row_skey = self.row_skey
        locals_ = {row_skey(r): r for r in self.adapter.fetch(table, [self._key(i) for i in items])}
        newer: dict[str, str] = {}
        if ctx.policy.checks_change_log:
            newer = state.newer_versions(
                table.name, [i.kj for i in items], ctx.base_pos, ctx.origin
            )
        upserts: list[_Item] = []
        deletes: list[_Item] = []
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
            other = newer.get(item.kj)
            if other is None and local_hash != snaps.get(item.skey):
                other = ctx.local
            if other is not None and not self._incoming_wins(item, local, other):
                self.stats.conflicts += 1
                self._log_conflict(item, local, winner=other, loser=item.origin)
                if ctx.policy.resends_local_winner:
                    self._settle(item, incoming_hash, applied=False)
                continue
            if other is not None:
                self.stats.conflicts += 1
                self._log_conflict(item, local, winner=item.origin, loser=other)
            (upserts if item.row is not None else deletes).append(item)
        self._write(upserts, deletes)
        self._flush()

    def _key(self, item: _Item) -> tuple[Any, ...]:
        if item.row is not None:
            return tuple([item.row[p] for p in self.key_positions])
        return tuple(item.change.values[i] for i in self.key_order)

    def _incoming_wins(self, item: _Item, local: Row | None, other: str) -> bool:
        policy = self.rule.conflict
        if policy is ConflictPolicy.LATEST_WINS and self.rule.modified_column:
            pos = self.table.column_names.index(self.rule.modified_column)
            mine = item.row[pos] if item.row is not None else None
            theirs = local[pos] if local is not None else None
            if mine != theirs and mine is not None and theirs is not None:
                return bool(mine > theirs)
            if mine != theirs:
                return mine is not None
            return item.origin > other
        if policy is ConflictPolicy.LATEST_WINS:
            return True  # no clock: the change applied last at the Siège wins, everywhere
        if policy is ConflictPolicy.ORIGIN_OWNS and self.rule.owner_column:
            pos = self.table.column_names.index(self.rule.owner_column)
            if item.row is not None and str(item.row[pos]) == item.origin:
                return True
            if local is not None and str(local[pos]) == other:
                return False
        return not self.ctx.policy.holds_siege_version  # hq-wins: the Siège's version

    def _log_conflict(self, item: _Item, local: Row | None, *, winner: str, loser: str) -> None:
        incoming = self._row_json(item.row)
        current = self._row_json(local)
        incoming_won = winner == item.origin
        self.state.log_conflict(
            self.ctx.package_id,
            self.table.name,
            item.kj,
            self.rule.conflict.value,
            winner,
            loser,
            incoming if incoming_won else current,
            current if incoming_won else incoming,
        )

    def _row_json(self, row: Row | None) -> str | None:
        if row is None:
            return None
        return self.dumps(self.json_values(row))

    def _sent_json(self, item: _Item) -> str:
        """The sent version as JSON values: the row, or for a delete the key's values."""
        if item.row is not None:
            return self.dumps(self.json_values(item.row))
        key = self._key(item)
        return self.dumps([to_json(k, v) for k, v in zip(self.table.key_kinds, key, strict=True)])

    def _settle(
        self, item: _Item, digest: bytes | None, *, applied: bool, exact: bool = True
    ) -> None:
        """Record the exchanged version in the snapshot (and the Siège's change log).

        ``digest`` is what the snapshot keeps: the hash of the row as the database holds
        it. ``exact``: the key is applied as sent, so an older quarantine entry of it is
        settled. Kept in order and written by ``_flush`` at the end of the batch: nothing
        reads the snapshot or the change log of this batch's keys before that.
        """
        self.settled.append((item.skey, digest))
        if applied and self.ctx.policy.logs_changes:
            row_json = self._row_json(item.row)
            self.logged.append(
                ChangeLogEntry(item.origin, self.table.name, item.change.op, item.kj, row_json)
            )
        if applied and exact and item.kj in self.pending:
            self.pending.discard(item.kj)
            self.cleared.append(item.kj)

    def _flush(self) -> None:
        """Write the settled versions: runs of puts and drops in their order, then the log."""
        state, snap, nkeys = self.state, self.snap, self.nkeys
        puts: list[tuple[Any, ...]] = []
        drops: list[tuple[Any, ...]] = []
        for skey, digest in self.settled:
            if digest is None:
                if puts:
                    state.put_snapshot(snap, nkeys, puts)
                    puts = []
                drops.append(skey)
            else:
                if drops:
                    state.drop_snapshot(snap, nkeys, drops)
                    drops = []
                puts.append((*skey, digest))
        state.put_snapshot(snap, nkeys, puts)
        state.drop_snapshot(snap, nkeys, drops)
        state.log_changes(self.logged)
        for kj in self.cleared:
            state.drop_quarantine(self.table.name, kj)
        self.settled, self.logged, self.cleared = [], [], []

    def _quarantine(self, item: _Item, error: str, mismatch: Mismatch | None = None) -> None:
        """A row not applied exactly: into the quarantine with what was sent (and stored)."""
        self.stats.quarantined += 1
        self.pending.discard(item.kj)  # log_quarantine replaces an older entry of the key
        columns = stored = None
        if mismatch is not None:
            self.stats.mismatched += 1
            columns = self.dumps(mismatch.columns)
            stored = self._row_json(mismatch.stored)
        self.state.log_quarantine(
            self.ctx.package_id,
            self.table.name,
            item.kj,
            self._sent_json(item),
            error,
            kind="refused" if mismatch is None else "mismatch",
            op=item.change.op,
            origin=item.origin,
            columns=columns,
            stored=stored,
        )

    def _verify(self, done: list[_Item]) -> int:
        """Read the written rows back; settle the exact ones, quarantine the others (their
        snapshot takes the stored row's hash). Returns how many were stored exactly."""
        written = [Written(i.skey, self._key(i), i.row, i.digest) for i in done]
        bad = self.verifier.check(self.adapter, written)
        for item in done:
            mismatch = bad.get(item.skey)
            if mismatch is None:
                self._settle(item, item.digest, applied=True)
                continue
            self._quarantine(item, mismatch.reason, mismatch)
            stored = mismatch.stored
            self._settle(
                item,
                self.hash_row(stored) if stored is not None else None,
                applied=True,
                exact=False,
            )
        return len(done) - len(bad)

    def _write(self, upserts: list[_Item], deletes: list[_Item]) -> None:
        for items, delete in ((upserts, False), (deletes, True)):
            if not items:
                continue
            try:
                with self.adapter.savepoint():
                    self._write_many(items, delete)
                done = items
            except DatabaseError:
                done = []
                for item in items:
                    try:
                        with self.adapter.savepoint():
                            self._write_many([item], delete)
                        done.append(item)
                    except DatabaseError as exc:
                        if self._still_used(item, delete):
                            if not delete:  # a kept row changes nothing here
                                done.append(item)
                            continue
                        self._quarantine(item, str(exc))
            exact = self._verify(done)
            if delete:
                self.stats.deletes += exact
            else:
                self.stats.upserts += exact

    def _still_used(self, item: _Item, delete: bool) -> bool:
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
                revived = reviver.parents_of(self.table, item.row)
                if not revived:
                    return False
                self._write_many([item], delete)
        except DatabaseError:
            return False
        reviver.record(revived, local=ctx.local, package=ctx.package_id, kept_by=item.origin)
        self.stats.conflicts += len(revived)
        return True

    def _write_many(self, items: Sequence[_Item], delete: bool) -> None:
        if delete:
            self.adapter.delete(self.table, [self._key(i) for i in items])
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


def _batches(
    changes: Iterable[Change],
    ctx: ApplyContext,
    stats: ApplyStats,
    key_of: Callable[[Change], tuple[Any, ...]],
) -> Iterator[list[Change]]:
    """Consecutive changes of the same table and operation, at most BATCH, no repeated key;
    changes already applied (HQ position) or that came from this node are skipped."""
    batch: list[Change] = []
    keys: set[tuple[Any, ...]] = set()
    for change in changes:
        if (change.pos and change.pos <= ctx.skip_pos) or (
            ctx.skip_origin and change.origin == ctx.skip_origin
        ):
            stats.skipped += 1
            continue
        ident = (change.table, change.op)
        marker = (change.table, change.op, key_of(change))
        if batch and (
            (batch[0].table, batch[0].op) != ident or len(batch) >= BATCH or marker in keys
        ):
            yield batch
            batch, keys = [], set()
        batch.append(change)
        keys.add(marker)
    if batch:
        yield batch


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
    appliers: dict[str, _TableApplier] = {}
    reviver = Reviver(adapter, state, tables) if ctx.policy.revives_referenced else None
    done = 0
    key_positions = {s.name: s.key_positions for s in reader.manifest.tables}

    def key_of(change: Change) -> tuple[Any, ...]:
        if change.op == "D":
            return change.values
        return tuple(change.values[i] for i in key_positions[change.table])

    for batch in _batches(reader.changes(), ctx, stats, key_of):
        if ctx.cancel is not None and ctx.cancel.is_set():
            raise Cancelled()
        name = batch[0].table
        applier = appliers.get(name)
        if applier is None:
            if name not in tables:
                raise ApplyError(
                    f"Table {name} du paquet absente de la base locale (ou exclue de la "
                    "synchronisation) : créez-la ou alignez les réglages de tables."
                )
            applier = _TableApplier(
                adapter, state, tables[name], schemas[name], ctx, stats, reviver
            )
            appliers[name] = applier
        faults.point("apply.batch")
        applier.apply([applier.item(c) for c in batch])
        done += len(batch)
        if ctx.progress is not None:
            ctx.progress(name, done)
    return stats
