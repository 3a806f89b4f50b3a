"""An establishment's kept packages sent again under new numbers (rule 3: nothing lost).

Two cases keep packages the Siège does not hold under their numbers: another machine sent
under the code (``engine.twins``), or the whole machine was put back (its state with its
database, ``marks.StateBehind``) and reused numbers the Siège had. Either way the kept
packages must reach the Siège after its last package of this code.

They are not sent again as they were: the Siège may meanwhile have applied a *later*
package of this machine (the put-back machine went on numbering past the numbers it
reused), and an older version sent after it would take its keys back (measured:
``tests/test_twins.py``). One package is written instead, holding for every key the kept
packages changed the row as the database holds it now, or its delete when it is gone —
never older than anything this machine sent. It keeps the oldest kept package's base
position, so the Siège's conflict rule weighs every other establishment's change since.

The new file goes to a folder of its own (``outbox/again-<number>``), is complete before
the state names it, and the old ones are removed after: a crash anywhere leaves either
the old outbox or the new one, never half (``twins.renumbered``, ``twins.recorded``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synchro import faults
from synchro.capture.source import key_getter, snapshot_key
from synchro.errors import PackageError
from synchro.names import package_name
from synchro.package import PackageReader, PackageWriter, TableSchema
from synchro.values import from_json, to_json

if TYPE_CHECKING:
    from synchro.db.base import Table
    from synchro.engine.node import Node
    from synchro.state.packages import Outgoing

TWIN = "twin"  # state meta of ``engine.twins``: dropped once its packages went again
READ_KEYS = 10_000  # keys whose rows are read at once
# The numbers of the packages last sent again: the Siège refused those as another
# machine's, and says so for days (``marks.copy_seen``) — not another machine here.
RESENT = "resent"


def renumber(node: Node, start: int, take_back: Callable[[], None]) -> None:
    """The kept packages as one package numbered ``start``, then the group's data asked
    for (``take_back``, called in the state transaction that records it)."""
    kept = node.state.outbox()
    folder = node.packages_dir / "outbox" / f"again-{start}"
    folder.mkdir(parents=True, exist_ok=True)
    made = _as_now(node, kept, folder, start) if kept else None
    faults.point("twins.renumbered")
    with node.state.transaction():
        node.state.ack_outbox(max((e.sequence for e in kept), default=0))
        if made is not None:
            node.state.add_outbox(start, *made)
        node.state.set_meta("next_sequence", str(start + (made is not None)))
        node.state.set_meta(RESENT, json.dumps([e.sequence for e in kept]))
        node.state.drop_meta(TWIN)
        take_back()
    faults.point("twins.recorded")
    for entry in kept:  # (a crash before: old files left beside, never named again)
        entry.path.unlink(missing_ok=True)


def _as_now(node: Node, kept: list[Outgoing], folder: Path, sequence: int) -> tuple[Path, int]:
    """The package under ``sequence`` of every key ``kept`` changed, as the rows are now.

    The keys go to a spool per table in the state database (a key changed twice is kept
    once), not into memory: a kept first export of a million rows held ~250 MB of key
    tuples. They come back in key order, ``READ_KEYS`` at a time."""
    # The tables as they are now (the rows are read now): those still synchronised here.
    synced = {t.name: t for t in node.tables().synced}
    spools: dict[str, str] = {}  # table name -> its spool
    state = node.state
    try:
        oldest = _spool_keys(node, kept, synced, spools)
        target = folder / package_name(node.code, sequence)
        meta = {**(oldest or {}), "first_unacked": sequence}
        tables = [t for name, t in synced.items() if name in spools]
        with PackageWriter(
            target,
            origin=node.code,
            sequence=sequence,
            kind="site",
            tables=[TableSchema.of(t) for t in tables],
            meta=meta,
            key=node.key,
            created=node.now(),
        ) as writer:
            rows = sum(_write_as_now(node, writer, t, spools[t.name]) for t in tables)
    finally:
        for spool in spools.values():
            state.drop_spool(spool)
    return target, rows


def _spool_keys(
    node: Node, kept: list[Outgoing], synced: dict[str, Table], spools: dict[str, str]
) -> dict[str, Any] | None:
    """Every key the kept packages changed, into ``spools`` (one per table, created here);
    the oldest kept package's meta."""
    oldest: dict[str, Any] | None = None
    skeys = {name: snapshot_key(t.key_kinds, range(len(t.key))) for name, t in synced.items()}
    for entry in kept:
        reader = PackageReader(entry.path, node.keys())
        oldest = oldest if oldest is not None else dict(reader.manifest.meta)
        getters = {s.name: key_getter(s.key_positions) for s in reader.manifest.tables}
        batches: dict[str, list[tuple[Any, ...]]] = {}
        for change in reader.changes():
            table = synced.get(change.table)
            if table is None:  # no longer synchronised here
                continue
            key = change.values if change.op == "D" else getters[change.table](change.values)
            kinds = table.key_kinds
            text = json.dumps([to_json(k, v) for k, v in zip(kinds, key, strict=True)])
            batch = batches.setdefault(table.name, [])
            batch.append((*skeys[table.name](key), text))
            if len(batch) >= READ_KEYS:
                _to_spool(node, table, spools, batches.pop(table.name))
        for name, batch in batches.items():
            _to_spool(node, synced[name], spools, batch)
    return oldest


def _to_spool(
    node: Node, table: Table, spools: dict[str, str], batch: list[tuple[Any, ...]]
) -> None:
    """(snapshot key..., key JSON) rows into the table's spool, made at its first."""
    spool = spools.get(table.name)
    if spool is None:
        spool = spools[table.name] = f"again_{len(spools)}"
        node.state.start_spool(len(table.key), spool)
    node.state.add_to_spool(len(table.key), batch, spool)


def _write_as_now(node: Node, writer: PackageWriter, table: Table, spool: str) -> int:
    """The rows of the spooled keys as the database holds them now, or their deletes."""
    kinds = table.key_kinds
    row_skey = snapshot_key(kinds, table.key_positions)
    key_skey = snapshot_key(kinds, range(len(kinds)))
    texts = node.state.spooled_rows(len(kinds), spool)
    rows = 0
    while part := [
        tuple(from_json(k, v) for k, v in zip(kinds, json.loads(text), strict=True))
        for (text,) in texts.fetchmany(READ_KEYS)
    ]:
        found = {row_skey(r): r for r in node.adapter.fetch(table, part)}
        for key in part:
            row = found.get(key_skey(key))
            try:
                if row is None:
                    writer.write(table.name, "D", key)
                else:
                    writer.write(table.name, "U", row)
            except PackageError:  # a value that cannot travel: its capture holds it
                continue
            rows += 1
    return rows
