"""One table of a package being applied: the incoming rows prepared (local column order,
snapshot key, hash, JSON) and what the apply records of them — the snapshot, the Siège's
change log, the quarantine — written at the end of each batch.

The base of ``engine.apply``'s table applier, which decides conflicts and writes the rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from synchro.capture.source import key_getter, snapshot_key
from synchro.config.model import TableRule
from synchro.db.base import Adapter, Row, Table
from synchro.engine.conflict_rule import incoming_wins
from synchro.engine.lock_waits import LockWaits
from synchro.engine.policy import ApplyPolicy
from synchro.engine.revive import Reviver
from synchro.engine.verify import Mismatch, Verifier
from synchro.errors import ApplyError, Say
from synchro.names import same_names, spelt_alike
from synchro.package import Change, TableSchema
from synchro.state import ChangeLogEntry, StateDB, key_json
from synchro.values import (
    carried_form_is_normal,
    json_text_encoder,
    row_hasher,
    row_normaliser,
    row_to_json,
    to_json,
)


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


@dataclass(slots=True)
class Item:
    """One incoming change of the table, prepared. ``kj`` (the key as JSON text, for the
    change log, conflicts and quarantine) is made when first asked for: a Serveur applying
    rows without conflicts never needs it."""

    change: Change
    row: Row | None  # local column order (upserts)
    key: tuple[Any, ...]  # the key's values, as the database is asked for them
    skey: tuple[Any, ...]
    origin: str
    digest: bytes | None = None  # hash of ``row`` once computed
    local: Row | None = None  # the local row with exactly this key, if any
    key_text: str | None = None

    @property
    def kj(self) -> str:
        if self.key_text is None:
            self.key_text = key_json(self.skey)
        return self.key_text


class TableRows:
    """One table's incoming rows prepared, and what the apply records of them."""

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
        local_of = same_names((c for c, _ in schema.columns), names)
        pkg_names = [local_of.get(c, c) for c, _ in schema.columns]  # in the local spelling
        if sorted(pkg_names) != sorted(names):
            missing = sorted(set(names) - set(pkg_names))
            extra = sorted(set(pkg_names) - set(names))
            differ = {"missing": str(missing or "-"), "extra": str(extra or "-")}
            raise ApplyError(say=("engine.apply.columns", {"table": table.name, **differ}))
        self.order = [pkg_names.index(n) for n in names]
        pkg_key = [local_of.get(k, k) for k in schema.key]
        if sorted(pkg_key) != sorted(table.key):
            keys = {"table": table.name, "theirs": str(pkg_key), "mine": str(list(table.key))}
            raise ApplyError(say=("engine.apply.key", keys))
        self.key_order = [pkg_key.index(k) for k in table.key]
        # Prepared once per table: the per-row work below runs for every change.
        self.nkeys = len(table.key)
        self.key_positions = table.key_positions
        self.in_order = self.order == list(range(len(names)))
        self.normalise_row = row_normaliser(self.kinds)
        self.hash_row = row_hasher(self.kinds)
        self.json_values = row_to_json(self.kinds)
        self.row_skey = snapshot_key(table.key_kinds, self.key_positions)
        self.key_of_row = key_getter(self.key_positions)
        self.key_skey = snapshot_key(table.key_kinds, range(self.nkeys))
        self.dumps = json_text_encoder()
        self.log_sent = carried_form_is_normal(self.kinds)
        self.settled: list[tuple[tuple[Any, ...], bytes | None]] = []  # (skey, hash)
        self.logged: list[ChangeLogEntry] = []
        self.verifier = Verifier(table)
        self.pending = state.pending_keys(table.name)  # quarantined keys (usually none)
        self.waits = LockWaits(adapter)  # rows another program keeps locked
        self.cleared: list[str] = []  # of those, keys now applied exactly

    def item(self, change: Change) -> Item:
        row: Row | None
        if change.op == "U":
            values = change.values
            if not self.in_order:
                values = tuple([values[i] for i in self.order])
            row = self.normalise_row(values)
            key = self.key_of_row(row)
            skey = self.row_skey(row)
        else:
            row = None
            key = tuple([change.values[i] for i in self.key_order])
            skey = self.key_skey(key)
        return Item(change, row, key, skey, change.origin or self.ctx.origin)

    def _row_json(self, row: Row | None) -> str | None:
        if row is None:
            return None
        return self.dumps(self.json_values(row))

    def _logged_json(self, item: Item) -> str | None:
        """The applied row for the Siège's change log: the JSON form the package carried
        when there is one (encoding the row again was a third of what a Siège's apply
        costs more than a Serveur's), else the row encoded. Both decode to the same row:
        the applied row is ``normalise(decode(sent))``, as it will be at every site that
        decodes the log (``tests/test_apply_log_form.py``), for tables whose kinds all keep
        a decoded value as it is (``values.carried_form_is_normal``)."""
        sent = item.change.sent
        if item.row is None or sent is None or not self.log_sent:
            return self._row_json(item.row)
        return self.dumps(sent if self.in_order else [sent[i] for i in self.order])

    def _sent_json(self, item: Item) -> str:
        """The sent version as JSON values: the row, or for a delete the key's values."""
        if item.row is not None:
            return self.dumps(self.json_values(item.row))
        key = item.key
        return self.dumps([to_json(k, v) for k, v in zip(self.table.key_kinds, key, strict=True)])

    def _settle(
        self, item: Item, digest: bytes | None, *, applied: bool, exact: bool = True
    ) -> None:
        """Record the exchanged version in the snapshot (and the Siège's change log).

        ``digest`` is what the snapshot keeps: the hash of the row as the database holds
        it. ``exact``: the key is applied as sent, so an older quarantine entry of it is
        settled. Kept in order and written by ``_flush`` at the end of the batch: nothing
        reads the snapshot or the change log of this batch's keys before that.
        """
        self.settled.append((item.skey, digest))
        if applied and self.ctx.policy.logs_changes:
            row_json = self._logged_json(item)
            self.logged.append(
                ChangeLogEntry(item.origin, self.table.name, item.change.op, item.kj, row_json)
            )
        if applied and exact and self.pending and item.kj in self.pending:
            # (``self.pending`` first: the key's JSON text is made only when some key of
            # the table waits in the quarantine; a Serveur's apply never needs it otherwise)
            self.pending.discard(item.kj)
            self.cleared.append(item.kj)

    def _wins(self, item: Item, local: Row | None, other: str | None) -> bool:
        """Whether the incoming change is written: no other version of the row since the
        sender's (``other`` None), or the table's rule gives it the win; a conflict is
        counted and logged either way, and a local winner re-sent where the policy says."""
        if other is None:
            return True
        self.stats.conflicts += 1
        if not self._incoming_wins(item, local, other):
            self._log_conflict(item, local, winner=other, loser=item.origin)
            if self.ctx.policy.resends_local_winner:
                self._settle(item, item.digest, applied=False)
            return False
        self._log_conflict(item, local, winner=item.origin, loser=other)
        return True

    def _incoming_wins(self, item: Item, local: Row | None, other: str) -> bool:
        incoming = (item.row, item.origin)
        return incoming_wins(self.rule, self.table, self.ctx.policy, incoming, (local, other))

    def _log_conflict(self, item: Item, local: Row | None, *, winner: str, loser: str) -> None:
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

    def _quarantine(
        self,
        item: Item,
        error: object,
        mismatch: Mismatch | None = None,
        *,
        locked: bool = False,
        read: bool = True,
    ) -> None:
        """A row not applied exactly: into the quarantine with what was sent (and stored);
        ``locked``: set aside because another program keeps it locked.

        ``read``: the apply had read the local row and given the incoming version the win
        (a conflict decided for it, or none). The snapshot then takes the local row's hash
        (as a stored mismatch takes the stored one): a local version that lost the
        conflict is no user's change to capture and send out against the rule while the
        winner waits (the retry writes the winner while the row stays as it is; an edit
        made after this is the user's newer change, and wins). A row set aside unread
        (``read`` False: another program kept it locked) keeps its snapshot."""
        self.stats.quarantined += 1
        if read and mismatch is None:
            local = item.local
            self._settle(
                item,
                self.hash_row(local) if local is not None else None,
                applied=False,
                exact=False,
            )
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
            kind="mismatch" if mismatch is not None else "locked" if locked else "refused",
            op=item.change.op,
            origin=item.origin,
            columns=columns,
            stored=stored,
            unread=not read,
        )


BATCH = 500  # changes of one table and operation applied together


def batches(
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


def no_table(name: str, tables: Iterable[str]) -> Say:
    """Why a package's table has no local counterpart: none, or several spelt alike."""
    alike = spelt_alike(name, tables)
    if len(alike) > 1:
        return ("engine.apply.tables_alike", {"table": name, "tables": ", ".join(alike)})
    return ("engine.apply.no_table", {"table": name})
