"""What the Siège and a Serveur share: a node of the group, its database, its state, its
packages.

``Node`` is the engine's facade for the CLI, the rounds and the tests; a node is a
``SiegeNode`` (``engine.siege_node``) or a ``ServeurNode`` (``engine.serveur_node``), made
by ``engine.nodes.build_node`` from the config's role. Shared here:

- ``export()``      capture local changes into a new package (what is kept of it is the
                    role's: the Serveur's outbox, the Siège's change log);
- ``import_package()`` verify and apply a package exactly once (crash-safe); the role says
                    which packages it takes (``_admit``) and what it records (``_after_apply``);
- ``status()``      tables, keys, row counts and pending changes.

Package identities: a Serveur's packages are (site code, its sequence); the Siège's
packages for a site are (Siège code, that site's outgoing sequence).
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

from synchro import faults
from synchro.capture.diff import CaptureOptions, CaptureResult, capture, ensure_snapshots
from synchro.capture.source import KeyOrderError
from synchro.config.model import Config
from synchro.db import open_database
from synchro.db.base import Adapter, Table
from synchro.engine import marks
from synchro.engine.apply import apply_changes
from synchro.engine.apply_rows import ApplyContext, ApplyStats
from synchro.engine.checksum import Sums, checksums
from synchro.engine.lost import again_when_disconnected, again_when_lost
from synchro.engine.node_results import (
    DUPLICATE,
    Admission,
    ExportResult,
    ImportResult,
    NodeStatus,
)
from synchro.engine.node_status import node_status, pending_changes
from synchro.engine.policy import ApplyPolicy
from synchro.engine.retry import retry_quarantined
from synchro.engine.tables import TableSelection, select_tables
from synchro.engine.watermark import full_read_tables
from synchro.errors import PackageError
from synchro.names import package_name
from synchro.package import Manifest, PackageReader, PackageWriter, TableSchema, open_package
from synchro.state import StateDB

Progress = Callable[[str, int], None]


class _NothingNew(Exception):
    """Rolls back an export that found nothing while older packages still wait."""


class Node(ABC):
    """Open with ``build_node(config, state_path, packages_dir, connection=...)``; close after.

    A subclass names its role: ``policy`` (how a change is applied there), ``export_kind``
    (the kind of its own packages), ``default_code``, and what it keeps of an export, which
    packages it takes and what it records after applying one."""

    policy: ClassVar[ApplyPolicy]
    export_kind: ClassVar[str]  # the manifest kind of this node's own packages
    default_code: ClassVar[str]  # the code when the config names none

    def __init__(
        self,
        config: Config,
        state_path: Path,
        packages_dir: Path,
        *,
        connection: str | None = None,
        key: bytes | None = None,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.config = config
        self.code = config.site or self.default_code
        self.packages_dir = packages_dir
        self.connection = connection or config.database.connection
        self.key = key
        self.previous_key: bytes | None = None
        if config.previous_group_key and key is not None:
            from synchro.package.crypto import decode_key

            self.previous_key = decode_key(config.previous_group_key, "previous_group_key")
        self.now = now
        self.state = StateDB(state_path)
        self._adapter: Adapter | None = None
        self._tables: TableSelection | None = None

    # -- plumbing -----------------------------------------------------------------------

    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:
            self._adapter = open_database(self.connection)
        return self._adapter

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        self.state.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self, refresh: bool = False) -> TableSelection:
        """The synchronised tables (cached; ``refresh`` discovers them again)."""
        if self._tables is None or refresh:
            self._tables = select_tables(self.adapter.tables(), self.config.database)
        return self._tables

    def keyless_tables(self) -> list[str]:
        """The tables left out for want of a key, which every run's report names."""
        return [s.table for s in self.tables().skipped]

    def _table_map(self) -> dict[str, Table]:
        return {t.name: t for t in self.tables().synced}

    def keys(self) -> tuple[bytes, ...]:
        """The group keys a package may be sealed with: the current one, and the previous
        one until ``previous_key_until`` (key rotation's grace period), then no more."""
        if self.key is None:
            return ()
        until = self.config.previous_key_until
        if self.previous_key is not None and until is not None and self.now() < until:
            return (self.key, self.previous_key)
        return (self.key,)

    def checksums(self) -> Sums:
        """Per-table checksums of this node's database now (see ``engine.checksum``); read
        again on a new connection when the server's was lost (``engine.lost``): the first
        read after an apply met the connection of a server restarted meanwhile, and a run
        that had applied everything ended « Echec »."""
        return again_when_disconnected(
            lambda: checksums(self.adapter, self.tables().synced), self.adapter.lost_connection
        )

    # -- export -------------------------------------------------------------------------

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
        tables = self.tables(refresh=True).synced
        retry_quarantined(self.adapter, self.state, tables, policy=self.policy, local=self.code)
        ensure_snapshots(self.state, tables)
        spooled: set[str] = set()
        whole = full_read_tables(self.state)  # the « Contrôle » found them different
        modified = {
            t.name: self.config.database.rule(t.name).modified_column
            for t in tables
            if self.config.database.rule(t.name).modified_column and t.name not in whole
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

    # -- import -------------------------------------------------------------------------

    def import_package(
        self,
        path: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Verify ``path`` whole, then apply it exactly once (see module docstring); made
        again when the database ended the apply's transaction itself (``engine.lost``)."""
        return again_when_lost(
            lambda: self._import_once(path, cancel, progress),
            cancel,
            self.adapter.lost_connection,
        )

    def _import_once(
        self, path: Path, cancel: threading.Event | None, progress: Progress | None
    ) -> ImportResult:
        self.recover()
        reader = open_package(path, self.keys())
        manifest = reader.manifest
        origin, sequence = manifest.origin, manifest.sequence
        if origin == self.code:
            raise PackageError(str(path), say=("engine.pkg.own", {"origin": origin}))
        self._check_instance(manifest)
        if self.state.is_applied(origin, sequence):
            marks.same_as_applied(self.state, path, manifest, self.now())
            return ImportResult.held(manifest, "duplicate", DUPLICATE)
        admitted = self._admit(path, manifest)
        if isinstance(admitted, ImportResult):
            return admitted
        ctx = ApplyContext(
            local=self.code,
            policy=self.policy,
            origin=origin,
            package_id=f"{origin}#{sequence}",
            rules={r.name: r for r in self.config.database.tables},
            base_pos=admitted.base_pos,
            skip_pos=admitted.skip_pos,
            skip_origin=admitted.skip_origin,
            cancel=cancel,
            progress=progress,
        )
        self.state.make_room()  # a full disk mid-apply leaves room once rolled back
        with self.state.transaction():
            self.state.set_intent(origin, sequence, path)
        faults.point("node.import.intent")
        stats = self._apply(reader, ctx)
        return ImportResult(manifest, stats, "applied")

    @abstractmethod
    def _admit(self, path: Path, manifest: Manifest) -> ImportResult | Admission:
        """Whether the package not applied yet is applied now (an ``Admission``) or not yet
        (the ``ImportResult`` saying why); PackageError when this node never takes it."""

    def _check_instance(self, manifest: Manifest) -> None:
        """A peer whose state was reset (reinstall, lost state database) starts its sequence
        and change-log positions again: forget what we knew of its old life, so that none
        of its new packages is mistaken for one already applied."""
        instance = str(manifest.meta.get("instance", ""))
        if not instance:
            return
        key = f"instance:{manifest.origin}"
        known = self.state.get_meta(key)
        if known == instance:
            return
        with self.state.transaction():
            if known is not None:
                self.state.forget_applied(manifest.origin)
                if manifest.kind == "hq":
                    self.state.set_meta("hq_pos", "0")
            self._new_life(manifest)
            self.state.set_meta(key, instance)

    @abstractmethod
    def _new_life(self, manifest: Manifest) -> None:
        """First contact with this life of the package's sender, in the state transaction
        that records it."""

    def _apply(self, reader: PackageReader, ctx: ApplyContext) -> ApplyStats:
        manifest = reader.manifest
        tables = self._table_map()
        try:
            with self.state.transaction():
                self.state.replay_conflicts(ctx.package_id)  # kept by a crashed apply
                with self.adapter.atomic():
                    stats = apply_changes(self.adapter, self.state, tables, reader, ctx)
                    marks.bump(self.adapter, self.state, self.code)
                    self.state.keep_conflicts(ctx.package_id)  # durable before the commit
                    faults.point("node.apply.before_db_commit")
                faults.point("node.apply.db_committed")
                self._after_apply(reader, ctx)
                self.state.mark_applied(
                    manifest.origin,
                    manifest.sequence,
                    manifest.kind,
                    manifest.rows,
                    manifest.sha256,
                )
                self.state.clear_intent()
        except BaseException:
            with self.state.transaction():
                self.state.clear_intent()
            raise
        faults.point("node.apply.committed")
        self.state.drop_conflicts_journal(ctx.package_id)
        return stats

    @abstractmethod
    def _after_apply(self, reader: PackageReader, ctx: ApplyContext) -> None:
        """Record what applying ``reader``'s package changes for this node (same
        transaction)."""

    def recover(self) -> str | None:
        """Finish an apply interrupted by a crash (re-applying is idempotent)."""
        intent = self.state.intent()
        if intent is None:
            return None
        with self.state.transaction():
            self.state.clear_intent()
        if self.state.is_applied(intent.origin, intent.sequence) or not intent.path.exists():
            return None
        self.import_package(intent.path)
        return f"{intent.origin}#{intent.sequence}"

    # -- status -------------------------------------------------------------------------

    def status(self) -> NodeStatus:
        """Tables, keys, row counts (``engine.node_status``)."""
        return node_status(self)

    def pending_changes(self) -> dict[str, dict[str, int]]:
        """Changes a capture would send now, without keeping anything (dry run)."""
        return pending_changes(self)
