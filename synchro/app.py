"""The composition root: builds everything from a Config and owns the threads.

One worker thread runs the engine (the Serveur's runs, or the Siège's rounds); the FTP
server (Siège) has its own threads; the GUI and the CLI talk to the App through methods
that only enqueue, and get its ``synchro.engine.events`` objects as listeners (given at
construction, or ``subscribe``). Front ends use it through ``synchro.application``.
Nothing here imports a GUI toolkit.

The config file is written only when the user saves settings (``save_config``: VALIDER);
*Dernière synchronisation* moves in the state database (``engine.watermark``), and
``self.config.last_sync`` shows it in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from synchro.config.model import Config
from synchro.config.store import save_config
from synchro.engine.events import Event, StateChanged, Status, said
from synchro.engine.hq_deliveries import RoundSettings
from synchro.engine.hq_round import HQService
from synchro.engine.node import Node
from synchro.engine.nodes import open_node
from synchro.engine.preflight_run import publish_for_node
from synchro.engine.retention import forget_old
from synchro.engine.serveur_node import ServeurNode
from synchro.engine.siege_node import SiegeNode
from synchro.engine.site_receive import MANUAL, RunOptions, asked
from synchro.engine.site_run import SiteRun, site_connect
from synchro.engine.watermark import advance_watermark, capture_bound, current_watermark
from synchro.errors import ErrorKind, Say, SynchroError, error_text
from synchro.i18n import render
from synchro.log import register_secret
from synchro.mail import MailPolicy, ReportMailer
from synchro.platform.paths import NodePaths, certificate_files
from synchro.platform.stop_signals import GIVE_UP_S
from synchro.reports import ReportStore, RunRecord, State
from synchro.reports.records import unrecorded_run
from synchro.scheduler import DailySchedule
from synchro.transport.ftp_server import HQServer
from synchro.transport.tls import ensure_certificate

log = logging.getLogger(__name__)


class App:
    """``start()`` → background service; ``close()`` stops it cleanly."""

    def __init__(
        self,
        config: Config,
        paths: NodePaths,
        *,
        now: Callable[[], dt.datetime] = dt.datetime.now,
        sleep: Callable[[float], None] | None = None,
        listeners: tuple[Callable[[Event], None], ...] = (),
        poll_s: float = 30.0,
        mail_policy: MailPolicy | None = None,
    ) -> None:
        self.config, self.paths, self.now, self.sleep = config, paths, now, sleep
        # last_sync as the user set it in the config file (self.config's is the live one)
        self.configured_last_sync = config.last_sync
        self.listeners = listeners
        self._subscribers: list[Callable[[Event], None]] = []
        self._subscribers_lock = threading.Lock()
        self.poll_s = poll_s
        paths.ensure()
        self.reports = ReportStore(paths.reports_db)  # on a full disk: opens once room is made
        self._interrupted_closed = False
        self.inherited: set[int] = set()  # rows this start closed « interrompu »
        self._close_interrupted()
        self.mailer = ReportMailer(self.reports, lambda: self.config, now, policy=mail_policy)
        self.commands: queue.Queue[str] = queue.Queue()
        self.cancel = threading.Event()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.server: HQServer | None = None
        self.hq: HQService | None = None
        self.schedule = self._schedule()
        for secret in (config.site_settings.secret, config.email.password, config.group_key):
            register_secret(secret)

    # -- events -------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            if event.state == "running":
                self._running.set()
            else:
                self._running.clear()
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for listener in (*self.listeners, *subscribers):
            listener(event)
        if isinstance(event, Status):
            log.info("%s", event.message)

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """``listener`` gets every event from now on (on the emitting thread: it only
        prints or enqueues); call the result to unsubscribe."""
        with self._subscribers_lock:
            self._subscribers.append(listener)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                if listener in self._subscribers:
                    self._subscribers.remove(listener)

        return unsubscribe

    # -- life cycle ---------------------------------------------------------------------

    def _schedule(self) -> DailySchedule:
        enabled = self.config.is_hq or self.config.site_settings.auto_sync
        schedule = DailySchedule(self.config.start_time, enabled)
        schedule.arm(self.now())
        return schedule

    def start(self) -> None:
        self.emit(said("engine.start.hq" if self.config.is_hq else "engine.start.site"))
        if self.config.is_hq:
            self.start_ftp()
        self._thread = threading.Thread(target=self._loop, name="synchro-engine", daemon=True)
        self._thread.start()

    def close(self, timeout: float = GIVE_UP_S) -> bool:
        """Stop the work and close what it uses; True once done. False when the work did
        not end within ``timeout`` (a statement a hung database server holds, which reads
        no cancel): then nothing is closed under it, and the caller ends the process as a
        kill would (``stop_signals.end_now``): the next start takes the work up again."""
        self._stop.set()
        self.ending()
        self.commands.put("wake")  # the loop sees the stop now, not at its next tick
        self.cancel.set()
        if self.hq is not None:
            self.hq.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        self.stop_ftp()
        self.reports.close()
        return True

    def start_ftp(self) -> None:
        cert, key = certificate_files(self.paths)
        ensure_certificate(cert, key, self.config.site or "Synchro")
        self.server = HQServer.from_settings(
            self.paths.ftp_root,
            self.config.hq,
            cert_file=cert,
            key_file=key,
            on_received=lambda site, path: self.commands.put("wake"),
        )
        self.server.start()
        self.emit(said("engine.ftp.started", port=self.server.port))

    def stop_ftp(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- commands (any thread: they only enqueue) ------------------------------------------

    def run_now(self, *, take_back: bool = False, send: bool = False) -> None:
        """MANUELLE; after a restore (``engine.marks``), ``take_back``: the group's data
        taken back first, or ``send``: the restored database sent as it is (Envoyer)."""
        self.commands.put("take-back" if take_back else "send" if send else "sync")

    def ending(self) -> None:
        """The program ends (a service stop, ``sync`` SIGTERMed): the report email being
        sent is given up, and not tried again (``ReportMailer.stop``)."""
        self.mailer.stop.set()

    def stop_run(self) -> None:
        """ARRETER: the engine stops at the next safe point."""
        self.cancel.set()
        self.commands.put("stop")

    def raz(self) -> None:
        self.commands.put("raz")

    def is_running(self) -> bool:
        return self._running.is_set()

    def next_run(self) -> dt.datetime | None:
        return self.schedule.next()

    def save_config(self, config: Config) -> None:
        """VALIDER: save and restart the FTP server; refused while a run is in progress."""
        if self.is_running():
            raise SynchroError(say=("app.err.running_save", {}), kind=ErrorKind.CONFIG)
        save_config(config, self.paths.config_file)
        self.config = config
        self.configured_last_sync = config.last_sync  # taken into the state at the next run
        self.schedule = self._schedule()
        if self.hq is not None:
            self.hq.settings = self._round_settings()
        if config.is_hq and self.server is not None:
            self.stop_ftp()
            self.start_ftp()
        self.emit(said("engine.settings.saved"))

    def control(self, cmd: str, args: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The local control channel (``synchro sync|stop|raz|status`` against ``serve``)."""
        if cmd == "sync":
            self.run_now(take_back=bool(args.get("take_back")), send=bool(args.get("send")))
        elif cmd == "stop":
            self.stop_run()
        elif cmd == "raz":
            self.raz()
        return {"running": self.is_running(), "next": str(self.next_run() or "")}

    # -- engine thread --------------------------------------------------------------------

    def _round_settings(self) -> RoundSettings:
        hq = self.config.hq
        return RoundSettings(hq.servers, hq.max_reception, [s.code for s in hq.sites])

    def _loop(self) -> None:
        node = self._open_node()
        if node is None:
            return  # the App stopped before the node could be opened
        try:
            self._watermark(node)  # Dernière synchronisation shown as the state holds it
            if isinstance(node, SiegeNode):
                self._hq_loop(node)
            else:
                self._site_loop(node)
        except Exception:  # the service must say why it stopped
            log.exception("Le moteur de synchronisation s'est arrêté")
            stopped: Say = ("app.engine_stopped", {})
            self.emit(StateChanged("failed", render(stopped, "fr"), say=stopped))
        finally:
            node.close()

    def _open_node(self) -> SiegeNode | ServeurNode | None:
        """The node; when it cannot open (a damaged state, a database that will not open...)
        say why and try again at MANUELLE or the next hour. None once the App stops."""
        while True:
            try:
                return open_node(self.config, self.paths, self.now, self._stop.is_set)
            except SynchroError as exc:
                self._cannot_start(exc)
            if not self._wait_for_retry():
                return None

    def _close_interrupted(self) -> None:
        """Rows still « En cours... » of an earlier process (a crash, a power cut) become
        Echec, once: at start-up, or before the first run or round when a full disk kept
        the Rapport from taking it then (none of this process's own rows is open yet)."""
        if self._interrupted_closed:
            return
        try:
            for record in self.reports.close_interrupted(self.now()):
                log.warning("Rapport %s fermé en Echec : interrompu par un arrêt", record.id)
                self.inherited.add(record.id)  # a round among them is carried on (hq_takeover)
            self._interrupted_closed = True
        except SynchroError as exc:
            log.error("Rapport non écrit : %s", exc)

    def _cannot_start(self, exc: SynchroError) -> None:
        """Say it everywhere the user looks: status bar, tray, log and the Rapport.

        Order is the contract (as at the end of a run): the Rapport row is final before
        ``StateChanged`` is emitted, so whoever reacts to the event reads the Echec row."""
        log.error("Synchronisation impossible : %s", exc)
        kind = "round" if self.config.is_hq else "run"
        rid: int | None = None
        self._close_interrupted()
        try:
            rid = self.reports.start(self.config.site or "?", kind, now=self.now())
            self.reports.finish(rid, State.FAILED, now=self.now(), error=exc)
        except SynchroError as unwritten:  # the same full disk: said, never a dead thread
            log.error("Rapport non écrit : %s", unwritten)
        self.emit(StateChanged("failed", str(exc), rid, say=exc.say))
        self.emit(said("engine.cannot_start", error=exc))

    def _wait_for_retry(self) -> bool:
        """After a failed start: True at MANUELLE or at the next scheduled hour (try again),
        False when the App stops."""
        while not self._stop.is_set():
            try:
                command = self.commands.get(timeout=0.5)
            except queue.Empty:
                command = ""
            by_person = command in MANUAL
            if by_person or self.schedule.due(self.now()):
                self.commands.put(command if by_person else "scheduled")  # who asked
                return True
        return False

    def _site_loop(self, node: ServeurNode) -> None:
        while not self._stop.is_set():
            try:
                command = self.commands.get(timeout=0.5)
            except queue.Empty:
                command = ""
            if command == "stop":
                self.cancel.clear()
                continue
            if command in (*MANUAL, "scheduled") or self.schedule.due(self.now()):
                self.cancel.clear()
                started = self.now()
                try:
                    self.run_site(node, command)
                except Exception as exc:  # the service lives on: MANUELLE, the next hour
                    log.exception("La synchronisation n'a pas pu aller à son terme")
                    words = exc.say if isinstance(exc, SynchroError) else None
                    self.emit(StateChanged("failed", error_text(exc), say=words))
                    site = self.config.site or "?"  # the email says it all the same
                    self._mail([unrecorded_run(site, started, self.now(), exc)], State.FAILED)

    def run_site(self, node: ServeurNode, command: str = "scheduled") -> RunRecord:
        """One run now, on the calling thread (the engine thread, or ``synchro sync``);
        ``command`` says who asked (``site_receive.asked``: MANUELLE sends mass deletes;
        after a restore, *Reprendre les données du groupe* or Envoyer)."""
        self._close_interrupted()
        s = self.config.site_settings
        overlap = self.config.database.modified_overlap
        since = capture_bound(self._watermark(node), self.now(), overlap)
        options = RunOptions(
            s.attempts,
            s.retry_delay.total_seconds(),
            poll_s=min(self.poll_s, s.retry_delay.total_seconds()),
            since=since,
            **asked(command),
        )
        started = self.now()
        record = SiteRun(
            node,
            site_connect(self.config),
            self.reports,
            options,
            cancel=self.cancel,
            emit=self.emit,
            now=self.now,
            sleep=self.sleep,
        ).run()
        if record.state is State.OK:
            self._advance_watermark(node, started)
        self._mail([record], record.state)
        forget_old(self.reports, node.state, self.now())
        return record

    def hq_service(self, node: SiegeNode) -> HQService:
        """The Siège's round service on ``node``, wired to this App (reports, mail, FTP)."""
        self._close_interrupted()
        self._watermark(node)
        self.hq = HQService(
            node,
            self.reports,
            self.paths.ftp_root,
            self._round_settings(),
            emit=self.emit,
            now=self.now,
            on_round_closed=self._round_closed,
            security_events=lambda: list(self.server.security_events()) if self.server else [],
            inherited=self.inherited,
        )
        self.hq.cancel = self.cancel
        return self.hq

    def _hq_loop(self, node: SiegeNode) -> None:
        publish_for_node(node, self.config, self.paths.ftp_root)  # schemas.json, for `check`
        hq = self.hq_service(node)
        hq.run(
            self.commands,
            lambda: not self._stop.is_set(),
            scheduled=lambda: self.schedule.due(self.now()),
        )
        # the program stops: the acks already in are taken, an open round ends « Arrêt »
        # and rows still waiting for an ack end now (their package stays offered), rather
        # than « En cours... » until the next start calls them interrupted
        hq.step("shutdown")

    def _round_closed(self, record: RunRecord) -> None:
        if record.state is State.OK and self.hq is not None:
            self._advance_watermark(self.hq.node, record.started)
        members = [record]
        with contextlib.suppress(SynchroError):  # (a Rapport that cannot be read now)
            members += [r for r in self.reports.for_round(record.id) if r.id != record.id]
        self._mail(members, record.state)
        if self.hq is not None:
            forget_old(self.reports, self.hq.node.state, self.now())

    def _watermark(self, node: Node) -> dt.datetime | None:
        """The watermark in the state (a date the user set in the config file is taken
        first), also shown as ``self.config.last_sync``."""
        when = current_watermark(node.state, self.configured_last_sync)
        self.config = dataclasses.replace(self.config, last_sync=when)
        return when

    def _advance_watermark(self, node: Node, when: dt.datetime) -> None:
        """Into the state database: the config file is the user's, never rewritten here.
        A date saved since the node opened is taken first, so it is not taken again later."""
        try:
            current_watermark(node.state, self.configured_last_sync)
            advance_watermark(node.state, when)
        except SynchroError as exc:
            self.emit(said("engine.watermark.failed", error=exc))
            return
        self.config = dataclasses.replace(self.config, last_sync=when)

    def _mail(self, records: list[RunRecord], state: State) -> None:
        try:
            self.mailer.after_run(records, state)
        except Exception:  # an email problem never changes a synchronisation's state
            log.exception("Envoi du rapport par email impossible")
