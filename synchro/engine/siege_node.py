"""The Siège: every change it applies goes into its change log, and it publishes to each
establishment what that one has not received yet.

What the Siège keeps in its state besides the shared parts (``engine.node``):

- ``changelog``: every change applied here, its own included, in order, with its origin;
- ``sites``: per establishment, the change-log position it acknowledged, its last package
  applied here and the Siège's last package published to it;
- ``key:<site>``: the group key the site last sent with (its answer is sealed with it);
- ``sums:<seq>`` / ``answered:<seq>``: per published package, the Siège's checksums then
  and the site package it answered (``engine.hq_acks`` compares an ack with them);
- ``take_back:<site>``: a site taking the group's data back (``ServeurNode.take_back``):
  "0" until a package of everything, its own rows included, is published to it, then that
  package's number until the site acknowledges it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, NamedTuple

from synchro import faults
from synchro.db.base import Table
from synchro.engine import marks
from synchro.engine.apply_rows import ApplyContext, ApplyStats
from synchro.engine.checksum import Sums, sums_from_json
from synchro.engine.checksum import to_json as sums_to_json
from synchro.engine.hq_publish import build_segments
from synchro.engine.node import Node
from synchro.engine.node_results import DUPLICATE, Admission, ImportResult
from synchro.engine.policy import SIEGE_POLICY, ApplyPolicy
from synchro.engine.take_back import adopt, rebuild
from synchro.engine.twins import ACKED_NAMED
from synchro.engine.watermark import remember_differing
from synchro.errors import PackageError
from synchro.names import package_glob, package_name, published_name
from synchro.package import Manifest, PackageReader, PackageWriter, TableSchema, open_package
from synchro.package.body import Segment, SegmentStore, segments_for
from synchro.state import ChangeLogEntry, key_json, snap_value
from synchro.values import carried_form_is_normal, json_text_encoder, to_json


def take_back_key(site: str) -> str:
    """The Siège's state entry of a site taking the group's data back."""
    return f"take_back:{site}"


class Published(NamedTuple):
    """A package published to one establishment: where it is offered, and its manifest."""

    path: Path
    manifest: Manifest


class SiegeNode(Node):
    """The Siège's node (Mode siège)."""

    policy: ClassVar[ApplyPolicy] = SIEGE_POLICY
    export_kind: ClassVar[str] = "local"
    default_code: ClassVar[str] = "SIEGE"

    def take_back(self) -> ApplyStats:
        """*Reprendre les données du groupe* after a restore (``engine.marks``): the last
        version of every row the group exchanged, from its change log, applied to its
        restored database (``engine.take_back.rebuild``); nothing of the restored copy is
        logged or published. A crash before the mark is raised leaves the round held."""
        if marks.in_step(self.adapter, self.state, self.code):
            raise marks.nothing_to_take_back()
        tables = adopt(self)
        faults.point("node.take_back.adopted")
        return rebuild(self, tables)

    # -- export -------------------------------------------------------------------------

    def _keep_export(self, path: Path, tables: list[Table], manifest: Manifest) -> None:
        """Its own changes go into the change log (origin = the Siège), applied here."""
        self._log_local(path, tables)
        self.state.mark_applied(self.code, manifest.sequence, manifest.kind, manifest.rows)

    def _exported(self, path: Path) -> None:
        path.unlink(missing_ok=True)  # the change log holds it now

    def _log_local(self, path: Path, tables: list[Table]) -> None:
        by_name = {t.name: t for t in tables}
        batch: list[ChangeLogEntry] = []
        carried = {t.name: carried_form_is_normal(t.kinds) for t in tables}
        text = json_text_encoder()
        for change in open_package(path, self.keys()).changes():
            table = by_name[change.table]
            if change.op == "U":
                row = change.values
                key = [row[p] for p in table.key_positions]
                form = change.sent  # the package is this Siège's own, in its column order
                if form is None or not carried[table.name]:
                    form = [to_json(k, v) for k, v in zip(table.kinds, row, strict=True)]
                row_json: str | None = text(form)
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

    def _admit(self, path: Path, manifest: Manifest) -> ImportResult | Admission:
        """An establishment's packages only, each in its sequence order."""
        if manifest.kind != "site":
            raise PackageError(str(path), say=("engine.pkg.not_site", {"kind": manifest.kind}))
        applied_seq = self.state.site(manifest.origin).applied_seq
        marks.siege_forgot(path, manifest, applied_seq)  # a Siège put back says so
        if manifest.sequence > applied_seq + 1:
            missing = {"sequence": applied_seq + 1, "origin": manifest.origin}
            return ImportResult.held(manifest, "waiting", ("engine.import.missing", missing))
        if manifest.sequence <= applied_seq:
            return ImportResult.held(manifest, "duplicate", DUPLICATE)
        return Admission(base_pos=self._base_pos(manifest))

    def _base_pos(self, manifest: Manifest) -> int:
        """The change-log position the sender had received — only if it is a position of
        this Siège's log (not of a previous life of it)."""
        if str(manifest.meta.get("base_instance", "")) != self.state.instance:
            return 0
        return int(manifest.meta.get("base_pos", 0))

    def _new_life(self, manifest: Manifest) -> None:
        """First contact with this life of the site (a new site, or the Siège's own state
        was lost): its sequence starts at its oldest unacknowledged package (which may
        arrive after a newer one), and it receives all."""
        first = int(manifest.meta.get("first_unacked", manifest.sequence))
        out_seq = self.state.site(manifest.origin).out_seq
        self.state.set_site(manifest.origin, 0, max(0, first - 1), out_seq)

    def _after_apply(self, reader: PackageReader, ctx: ApplyContext) -> None:
        """The key the site used, what it had received, its last package applied."""
        manifest = reader.manifest
        self.state.set_meta(f"key:{manifest.origin}", manifest.key_id)
        site = self.state.site(manifest.origin)
        acked = max(site.acked_pos, self._base_pos(manifest))
        if manifest.meta.get("take_back"):  # it asks for everything again
            acked = 0
            self.state.set_meta(take_back_key(manifest.origin), "0")
        self.state.set_site(manifest.origin, acked, manifest.sequence, site.out_seq)

    def acked_after(self, site: str, acked: int, sequence: int, to_pos: int) -> int:
        """The position ``site`` holds once it acknowledged package ``sequence`` (up to
        ``to_pos``). While it takes the group's data back, only the acknowledgement of a
        package that carried everything counts (an older one in flight would skip it): the
        last one published, or one published before it that answered the same delivery of
        the site — a Siège started again publishes it again, everything again, while the
        site's acknowledgement of the first copy may still be on its way."""
        asked = self.state.get_meta(take_back_key(site))
        if asked is None:
            return max(acked, to_pos)
        if int(asked) and (sequence >= int(asked) or self._same_answer(site, sequence, int(asked))):
            self.state.drop_meta(take_back_key(site))
            return to_pos
        return acked

    def _same_answer(self, site: str, sequence: int, later: int) -> bool:
        """Package ``sequence`` answered the delivery of ``site`` that package ``later``
        answered, or a later one (packages answering a delivery are published after it)."""
        answered = self.answered(sequence, site)
        return 0 < self.answered(later, site) <= answered

    # -- outgoing packages --------------------------------------------------------------

    def publish(self, site: str, out_dir: Path) -> Published:
        """The package of every change ``site`` has not received yet, in ``out_dir``."""
        return self.publish_group([site], lambda _site: out_dir)[site]

    def publish_group(
        self, sites: Sequence[str], folder_of: Callable[[str], Path]
    ) -> dict[str, Published]:
        """Publish to several establishments at once, one package each.

        A site's package holds every change after the position it acknowledged except
        those that came from the site itself (issue 15: a package "shared" by the sites in
        step carried each site's own rows back to it, twice the transfer). A change of the
        site's that the Siège did not keep as it was — it lost a conflict, was quarantined
        or changed since by anyone, the Siège included — is not the last version of its key
        in the log, so the winning version goes to the site. The checksums are computed
        once for all (the proof the sites compare with), and so are the changes: read and
        encoded once per acknowledged position, one segment per run of an origin's changes
        (``engine.hq_publish``); a site's package is the others' segments compressed, so
        the Siège's work per package is little more than compressing its bytes.
        """
        staging = self.packages_dir / "publish"
        staging.mkdir(parents=True, exist_ok=True)
        published: dict[str, Published] = {}
        sums = sums_to_json(self.checksums()) if sites else {}
        agreed = sums_to_json(self.agreed_sums()) if sites else {}
        if sites:  # changes made here since the capture: that capture reads them whole
            with self.state.transaction():
                remember_differing(self.state, [t for t in sums if sums[t] != agreed.get(t)])
        with SegmentStore(staging / "segments.tmp") as store:
            made: dict[int, list[Segment]] = {}  # by acknowledged position
            for site in sites:
                acked = self.state.site(site).acked_pos
                if acked not in made:
                    made[acked] = build_segments(self.state, self.tables().synced, acked, store)
                    faults.point("node.publish.segments")
                published[site] = self._publish_one(
                    site, folder_of(site), staging, (sums, agreed), made[acked], store
                )
        if sites:
            with self.state.transaction():  # the superseded changes are no answer any more
                self.state.compact()
                faults.point("node.publish.compacting")  # dropped, not yet committed
        return published

    def _publish_one(
        self,
        site: str,
        folder: Path,
        staging: Path,
        proof: tuple[dict[str, list[object]], dict[str, list[object]]],
        segments: list[Segment],
        store: SegmentStore,
    ) -> Published:
        """One establishment's package: the segments of every origin but its own (all of
        them for a site taking the group's data back); ``proof``: the Siège's checksums and
        agreed sums (JSON form), sent with it."""
        sums, agreed = proof
        acked = self.state.site(site).acked_pos
        everything = self.state.get_meta(take_back_key(site)) is not None
        with self.state.transaction():
            sequence = self.state.get_int("out_seq") + 1
            self.state.set_meta("out_seq", str(sequence))
        staged = staging / package_name(self.code, sequence)
        with self._published_writer(staged, sequence, acked, site, proof, everything) as writer:
            for segment in segments if everything else segments_for(segments, site):
                writer.splice(segment, store.read(segment))
            manifest = writer.close()
        faults.point("node.publish.written")
        # Recorded before the site can see it: a package the site may download is always
        # one the Siège knows it offered (its checksums, what it answers), so a crash
        # between the two never leaves the site acknowledging a package the Siège cannot
        # check while it waits for another. A crash after this and before the link is
        # finished by ``finish_publications`` at the next start.
        with self.state.transaction():
            now = self.state.site(site)
            applied = now.applied_seq
            self.state.remember_publication(sequence, sums, site, applied, agreed)
            self.state.set_site(site, now.acked_pos, applied, sequence)
            self.state.set_meta(f"offered_acked:{site}", str(applied))
            if everything:
                self.state.set_meta(take_back_key(site), str(sequence))
            # Drop the checksums and answers of packages no site can still acknowledge
            # (each site is offered only its newest; the 20 publications before it, to
            # every site, are kept for acks in flight: one package per site).
            self.state.forget_old_publications(keep=20)
        faults.point("node.publish.recorded")
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / published_name(self.code, site, sequence)
        _link_or_copy(staged, final)
        faults.point("node.publish.linked")
        staged.unlink(missing_ok=True)
        return Published(final, manifest)

    def finish_publications(
        self, sites: Sequence[str], folder_of: Callable[[str], Path]
    ) -> dict[str, Path]:
        """At a start: the packages recorded as offered that a crash kept from their site's
        folder are put there now (site -> package); packages written but never recorded
        (the crash came first) are deleted: the site is published to again, as behind."""
        staging = self.packages_dir / "publish"
        if not staging.is_dir():
            return {}
        finished: dict[str, Path] = {}
        for site in sites:
            sequence = self.state.site(site).out_seq
            staged = staging / package_name(self.code, sequence)
            if not sequence or not staged.exists():
                continue
            final = folder_of(site) / published_name(self.code, site, sequence)
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(staged, final)
                finished[site] = final
            staged.unlink()
        for leftover in staging.glob(package_glob(self.code)):
            leftover.unlink(missing_ok=True)
        return finished

    def _copy_seen(self, site: str) -> dict[str, object]:
        """A package of ``site`` refused lately as another machine's
        (``marks.same_as_applied``): named, so the machine that sends under the code is told
        another one does too (``copy_seen``)."""
        seen = marks.copy_seen(self.state, site, self.now())
        return {"copy_seen": {site: seen}} if seen else {}

    def _key_for(self, site: str) -> bytes | None:
        """Answer a site with the key it last sent with, while that key is valid."""
        from synchro.package.crypto import key_id

        used = self.state.get_meta(f"key:{site}")
        for key in self.keys():
            if key_id(key) == used:
                return key
        return self.key

    def _published_writer(
        self,
        path: Path,
        sequence: int,
        acked: int,
        site: str,
        proof: tuple[dict[str, list[object]], dict[str, list[object]]],
        everything: bool,
    ) -> PackageWriter:
        applied = self.state.site(site).applied_seq
        return PackageWriter(
            path,
            origin=self.code,
            sequence=sequence,
            kind="hq",
            tables=[TableSchema.of(t) for t in self.tables().synced],
            meta={
                "from_pos": acked,
                "to_pos": self.state.last_position(),
                "acked": {site: applied},
                "acked_digests": {site: self.state.applied_digests(site, applied, ACKED_NAMED)},
                "acked_instances": {site: self.state.get_meta(f"instance:{site}") or ""},
                "instance": self.state.instance,
                "checksums": proof[0],
                "agreed": proof[1],
                **({"take_back": True} if everything else {}),
                **self._copy_seen(site),
            },
            key=self._key_for(site),
            created=self.now(),
        )

    # -- what an ack is checked against -----------------------------------------------------

    def published_sums(self, sequence: int) -> Sums | None:
        """Its checksums when it published package ``sequence`` (None: unknown)."""
        data = self.state.publication_sums(sequence)
        return sums_from_json(data) if data is not None else None

    def published_agreed(self, sequence: int) -> Sums | None:
        """Its agreed sums when it published package ``sequence`` (None: unknown)."""
        data = self.state.publication_agreed(sequence)
        return sums_from_json(data) if data is not None else None

    def answered(self, sequence: int, site: str) -> int:
        """The last package of ``site`` its package ``sequence`` answered (0: none)."""
        return self.state.publication_answered(sequence, site)


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
