"""The Siège's rounds.

The FTP server stays up; establishments drop packages (``<site>-<seq>.pkg``) and
acknowledgements (``ACK-<site>-<seq>.json``, see ``engine.ack``) in ``<ftp_root>/<site>/in``.

- A round opens at *Heure de départ* (or MANUELLE). It counts the distinct establishments
  that delivered while it is open: a package not applied yet (not one an earlier ``sync``
  at the Siège left in ``/in`` when it ended: that round's tail), or one sent again that
  the site was never answered for (the Siège died before its answer reached it); a copy
  of a package the site was served for counts for nothing. A scheduled round also counts
  a site that did its whole run (delivered, acknowledged) up to ``hq_verdict.EARLY`` before it
  opened (a clock a little ahead); a MANUELLE round does not (what came after the
  previous round closed is that round's tail). It closes when all *Nombre de serveurs*
  have delivered, or when *Temps maximum de réception* has run out (RAZ restarts it).
  The first round after a start that closed a round a crash interrupted carries it on: the
  establishments that round had applied count as delivered (``engine.hq_takeover``).
- At the close, the Siège captures its own changes, applies the waiting packages in a
  deterministic order (site code, then sequence), lists ``/in`` again and applies what came
  meanwhile, then publishes to every establishment the package of what it has not received
  yet (with its own per-table checksums), and writes one report row per establishment (a
  missing one is ``Echec`` — "aucune donnée reçue").
- A delivery whose import fails for the database's sake, not the package's (the
  database ended the transaction at every try, its disk is full, it cannot be reached)
  is set aside (``hq_deliveries.Resting``): it stays in ``/in``, its establishment's row
  is ``Echec`` saying it will be applied again, and the others are applied and published
  all the same. The next round's close tries it again; outside a round it is tried after
  1, 2, 4... minutes, up to an hour. A package that cannot be trusted or applied
  (``PackageError``, ``ApplyError``) is moved to ``rejected`` as before.
- A download is not a delivery: a served establishment's row stays ``En cours...`` until it
  acknowledges applying the answer (``engine.hq_acks``): then ``OK``, or ``Echec`` when the
  « Contrôle » (its checksums against the Siège's at publication) finds tables that differ,
  or when no ack came within ``ack_wait``. The round's row (and its email) is final once
  every row is; until then the round is ``closing``. The answer stays offered meanwhile.
- Outside a round (a site early or late), a delivery is processed at once the same way;
  a copy of a package already applied is only archived (its answer is published again
  only if the one offered does not cover it).
- ARRETER closes an open round as ``Arrêt`` without applying anything (an apply in
  progress is rolled back whole); during ``closing`` it ends the round at once.

``step()`` does one unit of work synchronously (tests call it with an injected clock);
``run()`` is the one loop on it, in the worker thread of whoever runs the Siège (the App's
service, ``synchro sync``), the only thread that touches the Node."""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from synchro import faults
from synchro.engine.ack import controle_words
from synchro.engine.events import Emit, ignore, said, state_changed
from synchro.engine.hq_acks import AckBook
from synchro.engine.hq_closing import OpenRound, RoundClosing
from synchro.engine.hq_deliveries import TAIL, RoundSettings
from synchro.engine.hq_files import identity, move_file
from synchro.engine.hq_loop import TICK_S, next_steps
from synchro.engine.hq_takeover import interrupted_round, take_over
from synchro.engine.hq_verdict import Unwritten
from synchro.engine.siege_node import SiegeNode
from synchro.errors import STOPPED_SAY, DatabaseError, SynchroError, error_text
from synchro.i18n import render
from synchro.reports import ReportStore, RunRecord, State
from synchro.scheduler import within

RETRY_AFTER = dt.timedelta(minutes=1)  # after an unexpected error, before trying again
log = logging.getLogger(__name__)


class HQService(RoundClosing):
    """The Siège's rounds (the module's text): when one opens and closes; how it ends is
    ``RoundClosing``'s (``engine.hq_closing``), the work on deliveries ``DeliveryWork``'s."""

    def __init__(
        self,
        node: SiegeNode,
        reports: ReportStore,
        ftp_root: Path,
        settings: RoundSettings,
        *,
        emit: Emit = ignore,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        on_round_closed: Callable[[RunRecord], None] | None = None,
        security_events: Callable[[], list[object]] | None = None,
        inherited: Collection[int] | None = None,
    ) -> None:
        """``inherited``: the rows this process's start closed « interrompu » (``App``);
        only a round among them is taken over (None: any, for callers that close the
        rows themselves)."""
        self.acks = AckBook(node, reports, ftp_root)
        self.inherited = inherited
        self.node, self.reports, self.ftp_root, self.settings = node, reports, ftp_root, settings
        self.emit, self.now = emit, now
        self.on_round_closed = on_round_closed
        self.security_events = security_events
        self.code = node.code
        self.round: OpenRound | None = None
        self.cancel = threading.Event()
        self.last_round: RunRecord | None = None
        self.archive = node.packages_dir / "archive"
        self.paused_until: dt.datetime | None = None  # set by an unexpected error
        self.owed = []  # sites whose publication an error cut short
        self.stuck: dict[Path, Path] = {}  # handled deliveries Windows would not let us move
        self.resting = {}  # deliveries set aside after a failed import (``Resting``)
        self.published: dict[str, str] = {}  # site -> name of the package now offered to it
        self.rejected = node.packages_dir / "rejected"
        self.closing: OpenRound | None = None  # closed, waiting for the establishments' acks
        self.taken: set[str] = set()  # sites a round took over from one a crash interrupted
        self.heard: set[str] = set()  # sites whose ack this process took
        self.resumed = False  # publications a crash cut finished (first step)
        self.unwritten = Unwritten()  # round rows a full disk kept from being final

    @property
    def node(self) -> SiegeNode:
        return self.acks.node

    @node.setter
    def node(self, node: SiegeNode) -> None:  # (the acks follow the node: one state)
        self.acks.node = node

    # -- any thread ----------------------------------------------------------------------

    def stop(self) -> None:
        """ARRETER, from any thread: interrupt an apply at once (the round closes later)."""
        self.cancel.set()

    # -- worker -------------------------------------------------------------------------

    def run(
        self,
        commands: queue.Queue[str],
        going: Callable[[], bool],
        *,
        tick_s: float = TICK_S,
        scheduled: Callable[[], bool] | None = None,
    ) -> None:
        """The Siège's one round loop (the service, ``synchro sync`` and its linger, the
        tests): while ``going()``, wait up to ``tick_s`` for a command — ``sync``
        (MANUELLE), ``stop`` (ARRETER), ``raz`` (RAZ), anything else (``wake`` after an
        upload) only steps at once — open the round when ``scheduled()`` says *Heure de
        départ* has come, then do one step."""
        while going():
            words = next_steps(commands, tick_s)
            if scheduled is not None and scheduled():
                self.step("open-scheduled")
            for word in words:
                self.step(word)

    def step(self, command: str = "") -> None:
        """One unit of work. An unexpected error (a bug, a full disk, a file Windows keeps
        locked) never kills the service: the round it was closing ends ``Echec`` with the
        reason, and waiting deliveries are tried again a minute later (or on a command)."""
        try:
            self._step(command)
        except Exception as exc:
            self.paused_until = self.now() + RETRY_AFTER  # (``owed``: see ``_process``)
            known = isinstance(exc, SynchroError)  # said as it is (deletes held, a full disk)
            log.error("Le siège n'a pas pu aller au bout : %s", exc, exc_info=not known)
            text = error_text(exc) if known else repr(exc)
            self.emit(said("engine.hq.trouble" if known else "engine.hq.error", error=text))

    def _step(self, command: str) -> None:
        self.unwritten.write(self.reports)
        if not self.resumed:
            self.finish_publications()
            self.resumed = True
        now = self.now()
        if command:
            self.paused_until = None
        self._clock_put_back(now)
        if command == "open-take-back" and self.round is None:
            self.node.take_back()  # (``engine.take_back``) then a MANUELLE round
            self._open(now, manual=True)
        elif command == "open-send" and self.round is None:
            self._open(now, manual=True, send_restored=True)
        elif command == "open" and self.round is None:
            self._open(now, manual=True)
        elif command == "open-scheduled" and self.round is None:
            self._open(now, manual=False)
        elif command == "raz" and self.round is not None:
            self.round.deadline = now + self.settings.max_reception
            self._announce()
            self.emit(said("engine.raz"))
        elif command in ("stop", "shutdown"):  # ARRETER; the program stopping
            self.cancel.clear()
            self._take_acks(now)  # what already came counts before anything is ended
            if self.round is not None:
                self._close(State.STOPPED, render(STOPPED_SAY, "fr"))
            if self.closing is not None or command == "shutdown":  # no row stays En cours
                self.acks.expire(list(self.settings.sites), now, force=True)
                self._check_closing()
            return
        if self.paused_until is not None and now < self.paused_until:
            return
        for path, folder in list(self.stuck.items()):
            if move_file(path, folder):
                del self.stuck[path]
        self._take_acks(now)
        if self.round is None:
            owed = self.owed + [s for s in self._behind() if s not in self.owed]
            if owed:
                self._publish(owed, {})
                self.owed = []
        if self.round is None:
            if pending := self.ready(in_round=False):
                self._process(pending, round_id=None)
            self.acks.expire(list(self.settings.sites), now, longest=self.settings.ack_wait)
            self._check_closing()
            return
        pending = self.deliveries()
        counted = [d for d in pending if identity(d.path) not in self.round.leftovers]
        delivered = self._early(self.round) | self.round.taken.sites
        delivered |= {d.site for d in counted if self._is_new(d)}
        if len(delivered) >= self.settings.awaited or now >= self.round.deadline:
            self._close(State.OK, "")

    def _clock_put_back(self, now: dt.datetime) -> None:
        """A clock put back (a wrong date corrected) never makes the Siège wait for an hour
        set by the wrong one: the round closes at most *Temps maximum de réception* from now,
        a pause after an error lasts at most its minute."""
        if self.paused_until is not None:
            self.paused_until = within(self.paused_until, now, RETRY_AFTER)
        if self.round is not None:
            deadline = within(self.round.deadline, now, self.settings.max_reception)
            if deadline != self.round.deadline:
                self.round.deadline = deadline
                self._announce()  # the establishments wait by the deadline it gives

    def waiting_for_acks(self) -> list[str]:
        """Establishments the Siège published to and whose ack it still waits for."""
        return self.acks.waiting(list(self.settings.sites))

    def not_heard_since_crash(self) -> list[str]:
        """Establishments taken over from a round a crash interrupted that have not been
        heard from since: one may still be sending again an ack the dead Siège had taken
        (its session was cut before the answer), so ``sync`` keeps its server up for them
        while it lingers."""
        return sorted(self.taken - self.heard)

    def _take_acks(self, now: dt.datetime) -> None:
        for got in self.acks.take(list(self.settings.sites), now):
            self.heard.add(got.ack.site)
            self.emit(
                said(
                    "engine.ack.received",
                    site=got.ack.site,
                    sequence=got.ack.sequence,
                    controle=[controle_words(got.text, got.tables)],
                )
            )

    # -- rounds -------------------------------------------------------------------------

    def _open(self, now: dt.datetime, *, manual: bool, send_restored: bool = False) -> None:
        if self.closing is not None:  # the previous round's acks are overdue now
            self.acks.expire(list(self.settings.sites), now, force=True)
            self._check_closing()
        window = self.settings.max_reception
        previous = interrupted_round(self.reports, now, window, self.inherited)
        rid = self.reports.start(self.code, "round", now=now)
        deadline = now + self.settings.max_reception
        self.round = OpenRound(rid, now, deadline, manual, send_restored)
        if previous is not None:  # not a site whose ack this process took: its run is over,
            sites = [s for s in self.settings.sites if s not in self.heard]  # it delivers anew
            wait = self.settings.ack_wait
            taken = take_over(self.reports, self.acks, previous, rid, sites, now, wait)
            self.round.taken = taken
            self.taken |= taken.sites
            if taken.sites:
                names = ", ".join(sorted(taken.sites))
                self.emit(said("engine.round.taken", round=previous.id, sites=names))
        # left in /in after an earlier round ended (``note_tail``): applied at the close,
        # but not this round's delivery (a file sent again is a new one). What a Siège
        # killed mid-round left is not a tail: this round takes it over.
        tail = {tuple(x) for x in json.loads(self.node.state.get_meta(TAIL) or "[]")}
        here = {identity(d.path) for d in self.deliveries()}
        self.round.leftovers = {x for x in here if x in tail}
        with self.node.state.transaction():
            self.node.state.set_meta(TAIL, "[]")
        faults.point("hq.round.opened")
        self._announce()
        self.emit(state_changed("running", rid, None, "engine.round.opened"))
        self.emit(self.settings.opening())
        self._database_now()

    def _database_now(self) -> None:
        """Say at once, not only at the close, that the Siège's database cannot be reached
        now: the reception goes on (the deliveries wait in ``/in``), and the close tries
        the database again, with its tries, as before (a server started after Synchro, at
        the machine's start, is there by then)."""
        try:
            self.node.adapter  # noqa: B018  (opened here, kept for the close)
        except DatabaseError as exc:
            log.warning("Base du siège injoignable à l'ouverture du tour : %s", exc)
            self.emit(said("engine.round.db_down", error=error_text(exc)))
