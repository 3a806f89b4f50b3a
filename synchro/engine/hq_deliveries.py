"""The Siège's work on deliveries: its own changes, each establishment's packages applied in
order, and the answers published (``engine.hq_round`` decides when; this is what it does).

``DeliveryWork`` is a part of ``HQService``: its methods use the service's node, reports,
folders and flags (``cancel`` is replaced by the App, so it is read from the service).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synchro import faults
from synchro.engine.events import Emit, Progress, Status, progress, said
from synchro.engine.hq_acks import AckBook, peek_instance
from synchro.engine.hq_files import Delivery, identity, list_deliveries, move_file, remove_old
from synchro.engine.siege_node import SiegeNode
from synchro.errors import (
    ApplyError,
    Cancelled,
    DatabaseError,
    PackageError,
    Say,
    StateError,
    SynchroError,
    TransactionLost,
    error_details,
    error_text,
)
from synchro.i18n import render
from synchro.names import published_glob
from synchro.reports import ReportStore, State
from synchro.state import HELD

TAIL = "tail"  # meta: files a ``sync`` at the Siège left in /in when it ended
KEPT = "le paquet reste au siège et sera intégré de nouveau"
REST_FIRST = dt.timedelta(minutes=1)  # a delivery set aside waits this long outside a round,
REST_MOST = dt.timedelta(hours=1)  # twice as long after each failure, up to this
log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import threading


@dataclass
class RoundSettings:
    servers: int = 1
    max_reception: dt.timedelta = dt.timedelta(hours=4)
    sites: Sequence[str] = ()  # the establishments' codes (accounts)
    ack_wait: dt.timedelta = dt.timedelta(minutes=30)  # for an establishment's ack

    @property
    def awaited(self) -> int:
        """How many establishments a round waits for: « Nombre de serveurs », never more
        than are declared (an establishment without an account cannot deliver: waiting
        for it kept every round open until *Temps maximum de réception*, and every
        establishment waiting for its package as long)."""
        return min(self.servers, len(self.sites))

    def opening(self) -> Status:
        """What a round says when it opens: how many establishments it waits for."""
        if not self.sites:  # a Siège before its first ``synchro site add``: closes at once
            return said("engine.round.open_none")
        if self.awaited < self.servers:  # « Nombre de serveurs » above those declared
            return said("engine.round.open_declared", servers=self.servers, declared=self.awaited)
        return said("engine.round.open", servers=self.servers)


@dataclass
class DeliveryOutcome:
    applied: dict[str, list[int]] = field(default_factory=dict)  # site -> new sequences
    refused: set[str] = field(default_factory=set)  # delivered, but the package was refused
    failed: set[str] = field(default_factory=set)  # delivered, its import failed: set aside


@dataclass
class Resting:
    """A delivery set aside: its import failed for the database's sake, not the package's
    (a transaction the database ended after every try, a full disk, the database gone).
    It stays in ``/in``; a round's close tries it again, outside a round not before
    ``until``; ``pause`` doubles at each failure, up to ``REST_MOST``."""

    until: dt.datetime
    pause: dt.timedelta


class DeliveryWork:
    """Applying deliveries and publishing answers, for ``HQService``."""

    node: SiegeNode
    reports: ReportStore
    ftp_root: Path
    settings: RoundSettings
    emit: Emit
    now: Callable[[], dt.datetime]
    code: str
    cancel: threading.Event
    acks: AckBook
    archive: Path
    rejected: Path
    stuck: dict[Path, Path]
    resting: dict[Path, Resting]
    published: dict[str, str]
    owed: list[str]  # sites whose publication an error cut short

    def _behind(self) -> list[str]:
        """Establishments whose offered package does not acknowledge all that the Siège
        applied of theirs (a publication cut by a crash): published again."""
        state = self.node.state
        return [
            s
            for s in self.settings.sites
            if state.site(s).applied_seq > int(state.get_meta(f"offered_acked:{s}") or 0)
        ]

    def _is_new(self, d: Delivery) -> bool:
        """A delivery that counts for the open round: not applied yet, or applied but never
        answered to the site's knowledge (sent again after the Siège died before its answer
        reached the site). A copy of one the site was served for counts for nothing."""
        applied = self.node.state.site(d.site).applied_seq
        if d.sequence > applied or d.sequence > self.acks.served(d.site):
            return True
        instance = peek_instance(d.path)
        return bool(instance) and instance != self.node.state.get_meta(f"instance:{d.site}")

    def note_tail(self) -> None:
        """A ``sync`` at the Siège ends: what it leaves unprocessed in ``/in`` (it came
        after the round's linger) is that round's tail, not the next round's delivery."""
        tail = [list(identity(d.path)) for d in self.deliveries()]
        with self.node.state.transaction():
            self.node.state.set_meta(TAIL, json.dumps(tail))

    def deliveries(self) -> list[Delivery]:
        """Complete packages waiting in the establishments' upload folders, in order."""
        return list_deliveries(self.ftp_root, self.stuck.keys())

    def ready(self, *, in_round: bool) -> list[Delivery]:
        """The deliveries to process now: at a round's close all of them; outside a round
        not those set aside whose pause has not run out (``Resting``)."""
        found = self.deliveries()
        if in_round or not self.resting:
            return found
        now = self.now()
        return [d for d in found if d.path not in self.resting or self.resting[d.path].until <= now]

    def _process(
        self,
        deliveries: list[Delivery],
        *,
        round_id: int | None,
        publish_all: bool = False,
        rows: dict[str, int] | None = None,
        manual: bool = False,
        send_restored: bool = False,
    ) -> DeliveryOutcome:
        """HQ's own changes, then every delivery in order, then publish. ``rows``: the
        establishments' rows already open in this round (taken over from an interrupted
        one), which the publication serves too; ``manual``: a MANUELLE round's close, where
        mass deletes of the Siège's own database are sent (``capture.mass_deletes``);
        ``send_restored``: its restored database too (Envoyer, ``engine.marks``)."""
        self.emit(progress("capture", self.code, "engine.progress.hq_changes"))
        exported = self.node.export(
            cancel=self.cancel, deletes_confirmed=manual, restore_confirmed=send_restored
        )
        faults.point("hq.exported")
        unapplied = exported.capture.unapplied  # rows of earlier packages, retried in vain
        if exported.capture.held:
            self.emit(said("engine.held.site", site=self.code, count=exported.capture.held))
        keyless = self.node.keyless_tables()
        if round_id is not None and keyless:  # said in every report, never skipped in silence
            self.reports.merge_details(round_id, {"keyless": keyless})
        if round_id is not None and (exported.capture.held or unapplied):
            held = self.node.state.quarantined(HELD)[:200] if exported.capture.held else []
            listed = {"quarantined": held + unapplied[:200], "retried": exported.capture.retried}
            self.reports.merge_details(round_id, listed)
            self.reports.update(round_id, quarantined=exported.capture.held + len(unapplied))
        try:
            outcome = self._serve(deliveries, round_id, publish_all, dict(rows or {}))
        except Cancelled:
            raise
        except Exception:  # what was captured or applied waits for its publication
            self.owed = list(self.settings.sites)  # (publishing again is harmless)
            raise
        if round_id is not None and unapplied:
            self._settled_since(round_id, exported.capture.held, unapplied)
        return outcome

    def _settled_since(self, round_id: int, held: int, unapplied: list[dict[str, Any]]) -> None:
        """Rows of earlier packages that the retry left in the quarantine and a delivery
        of this round settled (a newer version of the key applied exactly: A's order
        refused for want of its client, then A's delete of it): the round counts what is
        still there at its close. Before, it said « 1 ligne non appliquée », Echec, for a
        row no longer waiting (``soak_live`` seed 7087)."""
        waiting = {entry["id"] for entry in self.node.state.pending()}
        still = [entry for entry in unapplied if entry["id"] in waiting]
        if len(still) == len(unapplied):
            return
        kept = self.node.state.quarantined(HELD)[:200] if held else []
        self.reports.merge_details(round_id, {"quarantined": kept + still[:200]})
        self.reports.update(round_id, quarantined=held + len(still))

    def _serve(
        self,
        deliveries: list[Delivery],
        round_id: int | None,
        publish_all: bool,
        rows: dict[str, int],
    ) -> DeliveryOutcome:
        """``_process`` once the Siège's own changes are captured: every delivery applied
        in order, then the publication."""
        outcome = DeliveryOutcome()
        handled: set[Path] = set()
        while batch := [d for d in deliveries if d.path not in handled]:
            for d in batch:
                handled.add(d.path)
                self._apply_one(d, rows, round_id, outcome)
            deliveries = self.ready(in_round=round_id is not None)  # a site sending several
        targets = list(self.settings.sites) if publish_all else []
        targets += [s for s in [*outcome.applied, *self._behind()] if s not in targets]
        self._publish(targets, rows)
        faults.point("hq.report.sites")
        until = self.now() + self.settings.ack_wait
        for site, rid in rows.items():
            awaited = {a.rid for a in self.acks.awaited(site)}
            if rid not in awaited and self.reports.get(rid).state is State.RUNNING:
                self.acks.expect(site, rid, self.node.state.site(site).out_seq, until)  # then OK
        return outcome

    def _apply_one(
        self, d: Delivery, rows: dict[str, int], round_id: int | None, outcome: DeliveryOutcome
    ) -> None:
        """Apply one delivery; its establishment's report row is opened by the first one
        applied or refused (a re-sent duplicate or one still waiting opens none)."""
        self.emit(Progress("apply", d.site, detail=d.path.name))
        faults.point("hq.apply.before")
        started = self.now()

        def row() -> int:
            if d.site not in rows:
                rows[d.site] = self.reports.start(
                    d.site, "site-in-round", round_id=round_id, now=started
                )
            return rows[d.site]

        try:
            result = self.node.import_package(
                d.path,
                cancel=self.cancel,
                progress=lambda table, n: self.emit(Progress("apply", d.site, n, 0, table)),
            )
        except (PackageError, ApplyError) as exc:
            self._move(d, self.rejected)
            outcome.refused.add(d.site)
            self.reports.finish(row(), State.FAILED, now=self.now(), error=exc)
            self.emit(said("engine.package.refused", site=d.site, error=exc))
            return
        except (DatabaseError, TransactionLost, StateError) as exc:
            first = d.path not in self.resting
            self._set_aside(d, exc, outcome)
            if round_id is not None or first:  # outside a round said once, not at each try
                say = kept_words(exc)
                text = render(say, "fr")  # the error, then KEPT
                kept = {**error_details(exc), "error_say": list(say), "kept": d.path.name}
                self.reports.finish(row(), State.FAILED, now=self.now(), error=text, details=kept)
            return
        self.resting.pop(d.path, None)
        if result.status == "waiting":
            return
        size = d.path.stat().st_size
        faults.point("hq.apply.before_archive")
        self._move(d, self.archive)
        if result.status != "applied":  # re-sent after a crash: already applied once
            self.emit(said("engine.package.duplicate", site=d.site, sequence=d.sequence))
            if round_id is not None and d.sequence > self.acks.served(d.site):
                row()  # never answered to the site's knowledge: this round serves it
                outcome.applied.setdefault(d.site, []).append(d.sequence)
            return
        if result.status == "applied":
            s = result.stats
            package_id = f"{result.manifest.origin}#{result.manifest.sequence}"
            rid = row()
            record = self.reports.get(rid)
            details = dict(record.details)
            conflicts = self.node.state.conflicts(package_id)
            quarantined = self.node.state.quarantined(package_id)
            if conflicts:
                details.setdefault("conflicts", []).extend(conflicts[:200])
            if quarantined:
                details.setdefault("quarantined", []).extend(quarantined[:200])
            if result.attempts > 1:  # made again after the database ended its transaction
                details["attempts"] = result.attempts
            self.reports.merge_details(rid, details)
            self.reports.update(
                rid,
                rows_received=record.rows_received + s.rows,
                bytes_received=record.bytes_received + size,
                conflicts=record.conflicts + s.conflicts,
                quarantined=record.quarantined + s.quarantined,
            )
        outcome.applied.setdefault(d.site, []).append(d.sequence)
        faults.point("hq.apply.done")
        self.emit(said("engine.package.applied", site=d.site, sequence=d.sequence))

    def _set_aside(self, d: Delivery, exc: Exception, outcome: DeliveryOutcome) -> None:
        """The import of ``d`` failed, not for its package: the other deliveries are
        applied and published all the same (one establishment's trouble no longer fails
        the round of the whole group); ``d`` stays in ``/in`` and is tried again."""
        before = self.resting.get(d.path)
        pause = REST_FIRST if before is None else min(before.pause * 2, REST_MOST)
        self.resting[d.path] = Resting(self.now() + pause, pause)
        outcome.failed.add(d.site)
        log.warning("%s : %s ; nouvel essai dans %s", d.path.name, exc, pause)
        self.emit(said("engine.package.kept", site=d.site, error=exc))

    def _move(self, d: Delivery, folder: Path) -> None:
        if not move_file(d.path, folder / d.site):
            self.stuck[d.path] = folder / d.site  # not offered again; moved on a later step

    def _out(self, site: str) -> Path:
        return self.ftp_root / site / "out"

    def _offer(self, site: str, final: Path) -> None:
        """``final`` is now the one package offered to ``site``: the older ones go."""
        for old in final.parent.glob(published_glob(site)):
            if old.name != final.name:
                remove_old(old)
        self.published[site] = final.name

    def finish_publications(self) -> None:
        """Once, at the first step: a publication a crash cut after the Siège recorded it
        is put in the site's folder (``SiegeNode.finish_publications``)."""
        for site, final in self.node.finish_publications(self.settings.sites, self._out).items():
            self._offer(site, final)
            self.emit(said("engine.publish.finished", site=site, package=final.name))

    def _publish(self, sites: list[str], rows: dict[str, int]) -> None:
        """One package per establishment (without its own changes), in its ``out``."""
        if not sites:
            return
        self.emit(progress("publish", self.code, "engine.progress.sites", count=len(sites)))
        faults.point("hq.publish.before")
        published = self.node.publish_group(sites, self._out)
        for site, (final, manifest) in published.items():
            self._offer(site, final)
            faults.point("hq.publish.site")
            size = final.stat().st_size
            rid = rows.get(site)
            if rid is not None:
                record = self.reports.get(rid)
                self.reports.update(
                    rid,
                    bytes_sent=record.bytes_sent + size,
                    rows_sent=record.rows_sent + manifest.rows,
                )
            self.emit(Progress("publish", site, manifest.rows, size, final.name))


def kept_words(exc: BaseException) -> Say:
    """A delivery set aside: its error (in its own words where it gave them), then that
    the package stays at the Siège (``KEPT``, the French of ``engine.package.kept_reason``)."""
    said = getattr(exc, "say", None)
    error: list[Say] | str = [said] if isinstance(exc, SynchroError) and said else error_text(exc)
    return ("engine.package.kept_reason", {"error": error})
