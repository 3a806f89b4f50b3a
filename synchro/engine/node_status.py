"""What ``synchro status`` shows of a node: its tables and the changes a capture would send
now (a dry run: nothing kept)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synchro.capture.diff import CaptureOptions, CaptureResult, capture, ensure_snapshots
from synchro.db.base import Table
from synchro.engine.node_results import NodeStatus, TableStatus
from synchro.package import PackageWriter, TableSchema

if TYPE_CHECKING:
    from synchro.engine.node import Node


def node_status(node: Node) -> NodeStatus:
    """Each synchronised table: its key, rows in the database and in the snapshot; the
    tables left out and why; the packages waiting in the outbox."""
    tables, skipped, _ = node.tables()
    result = NodeStatus(skipped=list(skipped))
    ensure_snapshots(node.state, tables)
    for table in tables:
        snap = node.state.snapshot_table(table)
        result.tables.append(
            TableStatus(
                table.name,
                table.key,
                table.key_source,
                node.adapter.count(table),
                node.state.snapshot_count(snap),
            )
        )
    result.outbox = [s.sequence for s in node.state.outbox()]
    return result


def pending_changes(node: Node) -> dict[str, dict[str, int]]:
    """Changes a capture would send now, without keeping anything (dry run)."""
    tables = node.tables().synced
    ensure_snapshots(node.state, tables)
    with node.state.dry_run():
        result = scratch_capture(node, tables, "dry-run.pkg", CaptureOptions())
    return {
        name: {"inserts": c.inserts, "updates": c.updates, "deletes": c.deletes}
        for name, c in result.counts.items()
    }


def scratch_capture(
    node: Node, tables: list[Table], name: str, options: CaptureOptions
) -> CaptureResult:
    """A capture into a package thrown away (``name`` in the packages folder): what it
    does to the snapshot is kept or not by the caller's state transaction (a dry run;
    ``take_back.adopt``)."""
    path = node.packages_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer = PackageWriter(
            path,
            origin=node.code,
            sequence=0,
            kind="local",
            tables=[TableSchema.of(t) for t in tables],
            key=None,
        )
        with writer:
            result = capture(node.adapter, node.state, tables, writer, options)
            writer.close()
    finally:
        path.unlink(missing_ok=True)
    return result
