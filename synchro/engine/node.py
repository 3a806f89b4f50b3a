"""What the Siège and a Serveur share: a node of the group, its database, its state, its
packages.

``Node`` is the engine's facade for the CLI, the rounds and the tests; a node is a
``SiegeNode`` (``engine.siege_node``) or a ``ServeurNode`` (``engine.serveur_node``), made
by ``engine.nodes.build_node`` from the config's role. Shared here:

- ``export()``      capture local changes into a new package (``engine.node_export``;
                    what is kept of it is the role's: the Serveur's outbox, the Siège's
                    change log);
- ``import_package()`` verify and apply a package exactly once (crash-safe); the role says
                    which packages it takes (``_admit``) and what it records (``_after_apply``);
- ``status()``      tables, keys, row counts and pending changes.

Package identities: a Serveur's packages are (site code, its sequence); the Siège's
packages for a site are (Siège code, that site's outgoing sequence).
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, Self

from synchro import faults
from synchro.config.model import Config
from synchro.db import open_database
from synchro.db.base import Adapter, Table
from synchro.engine import marks
from synchro.engine.apply import apply_changes
from synchro.engine.apply_rows import ApplyContext, ApplyStats
from synchro.engine.checksum import Sums, agreed_sums, checksums
from synchro.engine.lost import again_when_disconnected, again_when_lost
from synchro.engine.node_export import Exporting, Progress
from synchro.engine.node_results import DUPLICATE, Admission, ImportResult, NodeStatus
from synchro.engine.node_status import node_status, pending_changes
from synchro.engine.tables import TableSelection, select_tables
from synchro.errors import CommitInDoubt, PackageError
from synchro.package import Manifest, PackageReader, open_package
from synchro.state import StateDB


class Node(Exporting):
    """Open with ``build_node(config, state_path, packages_dir, connection=...)``; close after.

    A subclass names its role: ``policy`` (how a change is applied there), ``export_kind``
    (the kind of its own packages), ``default_code``, and what it keeps of an export, which
    packages it takes and what it records after applying one."""

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
            # a stop ends a wait for a lock (``db.lock_wait``) or for the server to answer
            self._adapter = open_database(self.connection, self.state.stopping)
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
        """Per-table checksums of this node's database now (see ``engine.checksum``), read
        again on a new connection when the server's was lost (``engine.lost``)."""
        tables = self.tables().synced
        return again_when_disconnected(
            lambda: checksums(self.adapter, tables), self.adapter.lost_connection
        )

    def agreed_sums(self, names: Iterable[str] | None = None) -> Sums:
        """The checksums of the rows as this node last exchanged them (all tables, or
        those ``names``): ``engine.checksum.agreed_sums``."""
        wanted = None if names is None else set(names)
        tables = [t for t in self.tables().synced if wanted is None or t.name in wanted]
        return agreed_sums(self.state, tables)

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
        self.recover(redoing=path)
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
            rules=self.tables().rules,
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
        except CommitInDoubt:  # the rows may be kept: the intent makes it done again first
            raise
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

    def recover(self, redoing: Path | None = None) -> str | None:
        """Finish an apply interrupted by a crash or a commit in doubt (re-applying is
        idempotent); not when it is ``redoing``, the package the caller applies now."""
        intent = self.state.intent()
        if intent is None:
            return None
        with self.state.transaction():
            self.state.clear_intent()
        if intent.path == redoing:
            return None
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
