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

if TYPE_CHECKING:
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
    """The package under ``sequence`` of every key ``kept`` changed, as the rows are now."""
    keys: dict[str, dict[tuple[Any, ...], None]] = {}  # (an ordered set per table)
    oldest: dict[str, Any] | None = None
    for entry in kept:
        reader = PackageReader(entry.path, node.keys())
        oldest = oldest if oldest is not None else dict(reader.manifest.meta)
        getters = {s.name: key_getter(s.key_positions) for s in reader.manifest.tables}
        for change in reader.changes():
            key = change.values if change.op == "D" else getters[change.table](change.values)
            keys.setdefault(change.table, {})[tuple(key)] = None
    # The tables as they are now (the rows are read now): those still synchronised here.
    tables = {t.name: t for t in node.tables().synced if t.name in keys}
    target = folder / package_name(node.code, sequence)
    meta = {**(oldest or {}), "first_unacked": sequence}
    rows = 0
    with PackageWriter(
        target,
        origin=node.code,
        sequence=sequence,
        kind="site",
        tables=[TableSchema.of(t) for t in tables.values()],
        meta=meta,
        key=node.key,
        created=node.now(),
    ) as writer:
        for name, table in tables.items():
            wanted = keys[name]
            row_skey = snapshot_key(table.key_kinds, table.key_positions)
            key_skey = snapshot_key(table.key_kinds, range(len(table.key)))
            ordered = list(wanted)
            for start in range(0, len(ordered), READ_KEYS):  # rows read a part at a time
                part = ordered[start : start + READ_KEYS]
                found = {row_skey(r): r for r in node.adapter.fetch(table, part)}
                for key in part:
                    row = found.get(key_skey(key))
                    try:
                        if row is None:
                            writer.write(name, "D", key)
                        else:
                            writer.write(name, "U", row)
                    except PackageError:  # a value that cannot travel: its capture holds it
                        continue
                    rows += 1
    return target, rows
