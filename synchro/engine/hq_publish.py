"""The Siège's changes, compressed once per publication for every establishment.

Each establishment's package holds every change after the position it acknowledged except
its own (issue 15). Those packages differ only by which origins they leave out, so the
change log is read once per acknowledged position and each run of one origin's changes is
encoded once (``package.body.SegmentBuilder``); a site's package is the other origins'
segments, compressed in one stream. The Siège's work for a round of n establishments thus
grows with the rows it received, not with n times them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from synchro.db.base import Table
from synchro.package import TableSchema
from synchro.package.body import Segment, SegmentBuilder, SegmentStore
from synchro.state import StateDB
from synchro.values import from_json


def build_segments(
    state: StateDB, tables: Sequence[Table], after: int, store: SegmentStore
) -> list[Segment]:
    """The last version of each key changed after position ``after``, as segments in the
    order a package carries them: upserts table by table (parents first), then deletes in
    the reverse order; within a table, in the log's order."""
    builder = SegmentBuilder([TableSchema.of(t) for t in tables], store)
    for table in tables:
        for change in state.compacted_changes(table.name, "U", after, ""):
            builder.write_json(table.name, "U", change.row_json or "[]", change.origin, change.pos)
        builder.cut()
    for table in reversed(tables):
        for change in state.compacted_changes(table.name, "D", after, ""):
            keys = json.loads(change.key_json)
            key_values = [from_json(k, v) for k, v in zip(table.key_kinds, keys, strict=True)]
            builder.write(table.name, "D", key_values, change.origin, change.pos)
        builder.cut()
    return builder.close()
