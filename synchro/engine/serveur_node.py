"""A Serveur (an establishment): its packages wait in the outbox until the Siège
acknowledges them, and it applies the Siège's packages in order.

What the Serveur keeps in its state besides the shared parts (``engine.node``):

- ``outbox``: its packages the Siège has not acknowledged yet (sent again at every run);
- ``hq_pos`` / ``hq_instance``: the Siège's change-log position it has received, and of
  which life of the Siège;
- ``LAST_HQ`` / ``ACK_DUE``: the Siège package applied last, and whether its
  acknowledgement is still owed (``engine.ack``, ``engine.site_run``);
- ``TAKE_BACK``: set while it takes the group's data back (``take_back``); ``UNSENT``: the
  rows made here that the group's data did not hold, until the next capture sends them;
  ``BEHIND``: this state was found put back (``marks.StateBehind``) until it takes back;
  ``twins.TWIN``: another machine sends under this code (``twins.SentByAnother``) until a
  person settles it here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from synchro import faults
from synchro.capture.diff import CaptureResult
from synchro.db.base import Table
from synchro.engine import marks, resend, twins
from synchro.engine.apply_rows import ApplyContext
from synchro.engine.marks import StateBehind
from synchro.engine.node import Node
from synchro.engine.node_results import Admission, ExportResult, ImportResult
from synchro.engine.policy import SERVEUR_POLICY, ApplyPolicy
from synchro.engine.take_back import adopt, forget_unmentioned, raise_mark
from synchro.errors import PackageError
from synchro.package import Manifest, PackageReader

LAST_HQ = "last_hq"  # the Siège package applied last (what the ack names), JSON
ACK_DUE = "ack_due"  # "1" until the Siège has been sent the ack of LAST_HQ
TAKE_BACK = "take_back"  # "1" from ``take_back`` until the Siège's package of everything
UNSENT = "unsent"  # rows made here the group's data taken back did not hold, until sent
BEHIND = "behind"  # "<applied> <made>": this state was put back (``marks.StateBehind``)


class ServeurNode(Node):
    """An establishment's node (Mode serveur)."""

    policy: ClassVar[ApplyPolicy] = SERVEUR_POLICY
    export_kind: ClassVar[str] = "site"
    default_code: ClassVar[str] = "SITE"

    # -- taking the group's data back ---------------------------------------------------

    def take_back(self) -> None:
        """*Reprendre les données du groupe*, after a restore (``engine.marks``): the
        database as it is now becomes this node's starting point — nothing of its
        difference with the last synchronisation is sent — and the Siège is asked for every
        row of the group again, this establishment's own included (those the restore took
        away): the next package says so (``take_back``) and the Siège answers from the
        start of its change log. Applied over the restored rows, the group's versions win
        (nothing changed here since this starting point). When the state was put back
        with the database (``marks.StateBehind``, the marks in step), the kept packages go
        again under new numbers instead (``resend.renumber``), as for two machines.

        The mark is raised last, in a transaction of its own: a crash before leaves the
        database still behind, so an automatic run holds instead of sending the restored
        copy (the snapshot may already be its, which sends nothing of it either)."""

        if twins.held(self):  # another machine sent under this code: ours go again first
            twins.send_again(self, self._ask_for_everything)
            return
        behind = self.state.get_meta(BEHIND)
        in_step = marks.in_step(self.adapter, self.state, self.code)
        if behind is not None and in_step:
            # The whole machine put back, its database with its state: the snapshot is the
            # image's, so what changed here since is told from it — captured in the kept
            # packages, or by the next capture — and sent under new numbers, not adopted
            # (adopting gave every row changed here since the group's version).
            resend.renumber(self, int(behind.split()[0]) + 1, self._ask_for_everything)
            return
        if not self.taking_back() and behind is None and in_step:
            raise marks.nothing_to_take_back()

        forgotten: list[Path] = []

        def adopted() -> None:
            """A state put back (``BEHIND``) drops the packages it made under numbers the
            Siège had already taken from its lost self: their rows are in the adopted
            database, and those the group's data do not hold are sent after
            (``forget_unmentioned``); their files go once this is committed."""
            behind = self.state.get_meta(BEHIND)
            if behind is not None:
                forgotten.extend(self.state.ack_outbox(int(behind.split()[0])))
            self._ask_for_everything()

        adopt(self, adopted)
        for path in forgotten:
            path.unlink(missing_ok=True)
        faults.point("node.take_back.adopted")
        raise_mark(self)

    def sends_again(self) -> bool:
        """Whether this node holds with packages to send again under new numbers, which
        MANUELLE's Envoyer does (``take_back``): another machine sent under its code, or
        the whole machine was put back (its database in step with its state)."""
        if twins.held(self):
            return True
        behind = self.state.get_meta(BEHIND) is not None
        return behind and marks.in_step(self.adapter, self.state, self.code)

    def _ask_for_everything(self) -> None:
        """The next package asks the Siège for every row (in the caller's transaction)."""
        self.state.set_meta("hq_pos", "0")
        self.state.set_meta(TAKE_BACK, "1")
        self.state.drop_meta(BEHIND)

    def taking_back(self) -> bool:
        return self.state.get_meta(TAKE_BACK) is not None

    # -- export -------------------------------------------------------------------------

    def export(self, *args: Any, **kwargs: Any) -> ExportResult:
        """Nothing captured nor sent while another machine sends under this code, or while
        this state is found put back: a package numbered now would reach the Siège before
        the older ones its way out sends again, and their older versions would win."""
        twins.hold_export(self)
        behind = self.state.get_meta(BEHIND)
        if behind is not None:
            applied, made = (int(n) for n in behind.split())
            raise StateBehind(applied, made)
        return super().export(*args, **kwargs)

    def _export_meta(self) -> dict[str, Any]:
        return {"take_back": True} if self.taking_back() else {}

    def _nothing_new(self, manifest: Manifest, result: CaptureResult, out: Path | None) -> bool:
        """An empty capture while packages the Siège has not acknowledged wait: re-sending
        those is enough, and a new sequence would make the Siège's answer to them look
        stale."""
        if out is not None or manifest.rows or result.held or self.taking_back():
            return False
        return bool(self.state.outbox())

    def _keep_export(self, path: Path, tables: list[Table], manifest: Manifest) -> None:
        """The package waits in the outbox until the Siège acknowledges it."""
        self.state.add_outbox(manifest.sequence, path, manifest.rows)
        self.state.drop_meta(UNSENT)

    def _exported(self, path: Path) -> None:
        """Nothing more: the package stays in the outbox until the Siège acknowledges it."""

    # -- import -------------------------------------------------------------------------

    def _admit(self, path: Path, manifest: Manifest) -> ImportResult | Admission:
        """A Siège package is taken when it starts where this Serveur's copy of the change
        log ends, and answers this Serveur's newest delivery."""
        if manifest.kind != "hq":
            return Admission()
        applied, made = self.acked_seq(manifest), self.state.get_int("next_sequence", 1) - 1
        # A state put back: never reuse the numbers it forgot. (Not while it holds as one of
        # two machines: the other's numbers ahead of ours are that, said by ``notice``.)
        if applied > made and not twins.held(self):  # (those the Siège holds as they are:
            same, _other = twins.compared(self, manifest, applied)  # acknowledged)
            meta = {"next_sequence": str(applied + 1), BEHIND: f"{applied} {made}"}
            twins.hold(self, same, meta)
        behind = self.state.get_meta(BEHIND)
        if behind is not None:  # until the group's data are taken back
            applied, made = (int(n) for n in behind.split())
            raise StateBehind(applied, made)
        # Not put back, but one of its numbers holds another package at the Siège: a
        # second machine sends under this code (checked before the outbox is dropped).
        twins.notice(self, manifest, applied)
        if self.taking_back() and not manifest.meta.get("take_back"):  # made before the
            # Siège saw the request: its answer is the one awaited
            return ImportResult.held(manifest, "stale", ("engine.import.not_sent_back", {}))
        hq_pos = self.state.get_int("hq_pos")
        if int(manifest.meta.get("from_pos", 0)) > hq_pos:
            gap = {"position": hq_pos, "start": manifest.meta.get("from_pos")}
            raise PackageError(str(path), say=("engine.pkg.gap", gap))
        newest = max((s.sequence for s in self.state.outbox()), default=0)
        if self.acked_seq(manifest) < newest:
            return ImportResult.held(manifest, "stale", ("engine.wait.unapplied", {}))
        if self.taking_back():  # everything, our own rows included
            return Admission()
        # Packages hold no change of ours any more (issue 15); one an older Siège
        # published ("shared" by sites in step) did: those are skipped still.
        return Admission(skip_pos=hq_pos, skip_origin=self.code)

    def _new_life(self, manifest: Manifest) -> None:
        """Nothing more: what it knew of the Siège's old life is forgotten (``Node``)."""

    def acked_seq(self, manifest: Manifest) -> int:
        """The last of our packages the Siège had applied when it published —
        0 when those were packages of an earlier life of this site (a lost state starts
        its sequence again: the old numbers acknowledge nothing of the new ones)."""
        lives = manifest.meta.get("acked_instances")
        if isinstance(lives, dict) and str(lives.get(self.code, "")) != self.state.instance:
            return 0
        acked = manifest.meta.get("acked")
        if isinstance(acked, dict) and self.code in acked:
            return int(acked[self.code])
        return int(manifest.meta.get("acked_seq", 0))

    def _after_apply(self, reader: PackageReader, ctx: ApplyContext) -> None:
        """A Siège package: its position, the outbox it acknowledged, the ack now owed."""
        manifest = reader.manifest
        if manifest.kind != "hq":
            return
        self.state.set_meta("hq_pos", str(int(manifest.meta.get("to_pos", 0))))
        if manifest.meta.get("take_back") and self.taking_back():  # everything came
            unsent = forget_unmentioned(self, reader, ctx)  # rows the group never had
            if unsent:
                self.state.set_meta(UNSENT, str(unsent))  # sent by the next capture
            self.state.drop_meta(TAKE_BACK)
        self.state.set_meta("hq_instance", str(manifest.meta.get("instance", "")))
        for old in self.state.ack_outbox(self.acked_seq(manifest)):
            old.unlink(missing_ok=True)
        # What the acknowledgement will name (sent after the apply, even after a crash).
        last = {
            "origin": manifest.origin,
            "sequence": manifest.sequence,
            "to_pos": int(manifest.meta.get("to_pos", 0)),
            "instance": str(manifest.meta.get("instance", "")),
            "checksums": manifest.meta.get("checksums") or {},
            "agreed": manifest.meta.get("agreed") or {},
        }
        self.state.set_meta(LAST_HQ, json.dumps(last))
        self.state.set_meta(ACK_DUE, "1")
