"""A node's export: capture its local changes into a new package (``Node.export``).

The capture reads every synchronised table against the snapshot (``capture.diff``) and
writes what changed into one package, in one state transaction with the snapshot and the
package's number; what is kept of the package is the role's (``_keep_export``: the
Serveur's outbox, the Siège's change log). Made again on a new connection when the
database server's was lost (``engine.lost``).
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from synchro import faults
from synchro.capture.diff import CaptureOptions, CaptureResult, capture, ensure_snapshots
from synchro.capture.source import KeyOrderError
from synchro.config.model import Config
from synchro.db.base import Adapter, Table
from synchro.engine import marks
from synchro.engine.lost import again_when_disconnected
from synchro.engine.node_results import ExportResult
from synchro.engine.policy import ApplyPolicy
from synchro.engine.retry import retry_quarantined
from synchro.engine.tables import TableSelection
from synchro.engine.watermark import full_read_tables
from synchro.names import package_name
from synchro.package import Manifest, PackageWriter, TableSchema
from synchro.state import StateDB

Progress = Callable[[str, int], None]


class _NothingNew(Exception):
    """Rolls back an export that found nothing while older packages still wait."""


class Exporting(ABC):
    """The export half of ``engine.node.Node``, which gives it what is declared here."""

    policy: ClassVar[ApplyPolicy]
    export_kind: ClassVar[str]  # the manifest kind of this node's own packages
    config: Config
    code: str
    state: StateDB
    packages_dir: Path
    key: bytes | None
    now: Callable[[], dt.datetime]

    @property
    @abstractmethod
    def adapter(self) -> Adapter: ...

    @abstractmethod
    def tables(self, refresh: bool = False) -> TableSelection: ...

    @abstractmethod
    def recover(self) -> str | None: ...

    def export(
        self,
        out: Path | None = None,
        *,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
        since: dt.datetime | None = None,
        only_if_new: bool = False,
        deletes_confirmed: bool = False,
        restore_confirmed: bool = False,
    ) -> ExportResult:
        """Capture every local change into a new package; commit the snapshot with it.

        ``only_if_new`` (a Serveur's run): when nothing changed while older packages still
        wait for the Siège, make none (``kept`` False) — they are sent again instead.
        ``deletes_confirmed``: a person started it, so mass deletes are sent, not held
        (``capture.mass_deletes``); ``restore_confirmed``: a person chose to send a restored
        database as it is (Envoyer: ``engine.marks``) — MANUELLE alone does not. Made
        again on a new connection when the server's was lost (``engine.lost``)."""
        return again_when_disconnected(
            lambda: self._export(
                out, cancel, progress, since, only_if_new, deletes_confirmed, restore_confirmed
            ),
            self.adapter.lost_connection,
            cancel,
        )

    def _export(
        self,
        out: Path | None,
        cancel: threading.Event | None,
        progress: Progress | None,
        since: dt.datetime | None,
        only_if_new: bool,
        deletes_confirmed: bool,
        restore_confirmed: bool,
    ) -> ExportResult:
        self.recover()
        if not restore_confirmed:
            marks.check(self.adapter, self.state, self.code)
        # Discovered again at every export: a Node kept open (the Siège's service) sees a
        # widened column, a new column or a new table before it retries or captures.
        selection = self.tables(refresh=True)
        tables = selection.synced
        retry_quarantined(
            self.adapter,
            self.state,
            tables,
            policy=self.policy,
            local=self.code,
            rule=selection.rule,
        )
        ensure_snapshots(self.state, tables)
        spooled: set[str] = set()
        whole = full_read_tables(self.state)  # the « Contrôle » found them different
        modified = {
            t.name: selection.rule(t.name).modified_column
            for t in tables
            if selection.rule(t.name).modified_column and t.name not in whole
        }
        while True:
            options = CaptureOptions(
                modified_columns=modified,
                since=since,
                spooled=frozenset(spooled),
                cancel=cancel,
                progress=progress,
                deletes_confirmed=deletes_confirmed,
            )
            try:
                return self._export_once(tables, out, options, only_if_new)
            except KeyOrderError as exc:
                if exc.table in spooled:
                    raise
                spooled.add(exc.table)

    def _export_once(
        self, tables: list[Table], out: Path | None, options: CaptureOptions, only_if_new: bool
    ) -> ExportResult:
        try:
            return self._export_kept(tables, out, options, only_if_new)
        except _NothingNew as nothing:
            result, manifest, path = nothing.args
            path.unlink(missing_ok=True)
            return ExportResult(path, manifest, result, kept=False)

    def _export_kept(
        self, tables: list[Table], out: Path | None, options: CaptureOptions, only_if_new: bool
    ) -> ExportResult:
        """The export; a node with nothing new to say makes no package (``_nothing_new``:
        a Serveur whose capture is empty while older packages wait)."""
        with self.state.transaction():
            sequence = self.state.next_sequence()
            path = out or self.packages_dir / "outbox" / package_name(self.code, sequence)
            path.parent.mkdir(parents=True, exist_ok=True)
            meta: dict[str, Any] = {
                "base_pos": self.state.get_int("hq_pos"),
                "base_instance": self.state.get_meta("hq_instance") or "",
                "instance": self.state.instance,
                # The oldest package the Siège has not acknowledged: where a Siège meeting
                # this life of the site for the first time must start (not at this one).
                "first_unacked": min([s.sequence for s in self.state.outbox()] + [sequence]),
                **self._export_meta(),
            }
            writer = PackageWriter(
                path,
                origin=self.code,
                sequence=sequence,
                kind=self.export_kind,
                tables=[TableSchema.of(t) for t in tables],
                meta=meta,
                key=self.key,
                created=self.now(),
            )
            # (``export`` checked the mark, or a person chose to send a restored database)
            marks.bump(self.adapter, self.state, self.code, confirmed=True)
            with writer:
                result = capture(self.adapter, self.state, tables, writer, options)
                manifest = writer.close()
            faults.point("node.export.written")
            if only_if_new and self._nothing_new(manifest, result, out):
                raise _NothingNew(result, manifest, path)
            self._keep_export(path, tables, manifest)
        faults.point("node.export.committed")
        if out is None:
            self._exported(path)
        return ExportResult(path, manifest, result)

    def _export_meta(self) -> dict[str, Any]:
        """What this node's packages say besides the positions (nothing, here)."""
        return {}

    def _nothing_new(self, manifest: Manifest, result: CaptureResult, out: Path | None) -> bool:
        """Whether this export is better not made (see ``ServeurNode``); never, here."""
        return False

    @abstractmethod
    def _keep_export(self, path: Path, tables: list[Table], manifest: Manifest) -> None:
        """Record the package just written, in the export's state transaction."""

    @abstractmethod
    def _exported(self, path: Path) -> None:
        """After the export committed, its package file in the outbox (``path``)."""
