"""The Siège's rounds.

The FTP server stays up; establishments drop packages in ``<ftp_root>/<site>/in``.

- A round opens at *Heure de départ* (or MANUELLE). It counts the distinct establishments
  that delivered since the previous round closed, and closes when all *Nombre de serveurs*
  have, or when *Temps maximum de réception* has run out (RAZ restarts that counter).
- At the close, the Siège captures its own changes, applies the waiting packages in a
  deterministic order (site code, then sequence), publishes to every establishment the
  package of what it has not received yet, and writes one report row per establishment
  (a missing one is ``Echec`` — "aucune donnée reçue").
- Outside a round (a site early or late), a delivery is processed at once the same way,
  so no establishment waits a day for nothing.
- ARRETER closes an open round as ``Arrêt`` without applying anything (the packages wait
  for the next round); an apply in progress is rolled back whole.

``step()`` does one unit of work synchronously (tests call it with an injected clock);
``run()`` loops on it in the service's worker thread, the only thread that touches the Node.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synchro import faults
from synchro.capture.diff import HELD
from synchro.config.atomic import atomic_write
from synchro.engine.events import Emit, Progress, StateChanged, ignore, said
from synchro.engine.node import Node
from synchro.errors import ApplyError, Cancelled, PackageError, SynchroError
from synchro.reports import ReportStore, RunRecord, State

NO_DATA = "aucune donnée reçue"
ROUND_FILE = "tour.json"  # in each /<site>/out: is a round open, until when (UTC)
RETRY_AFTER = dt.timedelta(minutes=1)  # after an unexpected error, before trying again
log = logging.getLogger(__name__)
_NAME = re.compile(r"^(?P<site>[A-Za-z0-9_-]+)-(?P<seq>\d{8})\.pkg$")


@dataclass
class OpenRound:
    report_id: int
    opened: dt.datetime
    deadline: dt.datetime
    manual: bool


@dataclass
class RoundSettings:
    servers: int = 1
    max_reception: dt.timedelta = dt.timedelta(hours=4)
    sites: Sequence[str] = ()  # the establishments' codes (accounts)


@dataclass(frozen=True)
class Delivery:
    site: str
    sequence: int
    path: Path


@dataclass
class _Outcome:
    applied: dict[str, list[int]] = field(default_factory=dict)  # site -> report rows


class HQService:
    def __init__(
        self,
        node: Node,
        reports: ReportStore,
        ftp_root: Path,
        settings: RoundSettings,
        *,
        emit: Emit = ignore,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        on_round_closed: Callable[[RunRecord], None] | None = None,
        security_events: Callable[[], list[object]] | None = None,
    ) -> None:
        self.node, self.reports, self.ftp_root, self.settings = node, reports, ftp_root, settings
        self.emit, self.now = emit, now
        self.on_round_closed = on_round_closed
        self.security_events = security_events
        self.code = node.code
        self.round: OpenRound | None = None
        self.cancel = threading.Event()
        self.commands: queue.Queue[str] = queue.Queue()
        self.last_round: RunRecord | None = None
        self.archive = node.packages_dir / "archive"
        self.paused_until: dt.datetime | None = None  # set by an unexpected error
        self.owed: list[str] = []  # sites whose publication an error cut short
        self.stuck: dict[Path, Path] = {}  # handled deliveries Windows would not let us move
        self.published: dict[str, str] = {}  # site -> name of the package now offered to it
        self.rejected = node.packages_dir / "rejected"

    # -- commands (any thread) ------------------------------------------------------------

    def open_round(self) -> None:
        self.commands.put("open")

    def raz(self) -> None:
        self.commands.put("raz")

    def stop(self) -> None:
        """ARRETER: interrupt an apply at once, close the round as ``Arrêt``."""
        self.cancel.set()
        self.commands.put("stop")

    def wake(self, *_: object) -> None:
        """Called by the FTP server when an upload completes (it only enqueues)."""
        self.commands.put("wake")

    # -- worker -------------------------------------------------------------------------

    def run(self, stop: threading.Event, tick_s: float = 0.5) -> None:
        while not stop.is_set():
            try:
                command = self.commands.get(timeout=tick_s)
            except queue.Empty:
                command = ""
            self.step(command)
            while not self.commands.empty():
                self.step(self.commands.get_nowait())

    def step(self, command: str = "") -> None:
        """One unit of work. An unexpected error (a bug, a full disk, a file Windows keeps
        locked) never kills the service: the round it was closing ends ``Echec`` with the
        reason, and waiting deliveries are tried again a minute later (or on a command)."""
        try:
            self._step(command)
        except Exception as exc:
            log.exception("Erreur pendant le tour du siège")
            self.paused_until = self.now() + RETRY_AFTER
            self.owed = list(self.settings.sites)  # publishing again is harmless
            self.emit(said("engine.hq.error", error=repr(exc)))

    def _step(self, command: str) -> None:
        now = self.now()
        if command:
            self.paused_until = None
        if command == "open" and self.round is None:
            self._open(now, manual=True)
        elif command == "open-scheduled" and self.round is None:
            self._open(now, manual=False)
        elif command == "raz" and self.round is not None:
            self.round.deadline = now + self.settings.max_reception
            self._announce()
            self.emit(said("engine.raz"))
        elif command == "stop":
            self.cancel.clear()
            if self.round is not None:
                self._close(State.STOPPED, "Synchronisation arrêtée par l'utilisateur.")
            return
        if self.paused_until is not None and now < self.paused_until:
            return
        for path, folder in list(self.stuck.items()):
            if _move_file(path, folder):
                del self.stuck[path]
        if self.owed and self.round is None:
            self._publish(self.owed, {})
            self.owed = []
        pending = self.deliveries()
        if self.round is None:
            if pending:
                self._process(pending, round_id=None)
            return
        delivered = self.since_close() | {d.site for d in pending}
        if len(delivered) >= self.settings.servers or now >= self.round.deadline:
            self._close(State.OK, "")

    # -- rounds -------------------------------------------------------------------------

    def _open(self, now: dt.datetime, *, manual: bool) -> None:
        rid = self.reports.start(self.code, "round", now=now)
        self.round = OpenRound(rid, now, now + self.settings.max_reception, manual)
        faults.point("hq.round.opened")
        self._announce()
        self.emit(StateChanged("running", "Tour de synchronisation ouvert.", rid))
        self.emit(said("engine.round.open", servers=self.settings.servers))

    def _close(self, state: State, error: str) -> None:
        current = self.round
        assert current is not None
        self.round = None
        self._announce()
        faults.point("hq.round.closing")
        try:
            state, error, details = self._conclude(current, state, error)
        except Exception as exc:  # the row must not stay "En cours..." (step() logs it)
            self._end(current, State.FAILED, f"erreur interne : {exc!r}", {})
            raise
        faults.point("hq.report.round")
        record = self._end(current, state, error, details)
        faults.point("hq.round.closed")
        if self.on_round_closed is not None:  # after the row is final (email, watermark)
            self.on_round_closed(record)

    def _conclude(
        self, current: OpenRound, state: State, error: str
    ) -> tuple[State, str, dict[str, object]]:
        """Apply and publish (for an ``OK`` close); the round's final state, error, details."""
        missing: list[str] = []
        failures: list[str] = []
        if state is State.OK:
            try:
                outcome = self._process(
                    self.deliveries(), round_id=current.report_id, publish_all=True
                )
            except Cancelled as exc:
                state, error = State.STOPPED, str(exc)
                outcome = _Outcome()
            except SynchroError as exc:
                state, error = State.FAILED, str(exc)
                outcome = _Outcome()
            delivered = self.since_close(before=current.report_id) | set(outcome.applied)
            missing = [s for s in self.settings.sites if s not in delivered]
            now = self.now()
            for site in missing:
                rid = self.reports.start(
                    site, "site-in-round", round_id=current.report_id, now=current.opened
                )
                self.reports.finish(rid, State.FAILED, now=now, error=NO_DATA)
            failures = [
                r.site
                for r in self.reports.for_round(current.report_id)
                if r.state is State.FAILED and r.error != NO_DATA
            ]
        if state is State.OK and (missing or failures):
            state = State.FAILED
            parts = []
            if missing:
                parts.append(f"sans données : {', '.join(missing)}")
            if failures:
                parts.append(f"en échec : {', '.join(failures)}")
            error = "Etablissements " + " ; ".join(parts)
        details: dict[str, object] = {"missing": missing, "failed": failures}
        if self.security_events is not None:
            details["security"] = [str(e) for e in self.security_events()][-100:]
        return state, error, details

    def _end(
        self, current: OpenRound, state: State, error: str, details: dict[str, object]
    ) -> RunRecord:
        """The round's row made final, and said (tray, status bar)."""
        record = self.reports.finish(
            current.report_id, state, now=self.now(), error=error, details=details
        )
        self.last_round = record
        word = {State.OK: "ok", State.STOPPED: "stopped"}.get(state, "failed")
        self.emit(StateChanged(word, error or "Tour terminé.", current.report_id))
        self.emit(said("engine.round.end", state=state, detail=f" ({error})" if error else ""))
        return record

    def _announce(self) -> None:
        """Tell the establishments (``/out/tour.json``) whether a round is open and until
        when, so one that delivered keeps waiting while the Siège waits for the others
        instead of giving up after its own attempts × delay."""
        state: dict[str, object] = {"ouvert": self.round is not None}
        if self.round is not None:
            deadline = self.round.deadline
            if deadline.tzinfo is None:
                deadline = deadline.astimezone()  # the Siège's local time
            state["fin"] = deadline.astimezone(dt.UTC).isoformat()
            state["attendus"] = self.settings.servers
        data = json.dumps(state).encode()
        for site in self.settings.sites:
            folder = self.ftp_root / site / "out"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write(folder / ROUND_FILE, data)
            except OSError as exc:  # Windows: being read right now; the next one will do
                log.info("%s non mis à jour pour %s : %s", ROUND_FILE, site, exc)

    def since_close(self, before: int | None = None) -> set[str]:
        """Establishments whose data was taken in outside a round since the last round
        closed (early or late). Read from the report, so a restart forgets nothing."""
        rounds = [
            r
            for r in self.reports.latest(50, kinds=("round",))
            if r.ended is not None and r.id != before
        ]
        last = rounds[0].ended if rounds else None
        return {
            r.site
            for r in self.reports.latest(1000, kinds=("site-in-round",))
            if r.round_id is None and r.state is State.OK and (last is None or r.started >= last)
        }

    # -- deliveries ---------------------------------------------------------------------

    def deliveries(self) -> list[Delivery]:
        """Complete packages waiting in the establishments' upload folders, in order."""
        found: list[Delivery] = []
        if not self.ftp_root.exists():
            return found
        for folder in sorted(p for p in self.ftp_root.iterdir() if p.is_dir()):
            inbox = folder / "in"
            if not inbox.is_dir():
                continue
            for path in inbox.iterdir():
                m = _NAME.match(path.name)
                if m and m.group("site") == folder.name and path not in self.stuck:
                    found.append(Delivery(folder.name, int(m.group("seq")), path))
        return sorted(found, key=lambda d: (d.site, d.sequence))

    def _process(
        self, deliveries: list[Delivery], *, round_id: int | None, publish_all: bool = False
    ) -> _Outcome:
        """HQ's own changes, then every delivery in order, then publish."""
        outcome = _Outcome()
        self.emit(Progress("capture", self.code, detail="changements du siège"))
        exported = self.node.export(cancel=self.cancel)
        faults.point("hq.exported")
        if exported.capture.held:
            self.emit(said("engine.held.site", site=self.code, count=exported.capture.held))
            if round_id is not None:
                held = self.node.state.quarantined(HELD)[:200]
                self.reports.merge_details(round_id, {"quarantined": held})
                self.reports.update(round_id, quarantined=exported.capture.held)
        rows: dict[str, int] = {}
        for d in deliveries:
            rid = rows.get(d.site)
            if rid is None:
                rid = self.reports.start(d.site, "site-in-round", round_id=round_id, now=self.now())
                rows[d.site] = rid
            self._apply_one(d, rid, outcome)
        targets = list(self.settings.sites) if publish_all else []
        targets += [s for s in outcome.applied if s not in targets]
        self._publish(targets, rows)
        faults.point("hq.report.sites")
        for rid in rows.values():
            record = self.reports.get(rid)
            if record.state is State.RUNNING:
                self.reports.finish(rid, State.OK, now=self.now())
        return outcome

    def _apply_one(self, d: Delivery, rid: int, outcome: _Outcome) -> None:
        self.emit(Progress("apply", d.site, detail=d.path.name))
        faults.point("hq.apply.before")
        try:
            result = self.node.import_package(
                d.path,
                cancel=self.cancel,
                progress=lambda table, n: self.emit(Progress("apply", d.site, n, 0, table)),
            )
        except (PackageError, ApplyError) as exc:
            self._move(d, self.rejected)
            self.reports.finish(rid, State.FAILED, now=self.now(), error=str(exc))
            self.emit(said("engine.package.refused", site=d.site, error=exc))
            return
        if result.status == "waiting":
            return
        size = d.path.stat().st_size
        faults.point("hq.apply.before_archive")
        self._move(d, self.archive)
        if result.status == "applied":
            s = result.stats
            package_id = f"{result.manifest.origin}#{result.manifest.sequence}"
            record = self.reports.get(rid)
            details = dict(record.details)
            conflicts = self.node.state.conflicts(package_id)
            quarantined = self.node.state.quarantined(package_id)
            if conflicts:
                details.setdefault("conflicts", []).extend(conflicts[:200])
            if quarantined:
                details.setdefault("quarantined", []).extend(quarantined[:200])
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

    def _move(self, d: Delivery, folder: Path) -> None:
        if not _move_file(d.path, folder / d.site):
            self.stuck[d.path] = folder / d.site  # not offered again; moved on a later step

    def _publish(self, sites: list[str], rows: dict[str, int]) -> None:
        """One package per group of establishments in step, linked into each ``out``."""
        if not sites:
            return
        self.emit(Progress("publish", self.code, detail=f"{len(sites)} établissement(s)"))
        faults.point("hq.publish.before")
        published = self.node.publish_group(sites, lambda site: self.ftp_root / site / "out")
        for site, (final, manifest) in published.items():
            for old in final.parent.glob(f"*-{site}-*.pkg"):
                if old.name != final.name:
                    _remove_old(old)
            self.published[site] = final.name
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


def _remove_old(path: Path) -> None:
    """Remove a package the site no longer needs. On Windows a file the FTP server is
    sending cannot be removed: it is left for the next publication to remove."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.info("%s sera supprimé au prochain envoi : %s", path.name, exc)


def _move_file(path: Path, folder: Path) -> bool:
    """Move a handled delivery out of the upload area; False when the system refuses
    (Windows: the FTP server still has it open)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(str(path), folder / path.name)
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("%s non déplacé pour l'instant : %s", path, exc)
        return False
    return True
