"""*Reprendre les données du groupe*: a restored database (``engine.marks``) takes back the
last version of every row the group exchanged, instead of sending its old copy.

Both kinds of node first make the restored copy their starting point (``adopt``: a capture
whose package is thrown away, so its snapshot is the copy and nothing of the copy is sent),
then get every row again:

- a Serveur asks the Siège (``ServeurNode.take_back``): its next packages say
  ``take_back`` and the Siège answers with everything, the establishment's own rows
  included;
- the Siège holds the group's last versions itself, in its change log: it applies them to
  its database (``rebuild``), from the start of the log, every origin, without logging
  them again (they are in the log already) — so its rows made or received since the backup
  come back, and nothing is published that the sites do not hold.

Rows made in the restored database since it was restored (the shop kept selling until
someone saw the held run) are part of the adopted copy: once everything the group holds
has come, the snapshot forgets the keys the group never mentioned (``forget_unmentioned``),
so the next capture sends those rows. A row of the group changed here since the restore
gets the group's version back (it cannot be told from the copy's old one). A whole machine
put back (its state with its database, ``marks.StateBehind``) is not adopted: its snapshot
tells what changed since, which goes to the Siège under new numbers (``resend.renumber``).

The mark is raised only after (``marks.bump``, a person's word): a crash before leaves the
database behind, so an automatic run still holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from synchro.capture.diff import CaptureOptions, ensure_snapshots
from synchro.db.base import Table
from synchro.engine import marks
from synchro.engine.apply import apply_changes
from synchro.engine.apply_rows import ApplyContext, ApplyStats, TableRows
from synchro.engine.hq_publish import build_segments
from synchro.engine.node_status import scratch_capture
from synchro.engine.policy import TAKE_BACK_POLICY
from synchro.names import same_names
from synchro.package import PackageReader, PackageWriter, TableSchema, open_package
from synchro.package.body import SegmentStore
from synchro.values import Kind

if TYPE_CHECKING:
    from synchro.engine.node import Node


def adopt(node: Node, also: Callable[[], None] = lambda: None) -> list[Table]:
    """Make the database as it is now ``node``'s starting point (its snapshot), ``also``
    done in the same state transaction; the synchronised tables."""
    node.recover()
    tables = node.tables(refresh=True).synced
    ensure_snapshots(node.state, tables)
    with node.state.transaction():
        scratch_capture(node, tables, "take-back.tmp", CaptureOptions(deletes_confirmed=True))
        also()
    return tables


def rebuild(node: Node, tables: list[Table]) -> ApplyStats:
    """The Siège: apply its change log's last version of every key to its database, in one
    transaction with the raised mark."""
    staging = node.packages_dir / "publish"
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / "take-back.pkg"
    with SegmentStore(staging / "take-back.segments.tmp") as store:
        segments = build_segments(node.state, tables, 0, store)
        writer = PackageWriter(
            path,
            origin=node.code,
            sequence=0,
            kind="hq",
            tables=[TableSchema.of(t) for t in tables],
            key=node.key,
            created=node.now(),
        )
        with writer:
            for segment in segments:
                writer.splice(segment, store.read(segment))
            writer.close()
    reader = open_package(path, node.keys())
    ctx = ApplyContext(
        local=node.code,
        policy=TAKE_BACK_POLICY,
        origin=node.code,
        package_id="reprise",
        rules=node.tables().rules,
    )
    try:
        with node.state.transaction(), node.adapter.atomic():
            stats = apply_changes(
                node.adapter, node.state, {t.name: t for t in tables}, reader, ctx
            )
            forget_unmentioned(node, reader, ctx)
            marks.bump(node.adapter, node.state, node.code, confirmed=True)
    finally:
        path.unlink(missing_ok=True)
    return stats


def raise_mark(node: Node) -> None:
    """The mark raised on a person's word, in a state transaction of its own."""
    with node.state.transaction():
        marks.bump(node.adapter, node.state, node.code, confirmed=True)


def forget_unmentioned(node: Node, reader: PackageReader, ctx: ApplyContext) -> int:
    """After the package of everything the group holds (``reader``, just applied): the
    snapshot forgets every key it did not mention — rows the group never had — so the
    next capture sends them; how many. One pass over the package (in the state's open
    transaction), the keys made as the apply makes them (``TableRows.item``).

    The same pass finds the highest value of each sequence-fed column (PostgreSQL's
    serial and identity) among the node's own rows that came back, and moves the sequence
    past it: a restored database's sequence stands where the backup left it, and the
    shop's next insert would take the key of a row it made since (MariaDB, SQLite, SQL
    Server and Access move their counters past a value written). Only its own rows: the
    others' keys come from their sequences (a range of their own, say), not this one."""
    state = node.state
    tables = {t.name: t for t in node.tables().synced}
    counters = {
        name: [(i, c.name) for i, c in enumerate(t.columns) if c.sequence and c.kind is Kind.INT]
        for name, t in tables.items()
    }
    highest: dict[str, dict[str, int]] = {name: {} for name in tables}
    local_of = same_names((s.name for s in reader.manifest.tables), tables)
    schemas = {local_of[s.name]: s for s in reader.manifest.tables if s.name in local_of}
    snaps = {name: state.snapshot_table(t) for name, t in tables.items()}
    items = {
        name: TableRows(node.adapter, state, t, schemas[name], ctx, ApplyStats()).item
        for name, t in tables.items()
        if name in schemas
    }
    waiting: dict[str, list[tuple[object, ...]]] = {name: [] for name in items}
    for change in reader.changes():
        name = local_of.get(change.table, "")
        item = items.get(name)
        if item is None:
            continue
        keys = waiting[name]
        made = item(change)
        keys.append(made.skey)
        if counters[name] and made.row is not None and made.origin == node.code:
            top = highest[name]
            for i, column in counters[name]:
                value = made.row[i]
                if type(value) is int and value > top.get(column, value - 1):
                    top[column] = value
        if len(keys) >= 5000:
            state.note_mentioned(snaps[name], len(keys[0]), keys)
            keys.clear()
    for name, keys in waiting.items():
        if keys:
            state.note_mentioned(snaps[name], len(keys[0]), keys)
    for name, top in highest.items():
        if top:
            node.adapter.move_sequences_past(tables[name], top)
    return sum(state.forget_unmentioned(snaps[n], len(t.key)) for n, t in tables.items())
