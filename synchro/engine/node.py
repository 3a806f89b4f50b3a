"""One node (Siège or Serveur) of the group: its database, its state, its packages.

``Node`` is the engine's facade for the CLI, the rounds and the tests:

- ``export()``      capture local changes into a new package (Serveur: kept in the outbox
                    until the Siège acknowledges it; Siège: also written to the change log);
- ``import_package()`` verify and apply a package exactly once (crash-safe);
- ``publish(site)`` Siège: the package of everything a site has not received yet;
- ``status()``      tables, keys, row counts and pending changes.

Package identities: a Serveur's packages are (site code, its sequence); the Siège's
packages for a site are (Siège code, that site's outgoing sequence).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synchro import faults
from synchro.capture.diff import (
    CaptureOptions,
    CaptureResult,
    KeyOrderError,
    capture,
    ensure_snapshots,
)
from synchro.config.model import Config
from synchro.db import open_database
from synchro.db.base import Adapter, Table
from synchro.engine.apply import ApplyContext, ApplyStats, apply_changes
from synchro.engine.checksum import Sums, checksums, sums_from_json, to_json
from synchro.engine.retry import retry_quarantined
from synchro.engine.tables import Skipped, select_tables
from synchro.errors import PackageError
from synchro.names import package_name, published_name
from synchro.package import Manifest, PackageWriter, TableSchema, open_package
from synchro.state import StateDB
from synchro.values import from_json

Progress = Callable[[str, int], None]
LAST_HQ = "last_hq"  # Serveur: the Siège package applied last (what the ack names), JSON
ACK_DUE = "ack_due"  # Serveur: "1" until the Siège has been sent the ack of LAST_HQ


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest: Manifest
    capture: CaptureResult
    kept: bool = True  # False: nothing new while older packages wait (no package made)


class _NothingNew(Exception):
    """Rolls back an export that found nothing while older packages still wait."""


@dataclass(frozen=True)
class ImportResult:
    manifest: Manifest
    stats: ApplyStats
    status: str  # "applied", "duplicate", "waiting" (an earlier package is missing), "stale"
    message: str = ""


@dataclass(frozen=True)
class TableStatus:
    name: str
    key: tuple[str, ...]
    key_source: str
    rows: int
    known: int  # rows in the snapshot (as last exchanged)


@dataclass
class NodeStatus:
    tables: list[TableStatus] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pending: dict[str, dict[str, int]] = field(default_factory=dict)
    outbox: list[int] = field(default_factory=list)


class Node:
    """Open with ``Node(config, state_path, packages_dir, connection=...)``; close after."""

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
        self.code = config.site or ("SIEGE" if config.is_hq else "SITE")
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
        self._tables: tuple[list[Table], list[Skipped]] | None = None

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

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self, refresh: bool = False) -> tuple[list[Table], list[Skipped]]:
        if self._tables is None or refresh:
            self._tables = select_tables(self.adapter.tables(), self.config.database)
        return self._tables

    def _table_map(self) -> dict[str, Table]:
        return {t.name: t for t in self.tables()[0]}

    # -- export -------------------------------------------------------------------------

    def export(
        self,
        out: Path | None = None,
        *,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
        since: dt.datetime | None = None,
        only_if_new: bool = False,
    ) -> ExportResult:
        """Capture every local change into a new package; commit the snapshot with it.

        ``only_if_new`` (a Serveur's run): when nothing changed while older packages still
        wait for the Siège, make none (``kept`` False) — they are sent again instead."""
        self.recover()
        # Discovered again at every export: a Node kept open (the Siège's service) sees a
        # widened column, a new column or a new table before it retries or captures.
        tables = self.tables(refresh=True)[0]
        retry_quarantined(self.adapter, self.state, tables, is_hq=self.config.is_hq)
        ensure_snapshots(self.state, tables)
        spooled: set[str] = set()
        modified = {
            t.name: self.config.database.rule(t.name).modified_column
            for t in tables
            if self.config.database.rule(t.name).modified_column
        }
        while True:
            options = CaptureOptions(
                modified_columns=modified,
                since=since,
                spooled=frozenset(spooled),
                cancel=cancel,
                progress=progress,
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
        """The export; a Serveur whose capture is empty while packages the Siège has not
        acknowledged wait makes no new one (``_NothingNew``): re-sending those is enough,
        and a new sequence would make the Siège's answer to them look stale."""
        with self.state.transaction():
            sequence = self.state.next_sequence()
            kind = "local" if self.config.is_hq else "site"
            path = out or self.packages_dir / "outbox" / package_name(self.code, sequence)
            path.parent.mkdir(parents=True, exist_ok=True)
            meta: dict[str, Any] = {
                "base_pos": self.state.get_int("hq_pos"),
                "base_instance": self.state.get_meta("hq_instance") or "",
                "instance": self.state.instance,
                # The oldest package the Siège has not acknowledged: where a Siège meeting
                # this life of the site for the first time must start (not at this one).
                "first_unacked": min([s for s, _ in self.state.outbox()] + [sequence]),
            }
            writer = PackageWriter(
                path,
                origin=self.code,
                sequence=sequence,
                kind=kind,
                tables=[TableSchema.of(t) for t in tables],
                meta=meta,
                key=self.key,
                created=self.now(),
            )
            with writer:
                result = capture(self.adapter, self.state, tables, writer, options)
                manifest = writer.close()
            faults.point("node.export.written")
            if only_if_new and self._nothing_new(manifest, result, out):
                raise _NothingNew(result, manifest, path)
            if self.config.is_hq:
                self._log_local(path, tables)
                self.state.mark_applied(self.code, sequence, kind, manifest.rows)
            else:
                self.state.add_outbox(sequence, path, manifest.rows)
        faults.point("node.export.committed")
        if self.config.is_hq and out is None:
            path.unlink(missing_ok=True)  # the change log holds it now
        return ExportResult(path, manifest, result)

    def _nothing_new(self, manifest: Manifest, result: CaptureResult, out: Path | None) -> bool:
        """Serveur: an empty capture while older packages still wait for the Siège."""
        if self.config.is_hq or out is not None or manifest.rows or result.held:
            return False
        return bool(self.state.outbox())

    def _log_local(self, path: Path, tables: list[Table]) -> None:
        """Siège: its own changes go into the change log (origin = the Siège)."""
        by_name = {t.name: t for t in tables}
        batch: list[ChangeLogEntry] = []
        from synchro.state import ChangeLogEntry, key_json, snap_value
        from synchro.values import to_json

        for change in open_package(path, self.keys()).changes():
            table = by_name[change.table]
            if change.op == "U":
                row = change.values
                key = [row[p] for p in table.key_positions]
                row_json: str | None = json.dumps(
                    [to_json(k, v) for k, v in zip(table.kinds, row, strict=True)],
                    ensure_ascii=False,
                )
            else:
                key = list(change.values)
                row_json = None
            skey = [snap_value(k, v) for k, v in zip(table.key_kinds, key, strict=True)]
            batch.append(ChangeLogEntry(self.code, table.name, change.op, key_json(skey), row_json))
            if len(batch) >= 5000:
                self.state.log_changes(batch)
                batch.clear()
        self.state.log_changes(batch)

    # -- import -------------------------------------------------------------------------

    def import_package(
        self,
        path: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Verify ``path`` whole, then apply it exactly once (see module docstring)."""
        self.recover()
        reader = open_package(path, self.keys())
        manifest = reader.manifest
        origin, sequence = manifest.origin, manifest.sequence
        if origin == self.code:
            raise PackageError(str(path), f"ce paquet vient de ce poste même ({origin})")
        self._check_instance(manifest)
        if self.state.is_applied(origin, sequence):
            return ImportResult(manifest, ApplyStats(), "duplicate", "déjà appliqué")
        ctx_args: dict[str, Any] = {}
        if self.config.is_hq:
            if manifest.kind != "site":
                raise PackageError(str(path), f"paquet de type {manifest.kind} inattendu au siège")
            _acked, applied_seq, _out_seq = self.state.site(origin)
            if sequence > applied_seq + 1:
                return ImportResult(
                    manifest,
                    ApplyStats(),
                    "waiting",
                    f"le paquet {applied_seq + 1} de {origin} manque encore",
                )
            if sequence <= applied_seq:
                return ImportResult(manifest, ApplyStats(), "duplicate", "déjà appliqué")
            ctx_args["base_pos"] = self._base_pos(manifest)
        elif manifest.kind == "hq":
            hq_pos = self.state.get_int("hq_pos")
            if int(manifest.meta.get("from_pos", 0)) > hq_pos:
                raise PackageError(
                    str(path),
                    f"il manque des changements du siège (position {hq_pos}, le paquet commence "
                    f"à {manifest.meta.get('from_pos')})",
                )
            newest = max((s for s, _ in self.state.outbox()), default=0)
            if self._acked_seq(manifest) < newest:
                return ImportResult(
                    manifest,
                    ApplyStats(),
                    "stale",
                    "le siège n'a pas encore intégré le dernier envoi de ce poste",
                )
            ctx_args["skip_pos"] = hq_pos
            # Packages hold no change of ours any more (issue 15); one an older Siège
            # published ("shared" by sites in step) did: those are skipped still.
            ctx_args["skip_origin"] = self.code
        ctx = ApplyContext(
            local=self.code,
            is_hq=self.config.is_hq,
            origin=origin,
            package_id=f"{origin}#{sequence}",
            rules={r.name: r for r in self.config.database.tables},
            cancel=cancel,
            progress=progress,
            **ctx_args,
        )
        with self.state.transaction():
            self.state.set_intent(origin, sequence, path)
        faults.point("node.import.intent")
        stats = self._apply(reader, ctx)
        return ImportResult(manifest, stats, "applied")

    def _acked_seq(self, manifest: Manifest) -> int:
        """Serveur: the last of our packages the Siège had applied when it published —
        0 when those were packages of an earlier life of this site (a lost state starts
        its sequence again: the old numbers acknowledge nothing of the new ones)."""
        lives = manifest.meta.get("acked_instances")
        if isinstance(lives, dict) and str(lives.get(self.code, "")) != self.state.instance:
            return 0
        acked = manifest.meta.get("acked")
        if isinstance(acked, dict) and self.code in acked:
            return int(acked[self.code])
        return int(manifest.meta.get("acked_seq", 0))

    def keys(self) -> tuple[bytes, ...]:
        """The group keys a package may be sealed with: the current one, and the previous
        one until ``previous_key_until`` (key rotation's grace period), then no more."""
        if self.key is None:
            return ()
        until = self.config.previous_key_until
        if self.previous_key is not None and until is not None and self.now() < until:
            return (self.key, self.previous_key)
        return (self.key,)

    def _key_for(self, site: str) -> bytes | None:
        """Siège: answer a site with the key it last sent with, while that key is valid."""
        from synchro.package.crypto import key_id

        used = self.state.get_meta(f"key:{site}")
        for key in self.keys():
            if key_id(key) == used:
                return key
        return self.key

    def _base_pos(self, manifest: Manifest) -> int:
        """Siège: the change-log position the sender had received — only if it is a position
        of this Siège's log (not of a previous life of it)."""
        if str(manifest.meta.get("base_instance", "")) != self.state.instance:
            return 0
        return int(manifest.meta.get("base_pos", 0))

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
            if self.config.is_hq:
                # First contact with this life of the site (a new site, or the Siège's own
                # state was lost): its sequence starts at its oldest unacknowledged package
                # (which may arrive after a newer one), and it receives all.
                first = int(manifest.meta.get("first_unacked", manifest.sequence))
                _acked, _applied, out_seq = self.state.site(manifest.origin)
                self.state.set_site(manifest.origin, 0, max(0, first - 1), out_seq)
            self.state.set_meta(key, instance)

    def _apply(self, reader: Any, ctx: ApplyContext) -> ApplyStats:
        manifest: Manifest = reader.manifest
        tables = self._table_map()
        try:
            with self.state.transaction():
                self.state.replay_conflicts(ctx.package_id)  # kept by a crashed apply
                with self.adapter.atomic():
                    stats = apply_changes(self.adapter, self.state, tables, reader, ctx)
                    self.state.keep_conflicts(ctx.package_id)  # durable before the commit
                    faults.point("node.apply.before_db_commit")
                faults.point("node.apply.db_committed")
                self._after_apply(manifest)
                self.state.mark_applied(
                    manifest.origin, manifest.sequence, manifest.kind, manifest.rows
                )
                self.state.clear_intent()
        except BaseException:
            with self.state.transaction():
                self.state.clear_intent()
            raise
        faults.point("node.apply.committed")
        self.state.drop_conflicts_journal(ctx.package_id)
        return stats

    def _after_apply(self, manifest: Manifest) -> None:
        if self.config.is_hq:
            self.state.set_meta(f"key:{manifest.origin}", manifest.key_id)
            acked, _applied_seq, out_seq = self.state.site(manifest.origin)
            base = self._base_pos(manifest)
            self.state.set_site(manifest.origin, max(acked, base), manifest.sequence, out_seq)
        elif manifest.kind == "hq":
            self.state.set_meta("hq_pos", str(int(manifest.meta.get("to_pos", 0))))
            self.state.set_meta("hq_instance", str(manifest.meta.get("instance", "")))
            for old in self.state.ack_outbox(self._acked_seq(manifest)):
                old.unlink(missing_ok=True)
            # What the acknowledgement will name (sent after the apply, even after a crash).
            last = {
                "origin": manifest.origin,
                "sequence": manifest.sequence,
                "to_pos": int(manifest.meta.get("to_pos", 0)),
                "instance": str(manifest.meta.get("instance", "")),
                "checksums": manifest.meta.get("checksums") or {},
            }
            self.state.set_meta(LAST_HQ, json.dumps(last))
            self.state.set_meta(ACK_DUE, "1")

    def recover(self) -> str | None:
        """Finish an apply interrupted by a crash (re-applying is idempotent)."""
        intent = self.state.intent()
        if intent is None:
            return None
        origin, sequence, path = intent
        with self.state.transaction():
            self.state.clear_intent()
        if self.state.is_applied(origin, sequence) or not path.exists():
            return None
        self.import_package(path)
        return f"{origin}#{sequence}"

    # -- Siège: outgoing packages ---------------------------------------------------------

    def publish(self, site: str, out_dir: Path) -> tuple[Path, Manifest]:
        """Siège: the package of every change ``site`` has not received yet, in ``out_dir``."""
        return self.publish_group([site], lambda _site: out_dir)[site]

    def publish_group(
        self, sites: Sequence[str], folder_of: Callable[[str], Path]
    ) -> dict[str, tuple[Path, Manifest]]:
        """Siège: publish to several establishments at once, one package each.

        A site's package holds every change after the position it acknowledged except
        those that came from the site itself (issue 15: a package "shared" by the sites in
        step carried each site's own rows back to it, twice the transfer). A change of the
        site's that the Siège did not keep as it was — it lost a conflict, was quarantined
        or changed since by anyone, the Siège included — is not the last version of its key
        in the log, so the winning version goes to the site. The checksums are computed
        once for all (the proof the sites compare with); rows are written from the change
        log's JSON as they are (``PackageWriter.write_json``), so a package costs little
        more than its bytes.
        """
        staging = self.packages_dir / "publish"
        staging.mkdir(parents=True, exist_ok=True)
        published: dict[str, tuple[Path, Manifest]] = {}
        sums = to_json(self.checksums()) if sites else {}
        for site in sites:
            acked, _applied, _out = self.state.site(site)
            with self.state.transaction():
                sequence = self.state.get_int("out_seq") + 1
                self.state.set_meta("out_seq", str(sequence))
            staged = staging / package_name(self.code, sequence)
            key = self._key_for(site)
            manifest = self._write_published(staged, sequence, acked, [site], key, sums)
            faults.point("node.publish.written")
            folder = folder_of(site)
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / published_name(self.code, site, sequence)
            _link_or_copy(staged, final)
            published[site] = (final, manifest)
            faults.point("node.publish.linked")
            staged.unlink(missing_ok=True)
            with self.state.transaction():
                self.state.set_meta(f"sums:{sequence}", json.dumps(sums))
                site_acked, applied, _out = self.state.site(site)
                self.state.set_meta(f"answered:{sequence}", json.dumps({site: applied}))
                self.state.set_site(site, site_acked, applied, sequence)
                self.state.set_meta(f"offered_acked:{site}", str(applied))
                self._forget_old_publications()
        return published

    def _forget_old_publications(self, keep: int = 20) -> None:
        """Drop the checksums and answers of packages no site can still acknowledge (each
        site is offered only its newest; the ``keep`` publications before it, to every
        site, are kept for acks in flight: one package per site, so ``keep`` × sites)."""
        self.state.forget_old_publications(keep)

    def published_sums(self, sequence: int) -> Sums | None:
        """Siège: its checksums when it published package ``sequence`` (None: unknown)."""
        text = self.state.get_meta(f"sums:{sequence}")
        return sums_from_json(json.loads(text)) if text else None

    def answered(self, sequence: int, site: str) -> int:
        """Siège: the last package of ``site`` its package ``sequence`` answered (0: none)."""
        text = self.state.get_meta(f"answered:{sequence}")
        return int(json.loads(text).get(site, 0)) if text else 0

    def checksums(self) -> Sums:
        """Per-table checksums of this node's database now (see ``engine.checksum``)."""
        return checksums(self.adapter, self.tables()[0])

    def _write_published(
        self,
        path: Path,
        sequence: int,
        acked: int,
        sites: Sequence[str],
        key: bytes | None,
        sums: dict[str, list[object]],
    ) -> Manifest:
        tables = self.tables()[0]
        writer = PackageWriter(
            path,
            origin=self.code,
            sequence=sequence,
            kind="hq",
            tables=[TableSchema.of(t) for t in tables],
            meta={
                "from_pos": acked,
                "to_pos": self.state.last_position(),
                "acked": {site: self.state.site(site)[1] for site in sites},
                "acked_instances": {s: self.state.get_meta(f"instance:{s}") or "" for s in sites},
                "instance": self.state.instance,
                "checksums": sums,
            },
            key=key,
            created=self.now(),
        )
        exclude = sites[0] if len(sites) == 1 else ""  # a site's own changes stay home
        with writer:
            for table in tables:
                for pos, origin, _kj, row_json in self.state.compacted_changes(
                    table.name, "U", acked, exclude
                ):
                    writer.write_json(table.name, "U", row_json or "[]", origin=origin, pos=pos)
            for table in reversed(tables):
                for pos, origin, kj, _row in self.state.compacted_changes(
                    table.name, "D", acked, exclude
                ):
                    key_values = [
                        from_json(k, v)
                        for k, v in zip(table.key_kinds, json.loads(kj), strict=True)
                    ]
                    writer.write(table.name, "D", key_values, origin=origin, pos=pos)
            return writer.close()

    # -- status -------------------------------------------------------------------------

    def status(self) -> NodeStatus:
        tables, skipped = self.tables()
        result = NodeStatus(skipped=list(skipped))
        ensure_snapshots(self.state, tables)
        for table in tables:
            snap = self.state.snapshot_table(table)
            result.tables.append(
                TableStatus(
                    table.name,
                    table.key,
                    table.key_source,
                    self.adapter.count(table),
                    self.state.snapshot_count(snap),
                )
            )
        result.outbox = [s for s, _ in self.state.outbox()]
        return result

    def pending_changes(self) -> dict[str, dict[str, int]]:
        """Changes a capture would send now, without keeping anything (dry run)."""
        tables = self.tables()[0]
        ensure_snapshots(self.state, tables)
        tmp = self.packages_dir / "dry-run.pkg"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        counts: dict[str, dict[str, int]] = {}
        try:
            with self.state.dry_run():
                writer = PackageWriter(
                    tmp,
                    origin=self.code,
                    sequence=0,
                    kind="local",
                    tables=[TableSchema.of(t) for t in tables],
                    key=None,
                )
                with writer:
                    result = capture(self.adapter, self.state, tables, writer, CaptureOptions())
                    writer.close()
                for name, c in result.counts.items():
                    counts[name] = {
                        "inserts": c.inserts,
                        "updates": c.updates,
                        "deletes": c.deletes,
                    }
        finally:
            tmp.unlink(missing_ok=True)
        return counts


def _link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a complete copy of ``source`` in one step (a hard link when the
    file system allows it, else a copy to a temporary name then a rename)."""
    tmp = target.with_name(target.name + ".part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
